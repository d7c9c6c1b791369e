"""The real ``gim-brain features`` / ``fit`` / ``datasets check`` commands with the baseline spaces
(``phonemerate``, ``articulation``, ``eng1000``, ``static``) on the tiny copy of the real LeBel
data: a good build, and the bad inputs each exiting with a message naming file, story or
parameter, never a traceback."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from _fault_helpers import gim_brain, lebel_available, make_tiny

pytestmark = pytest.mark.skipif(not lebel_available(), reason="the real data ../shared/data/lebel2023 is absent")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny(tmp_path_factory.mktemp("baselines"))


def _assert_clean(r, rc, needles):
    assert r.rc == rc, f"exit {r.rc}, expected {rc}\nstdout: {r.out[-2000:]}\nstderr: {r.err[-2000:]}"
    assert "Traceback" not in r.err, r.err[-3000:]
    for needle in needles:
        assert needle in r.text, f"{needle!r} not in the output:\n{r.text[-3000:]}"


def _features(t, spec, out):
    return gim_brain(["features", *t.args("--space", spec, "--out", str(out), "--stories", "sweetaspie",
                                          "wheretheressmoke", "--no-progress")], t.cache, cwd=t.base)


def test_phoneme_spaces_build_from_cmudict_and_report_misses(tiny, monkeypatch, capsys):
    from gim_brain.cli.main import main

    monkeypatch.setenv("GIM_BRAIN_CACHE", str(tiny.cache))  # in-process: the same command, no new interpreter
    out = tiny.base / "phon"
    assert main(["features", *tiny.args("--space", "phonemerate+articulation", "--out", str(out), "--stories",
                                        "sweetaspie", "wheretheressmoke", "--no-progress")]) == 0
    assert "2 stories x 92 features" in capsys.readouterr().out
    desc = json.loads((out / "features.json").read_text())
    rep = desc["spaces"][0]["report"]
    assert rep["phones_from_cmudict"] == 2 and rep["phones_from_tier"] == 0
    assert 0 < rep["not_in_cmudict"]["rate"] < 0.05 and rep["not_in_cmudict"]["most_common"]
    x = np.load(out / "sweetaspie.npy")
    assert x.shape[1] == 92 and np.isfinite(x).all()


def test_datasets_check_lists_cmudict_misses(tiny, monkeypatch, capsys):
    from gim_brain.cli.main import main

    monkeypatch.setenv("GIM_BRAIN_CACHE", str(tiny.cache))
    assert main(["datasets", "check", *tiny.args("--quiet")]) == 0
    out = capsys.readouterr().out
    assert "CMUdict (phonemes of the 5 stories without a phone tier):" in out and "not in the dictionary" in out


def test_source_tier_on_word_tables_is_a_clear_error(tiny):
    r = _features(tiny, "phonemerate[source=tier]", tiny.base / "x1")
    _assert_clean(r, 2, ("source=tier needs a phone tier", "sweetaspie.tsv", "source=cmudict"))


def test_english1000_in_the_wrong_layout_is_a_clear_error(tiny):
    bad = tiny.base / "english1000sm.hf5"
    with h5py.File(bad, "w") as f:  # one row per word: the transpose of the Huth lab's layout
        f["data"] = np.zeros((3, 985), dtype=np.float32)
        f["vocab"] = np.array([b"the", b"a", b"and"])
    r = _features(tiny, f"eng1000[path={bad}]", tiny.base / "x2")
    _assert_clean(r, 2, ("parameter 'path' of feature space 'eng1000'", str(bad), "transposed",
                         "(n_dims, n_vocab)"))


def test_a_vectors_file_that_is_not_one_is_a_clear_error_for_features_and_fit(tiny):
    bad = tiny.base / "vectors.txt"
    bad.write_text("word,score\nthe,1\n")
    r = _features(tiny, f"static[path={bad}]", tiny.base / "x4")
    _assert_clean(r, 2, ("parameter 'path' of feature space 'static'", str(bad), "not a word-vector file"))
    r = gim_brain(["fit", *tiny.args("--subject", "UTS03", "--features", f"static[path={bad}]", "--n-folds",
                                     "2", "--n-permutations", "0", "--out", str(tiny.base / "run"),
                                     "--no-progress")], tiny.cache, cwd=tiny.base)
    _assert_clean(r, 2, (str(bad), "not a word-vector file"))  # refused before the data are read
