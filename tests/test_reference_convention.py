"""The ``reference`` timing convention: ds003020 timed exactly as its HuthLab reference code.

Unit tests of the grid, the word filter and the manifest keys run everywhere; the comparisons with
``reference_huthlab/wordrate_lanczos.npz`` (computed by the reference code itself) and with the
responses' ``tr_text`` need ``../shared`` and skip without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from gim_brain._cache import NpzCache
from gim_brain.data import load_dataset
from gim_brain.data.cleaning import TokenCleaner
from gim_brain.data.manifest import ManifestError, load_manifest, parse_manifest
from gim_brain.data.timing import TimingError, TRGrid
from gim_brain.features.context import SpaceContext
from gim_brain.features.design import build_design
from gim_brain.features.registry import get_space, resolve_params

REPO = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------- no data


def test_reference_grid_is_one_tr_later_with_kernels_in_the_middle():
    ours = TRGrid.from_convention(40, 2.0, 10.0, 10, 10)
    ref = TRGrid.from_convention(40, 2.0, 10.0, 10, 10, convention="reference")
    assert ours.n_rows == ref.n_rows == 20
    r = np.arange(20)
    np.testing.assert_array_equal(ours.row_times, 10 + 2 * r)        # windows [8 + 2r, 10 + 2r)
    np.testing.assert_array_equal(ours.kernel_times, 10 + 2 * r)
    np.testing.assert_array_equal(ref.row_starts, 10 + 2 * r)        # windows [10 + 2r, 12 + 2r)
    np.testing.assert_array_equal(ref.kernel_times, 11 + 2 * r)
    onsets = np.array([8.0, 9.99, 10.0, 11.9, 12.0])
    np.testing.assert_array_equal(ours.assign_words(onsets), [0, 0, 1, 1, 2])
    np.testing.assert_array_equal(ref.assign_words(onsets), [-1, -1, 0, 0, 1])
    assert ref.describe() == {"convention": "reference", "tr": 2.0,
                              "first_row": {"window": [10.0, 12.0], "kernel_centre": 11.0}}
    with pytest.raises(TimingError, match="'huth'"):
        TRGrid.from_convention(40, 2.0, convention="huth")


def test_reference_word_filter_keeps_marks_and_empty_words():
    tokens = ["{CG}", "", " ", "{BR}", "(BR}", "sp", "SP ", "{LS} ", "{LS)", "SENTENCE_START",
              "{NS}", "Hello", "YOU "]
    keep, words, report = TokenCleaner.reference().clean_tokens(tokens)
    # dropped exactly when token.lower().strip("{}").strip() is a bad word
    assert [t for t, k in zip(tokens, keep) if not k] == ["{BR}", "sp", "SP ", "SENTENCE_START", "{NS}"]
    assert words == ["{cg}", "", "", "(br}", "{ls}", "{ls)", "hello", "you"]
    assert report.n_out == 8
    raw = TokenCleaner.reference(strip_whitespace=False).clean_tokens(tokens)[1]
    assert raw == ["{cg}", "", " ", "(br}", "{ls} ", "{ls)", "hello", "you "]
    # the default filter drops every mark and empty word
    assert TokenCleaner().clean_tokens(tokens)[1] == ["hello", "you"]
    assert TokenCleaner.from_config({"filter": "reference", "lowercase": False}).clean_tokens(["Hi"])[1] == ["Hi"]
    with pytest.raises(ValueError, match="cleaning.drop_bracketed cannot be combined"):
        TokenCleaner.from_config({"filter": "reference", "drop_bracketed": False, "drop_regex": "x"})
    with pytest.raises(ValueError, match="filter must be one of"):
        TokenCleaner.from_config({"filter": "huth"})


MINIMAL = """
name = "tiny"
[words]
path = "w/{story}.tsv"
[timing]
tr = 2.0
"""


def _parse(extra: str) -> dict:
    return parse_manifest(tomllib.loads(MINIMAL + extra), "tiny.toml")


def test_manifest_convention_sets_the_word_filter_and_is_checked():
    base = """[responses]\npath = "r/{story}.npy"\n"""
    m = _parse(base)
    assert m["timing"]["convention"] == "tr_text" and m["cleaning"]["filter"] == "default"
    text = MINIMAL.replace("tr = 2.0", 'tr = 2.0\nconvention = "reference"') + base
    m = parse_manifest(tomllib.loads(text), "tiny.toml")
    assert m["timing"]["convention"] == "reference" and m["cleaning"]["filter"] == "reference"
    m = parse_manifest(tomllib.loads(text + '[cleaning]\nfilter = "default"\ndrop_bracketed = false\n'), "t.toml")
    assert m["cleaning"]["filter"] == "default"  # an explicit filter wins over the convention's
    with pytest.raises(ManifestError, match=r"tiny.toml: cleaning.extra_drop cannot be set with the reference"):
        parse_manifest(tomllib.loads(text + '[cleaning]\nextra_drop = ["uh"]\n'), "tiny.toml")
    bad = MINIMAL.replace("tr = 2.0", 'tr = 2.0\nconvention = "huth"') + base
    with pytest.raises(ManifestError, match=r"tiny.toml: timing.convention must be one of \['tr_text', 'reference'\]"):
        parse_manifest(tomllib.loads(bad), "tiny.toml")
    with pytest.raises(ManifestError, match="cleaning.filter must be one of"):
        parse_manifest(tomllib.loads(MINIMAL + base + '[cleaning]\nfilter = "huth"\n'), "tiny.toml")


def test_builtin_manifests_declare_their_convention():
    assert load_manifest("lebel2023_pca")[0]["timing"]["convention"] == "tr_text"
    assert load_manifest("lebel2023")[0]["timing"]["convention"] == "tr_text"
    ref = load_manifest("lebel2023_pca_reference")[0]
    assert ref["timing"]["convention"] == "reference" and ref["cleaning"]["filter"] == "reference"


# ---------------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def reference(lebel_root):
    return load_dataset("lebel2023_pca_reference", lebel_root)


@pytest.fixture(scope="module")
def reference_wordrate(lebel_root):
    path = lebel_root / "reference_huthlab" / "wordrate_lanczos.npz"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def test_wordrate_equals_the_reference_code_on_all_84_stories(reference, reference_wordrate, tmp_path):
    """Raw (un-z-scored) ``wordrate``: max |diff| <= 1e-5 on every story."""
    assert sorted(reference_wordrate) == reference.stories() and len(reference_wordrate) == 84
    ctx = SpaceContext(reference, progress=False, cache=NpzCache(tmp_path))
    space = get_space("wordrate")
    params = resolve_params(space)
    worst = {}
    for story, ref in reference_wordrate.items():
        x = space.build(ctx, params, story)
        assert x.shape == (ref.shape[0], 1), story
        worst[story] = float(np.abs(x[:, 0] - ref).max())
    bad = {s: d for s, d in worst.items() if d > 1e-5}
    assert not bad, f"stories differing from the reference wordrate: {bad}"
    # the tr_text convention is the 1 s earlier kernel: not equal (the check can fail)
    ours = load_dataset("lebel2023_pca", reference.root)
    x = get_space("wordrate").build(SpaceContext(ours, progress=False, cache=NpzCache(tmp_path)),
                                    params, "wheretheressmoke")[:, 0]
    assert np.corrcoef(x, reference_wordrate["wheretheressmoke"])[0, 1] < 0.9


def test_zscored_design_equals_the_reference_zscore(reference, reference_wordrate, tmp_path):
    """The design's per-story z-scoring of the trimmed rows is the reference code's ``zscore``."""
    stories = ["avatar", "wheretheressmoke", "life"]
    ctx = SpaceContext(reference, progress=False, cache=NpzCache(tmp_path))
    design = build_design(ctx, "wordrate", stories, delays=(0, 1))
    assert design.timing["convention"] == "reference" and design.timing["word_filter"] == "reference"
    assert design.describe()["timing"]["first_row"] == {"window": [10.0, 12.0], "kernel_centre": 11.0}
    for s in stories:
        ref = reference_wordrate[s]
        z = (ref - ref.mean()) / ref.std()
        np.testing.assert_allclose(design.X[s][:, 0], z, atol=1e-5)
        np.testing.assert_allclose(design.X[s][1:, 1], z[:-1], atol=1e-5)  # delays stay in the story
        assert design.X[s][0, 1] == 0


def _reference_chunk_counts(onsets: np.ndarray, n_trs: int) -> np.ndarray:
    """Words per TR chunk as the reference code cuts them, trimmed [10:-5]: triggers at 2k - 10 s
    (k < n_trs - 5); chunk k ends where the words starting before 2k - 8 s end."""
    triggers = np.arange(n_trs - 5) * 2.0 - 10.0
    ends = np.array([(onsets < t + 2.0).sum() for t in triggers])[:-1]
    counts = np.diff(np.concatenate([[0], ends, [len(onsets)]]))
    return counts[10:-5]


def test_rectangular_sum_and_mean_follow_the_convention(reference, lebel_root, tmp_path):
    ctx = SpaceContext(reference, progress=False, cache=NpzCache(tmp_path))
    space = get_space("wordrate")
    for story in reference.stories():
        st = reference.load_story(story)
        expected = _reference_chunk_counts(st.transcript.onsets, reference.n_trs(story))
        rect = space.build(ctx, resolve_params(space, {"method": "sum"}), story)[:, 0]
        np.testing.assert_array_equal(rect, expected, err_msg=story)
        np.testing.assert_array_equal(st.grid.words_per_row(st.transcript.onsets), expected)
        mean = space.build(ctx, resolve_params(space, {"method": "mean"}), story)[:, 0]
        np.testing.assert_array_equal(mean, (expected > 0).astype(np.float32))


def test_tr_text_is_the_reference_chunks_one_tr_earlier(reference, lebel_root):
    """Reference row r holds the words of ``tr_text`` row r + 1 (same words: tr_text keeps the
    reference filter's marks), for every row of the 82 stories with words and responses."""
    stories = reference.stories_with_responses("UTS03", require_words=True)
    assert len(stories) == 82
    n_rows = n_match = 0
    for name in stories:
        story = reference.load_story(name)
        with np.load(reference.responses_path("UTS03", name)) as z:
            tr_text = [str(t).split() for t in z["tr_text"]]
        rows = [" ".join(words).split() for words in story.row_words()]
        assert len(rows) == len(tr_text)
        n_rows += len(rows) - 1
        n_match += sum(a == b for a, b in zip(rows[:-1], tr_text[1:]))
        assert sum(a == b for a, b in zip(rows, tr_text)) < 0.5 * len(rows), name  # not the same rows
    assert n_match == n_rows == 27348 - 82


def _run(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    entry = "import sys; from gim_brain.cli.main import main; sys.exit(main())"  # `gim-brain ARGS`
    return subprocess.run([sys.executable, "-c", entry, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_fit_records_the_convention_in_summary_json(lebel_root, tmp_path):
    out = tmp_path / "run"
    proc = _run("fit", "--manifest", "lebel2023_pca_reference", "--data-root", str(lebel_root),
                "--subject", "UTS03", "--features", "wordrate", "--n-folds", "2",
                "--n-permutations", "0", "--train-stories", "avatar", "life", "legacy",
                "--no-progress", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    timing = json.loads((out / "summary.json").read_text())["feature_sets"]["wordrate"]["timing"]
    assert timing["convention"] == "reference" and timing["word_filter"] == "reference"
    assert timing["first_row"]["kernel_centre"] == 11.0


def test_unknown_convention_is_a_clear_cli_error(lebel_root, tmp_path):
    text = (REPO / "data_manifests" / "lebel2023_pca.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('convention = "tr_text"', 'convention = "huth"'))
    proc = _run("datasets", "check", "--manifest", str(bad), "--data-root", str(lebel_root), cwd=tmp_path)
    assert proc.returncode == 2
    assert f"{bad}: timing.convention must be one of ['tr_text', 'reference'], got 'huth'" in proc.stderr
    assert "Traceback" not in proc.stderr
