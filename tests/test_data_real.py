"""The data layer on the real data in ../shared/data (skips where it is absent)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gim_brain.cli.main import main
from gim_brain.data import ResponseError, load_dataset


@pytest.fixture(scope="module")
def lebel(lebel_root):
    return load_dataset("lebel2023_pca", lebel_root)


def test_word_to_row_assignment_reproduces_tr_text_of_uts03(lebel):
    """Row r holds the words with onset in [8 + 2r, 10 + 2r) s: compare with the reference tr_text.

    Holds under the manifest's declared ``tr_text`` convention (tr_text's own windows); the
    ``reference`` convention's rows are one TR later (tests/test_reference_convention.py)."""
    assert lebel.manifest["timing"]["convention"] == "tr_text"
    stories = lebel.stories_with_responses("UTS03", require_words=True)
    assert len(stories) == 82
    n_rows = n_match = 0
    for name in stories:
        story = lebel.load_story(name)
        with np.load(lebel.responses_path("UTS03", name)) as z:
            tr_text = z["tr_text"]
        assert len(tr_text) == story.grid.n_rows == lebel.load_responses("UTS03", name).shape[0]
        for ours, ref in zip(story.row_words(), tr_text):
            n_rows += 1
            n_match += ours == lebel.cleaner.clean_tokens(str(ref).split())[1]
    assert n_rows == 27348
    assert n_match / n_rows >= 0.995, f"only {n_match}/{n_rows} rows match tr_text"


def test_lebel_pca_listing(lebel):
    assert len(lebel.stories()) == 84
    assert lebel.subjects() == ["UTS03"]
    assert len(lebel.stories_with_responses("UTS03")) == 101
    assert lebel.test_stories == ["wheretheressmoke", "onapproachtopluto", "fromboyhoodtofatherhood"]
    avatar = lebel.load_story("avatar")
    assert avatar.cleaning_report.dropped["{CG}"] == 5
    assert all(w == w.lower() and w for w in avatar.words)


def test_datasets_check_cli_on_lebel_pca(lebel_root, tmp_path, capsys):
    out_json = tmp_path / "out.json"
    rc = main(["datasets", "check", "--manifest", "lebel2023_pca", "--data-root", str(lebel_root),
               "--json", str(out_json)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "UTS03: 101 stories with responses" in out and "84 with words" in out
    report = json.loads(out_json.read_text())
    assert report["usable"] is True
    assert report["summary"]["with_words"] == 84
    assert report["summary"]["subjects"]["UTS03"]["with_responses"] == 101
    no_words = [s["story"] for s in report["stories"] if not s["has_words"]]
    assert len(no_words) == 19 and "onapproachtopluto" in no_words   # reported, not fatal


def test_brennan_alice_and_the_all_zero_subject(shared_data, capsys):
    ds = load_dataset("brennan2016", shared_data / "brennan2016_alice")
    assert len(ds.subjects()) == 28 and ds.stories() == ["alice"]
    story = ds.load_story("alice")
    assert len(story.words) == 2127 and story.grid.n_rows == 362
    y = ds.load_responses("s18", "alice")
    assert y.shape == (362, 6) and y.dtype == np.float32
    with pytest.raises(ResponseError, match="s33.*every value is zero"):
        ds.load_responses("s33", "alice")
    rc = main(["datasets", "check", "--manifest", "brennan2016", "--data-root",
               str(shared_data / "brennan2016_alice"), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 1 and "subject s33: responses are all zeros" in out


def test_brennan_grid_matches_the_authors_word_rate_regressor(shared_data):
    """The authors' HRF-convolved word rate (372 volumes) peaks in correlation at our timing."""
    from scipy.signal import fftconvolve
    from scipy.stats import gamma

    root = shared_data / "brennan2016_alice"
    ds = load_dataset("brennan2016", root)
    story = ds.load_story("alice")
    rate = np.loadtxt(root / "sept18-generic-predictors-under-hrf-with-logfrqhal.txt")[10:, 0]
    dt = 0.05
    impulses = np.zeros(int(800 / dt))
    np.add.at(impulses, (story.transcript.onsets / dt).astype(int), 1.0)
    t = np.arange(0, 32, dt)
    conv = fftconvolve(impulses, gamma.pdf(t, 6) - gamma.pdf(t, 16) / 6)[: impulses.size]

    def corr(shift):
        return np.corrcoef(conv[((story.grid.row_times + shift) / dt).astype(int)], rate)[0, 1]

    assert corr(0.0) > 0.98
    assert corr(0.0) > max(corr(-2.0), corr(2.0))
