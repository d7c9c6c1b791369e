"""Feature-space registry, design matrices, caching/resume and the ``features`` CLI."""

import json

import numpy as np
import pytest
from _features_helpers import make_tiny_dataset

from gim_brain._cache import NpzCache
from gim_brain.cli.main import main
from gim_brain.data import load_dataset
from gim_brain.features import (FeatureParameterError, SpaceContext, UnknownFeatureSpaceError,
                                build_design, get_space, list_spaces, parse_spec, resolve_params)
from gim_brain.features import wordrate


@pytest.fixture()
def tiny(tmp_path):
    manifest = make_tiny_dataset(tmp_path / "data")
    return load_dataset(manifest, tmp_path / "data"), manifest, tmp_path


def _ctx(ds, tmp_path, **kw):
    return SpaceContext(ds, subject="S1", cache=NpzCache(tmp_path / "cache"), progress=False, **kw)


def test_registry_lists_spaces_and_rejects_bad_names_and_params():
    names = set(list_spaces())
    assert {"wordrate", "letterrate", "syllablerate", "gim-induction", "gim-induction-random",
            "ngram-induction", "ar-control"} <= names
    with pytest.raises(UnknownFeatureSpaceError, match="'wordrat'.*known spaces: .*wordrate"):
        get_space("wordrat")
    with pytest.raises(FeatureParameterError, match="'gap' of feature space 'ar-control' must be of type int"):
        resolve_params("ar-control", {"gap": "four"})
    with pytest.raises(FeatureParameterError, match="must be of type int"):
        resolve_params("ar-control", {"gap": 4.5})
    with pytest.raises(FeatureParameterError, match="has no parameter 'lag'"):
        resolve_params("ar-control", {"lag": "3"})
    with pytest.raises(FeatureParameterError, match="must be one of"):
        resolve_params("wordrate", {"method": "cubic"})
    assert resolve_params("ar-control", {"gap": "6"})["gap"] == 6


def test_parse_spec():
    bands = parse_spec("wordrate+ar-control[gap=5;n_components=3],letterrate")
    assert [[r.name for r in b] for b in bands] == [["wordrate", "ar-control"], ["letterrate"]]
    assert dict(bands[0][1].given) == {"gap": "5", "n_components": "3"}
    with pytest.raises(ValueError, match="cannot read"):
        parse_spec("wordrate+")


def test_design_shapes_bands_zscore_and_silent_trs(tiny):
    ds, _, tmp = tiny
    ctx = _ctx(ds, tmp)
    d = build_design(ctx, "wordrate+letterrate,syllablerate[method=sum]")
    assert set(d.X) == {"s0", "s1", "s2", "s3"}
    for s, x in d.X.items():
        assert x.shape == (ds.load_story(s).grid.n_rows, 12) and x.dtype == np.float32
    assert d.band_slices == {"wordrate+letterrate": slice(0, 8), "syllablerate[method=sum]": slice(8, 12)}
    # raw wordrate (no delays) is z-scored per story; delayed copies are shifted within the story
    raw = build_design(ctx, "wordrate", delays=(0,)).X["s0"][:, 0]
    assert abs(raw.mean()) < 1e-5 and abs(raw.std() - 1) < 1e-4
    np.testing.assert_allclose(d.X["s0"][1:, 0], raw[:-1], atol=1e-6)
    assert d.X["s0"][0, 0] == 0
    # the silent stretch (TRs without words) is handled: rectangular counts are exactly 0 there
    counts = build_design(ctx, "wordrate[method=sum]", delays=(0,)).X["s0"][:, 0]
    story = ds.load_story("s0")
    empty = story.grid.words_per_row(story.transcript.onsets) == 0
    assert empty.sum() >= 5 and np.unique(np.round(counts[empty], 4)).size == 1
    assert d.describe()["spaces"][0]["params"] == {"method": "lanczos"}


def test_design_rejects_unknown_space_and_param(tiny):
    ds, _, tmp = tiny
    with pytest.raises(UnknownFeatureSpaceError):
        build_design(_ctx(ds, tmp), "wordrate+nosuchspace")
    with pytest.raises(FeatureParameterError, match="no feature space of SPEC"):
        build_design(_ctx(ds, tmp), "wordrate", params={"layer": "3"})


def test_interrupted_run_resumes_from_cache(tiny, monkeypatch):
    ds, _, tmp = tiny
    first = build_design(_ctx(ds, tmp), "letterrate", stories=["s1", "s2"])
    # a fresh run (new process state) must not recompute what the cache holds ...
    monkeypatch.setattr(wordrate, "count_letters", lambda w: (_ for _ in ()).throw(RuntimeError("recomputed")))
    again = build_design(_ctx(ds, tmp), "letterrate", stories=["s1", "s2"])
    np.testing.assert_array_equal(again.X["s1"], first.X["s1"])
    # ... and computes only what is missing
    with pytest.raises(RuntimeError, match="recomputed"):
        build_design(_ctx(ds, tmp), "letterrate", stories=["s1", "s3"])
    # a changed parameter never reuses a stale entry
    with pytest.raises(RuntimeError, match="recomputed"):
        build_design(_ctx(ds, tmp), "letterrate[method=mean]", stories=["s1"])


def test_induction_spaces_use_training_pca_and_no_per_story_zscore(tiny):
    ds, _, tmp = tiny
    ctx = _ctx(ds, tmp)
    d = build_design(ctx, "ar-control[n_components=4],ngram-induction[n_components=4],"
                          "gim-induction-random[n_components=4]")
    assert d.n_features == 3 * 36 and all(not s["delayed"] for s in d.spaces)
    assert ctx.training_stories() == ["s1", "s2", "s3"]
    x = d.X["s0"]
    assert not x[:4].any()                       # nothing to match before row gap
    assert abs(x[:, :36].mean()) > 1e-3 or abs(x[:, :36].std() - 1) > 1e-3   # not z-scored per story
    # the text repeats, so the n-gram rule finds long matches: its features differ from AR's
    assert not np.allclose(x[:, :36], x[:, 36:72])


def test_features_cli_writes_matrices_and_reports_bad_input(tiny, capsys):
    ds, manifest, tmp = tiny
    out = tmp / "out"
    rc = main(["features", "--manifest", str(manifest), "--data-root", str(tmp / "data"),
               "--space", "wordrate", "--param", "method=sum", "--out", str(out), "--no-progress"])
    assert rc == 0
    x = np.load(out / "s2.npy")
    assert x.shape == (ds.load_story("s2").grid.n_rows, 4)
    desc = json.loads((out / "features.json").read_text())
    assert desc["spec"] == "wordrate" and desc["spaces"][0]["params"]["method"] == "sum"
    assert desc["stories"]["s2"] == list(x.shape)
    rc = main(["features", "--manifest", str(manifest), "--data-root", str(tmp / "data"),
               "--space", "wordrat", "--out", str(out)])
    assert rc == 2 and "unknown feature space 'wordrat'" in capsys.readouterr().err
    rc = main(["features", "--manifest", str(manifest), "--data-root", str(tmp / "data"),
               "--space", "ar-control", "--subject", "S1", "--param", "gap=x", "--out", str(out)])
    assert rc == 2 and "must be of type int" in capsys.readouterr().err
    assert main(["features", "--list"]) == 0
    assert "gim-induction" in capsys.readouterr().out


def test_wordrate_on_real_story(lebel_root, tmp_path):
    ds = load_dataset("lebel2023_pca", lebel_root)
    ctx = SpaceContext(ds, cache=NpzCache(tmp_path), progress=False)
    d = build_design(ctx, "wordrate[method=sum]", stories=["wheretheressmoke"], delays=(0,))
    story = ds.load_story("wheretheressmoke")
    counts = story.grid.words_per_row(story.transcript.onsets)
    assert d.X["wheretheressmoke"].shape == (291, 1)
    assert np.corrcoef(d.X["wheretheressmoke"][:, 0], counts)[0, 1] > 0.999


def test_story_without_words_is_a_clear_error():
    from gim_brain.data import Story, Transcript, TRGrid
    from gim_brain.data.cleaning import CleaningReport
    from gim_brain.features import EmptyStoryError
    from gim_brain.features.context import words_to_rows

    report = CleaningReport()
    empty = Story("silence", Transcript([], np.zeros(0), np.zeros(0)),
                  TRGrid.from_convention(30, 2.0, 10.0, 10, 10), report)
    with pytest.raises(EmptyStoryError, match="story 'silence' has no words"):
        words_to_rows(empty, np.zeros((0, 3)))
