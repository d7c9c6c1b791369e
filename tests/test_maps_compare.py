"""Value selection (--value grammar), differences, unique variance and ROI summaries."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from gim_brain.maps.compare import difference, roi_summary, seitzman_labels
from gim_brain.maps.values import UnknownValueError, parse_value, select_values


def _result(feature_set, r, unique=None, split=None, pvalues=None):
    return SimpleNamespace(feature_set=feature_set, scores={"r": np.asarray(r), "r2": np.asarray(r) ** 2},
                           alphas=np.full(len(r), 100.0), pvalues=pvalues,
                           unique_variance=unique or {}, split_scores=split or {})


@pytest.fixture()
def results():
    return {
        "gim": _result("gim", [0.1, 0.3, -0.1]),
        "lm": _result("lm", [0.2, 0.1, 0.0]),
        "lm_gim": _result("lm,gim", [0.25, 0.35, 0.0],
                          unique={"lm": np.array([0.01, 0.0, 0.0]), "gim": np.array([0.0, 0.05, -0.01])},
                          split={"lm": np.array([0.04, 0.02, 0.0]), "gim": np.array([0.02, 0.1, 0.0])},
                          pvalues=np.array([0.001, 0.5, 1.0])),
    }


def test_parse_value_grammar():
    assert parse_value("r") == ("r", None)
    assert parse_value("unique:gim") == ("unique", "gim")
    assert parse_value("diff:gim-lm") == ("diff", "gim-lm")
    for bad in ("rr", "unique", "unique:", "bogus:x"):
        with pytest.raises(UnknownValueError, match=f"unknown value {bad!r}"):
            parse_value(bad)


def test_select_r_alpha_unique_pvalue(results):
    r = select_values("r", results, "gim")
    assert np.array_equal(r.values, [0.1, 0.3, -0.1]) and r.kind == "r" and r.slug == "r_gim"
    # a feature set may be named by its SPEC as well as by its folder name
    u = select_values("unique:gim", results, "lm,gim")
    assert np.array_equal(u.values, [0.0, 0.05, -0.01]) and u.kind == "unique"
    assert np.allclose(select_values("alpha", results, "lm").values, 2.0)
    assert np.allclose(select_values("pvalue", results, "lm_gim").values, [3.0, -np.log10(0.5), 0.0])


def test_diff_between_feature_sets_and_between_spaces(results):
    d = select_values("diff:gim-lm", results)
    assert np.allclose(d.values, [-0.1, 0.2, -0.1]) and d.kind == "diff"
    s = select_values("diff:gim-lm", {"lm_gim": results["lm_gim"]})
    assert np.allclose(s.values, [-0.02, 0.08, 0.0])
    with pytest.raises(ValueError, match="different targets"):
        difference(np.zeros(3), np.zeros(4), "a", "b")
    results["short"] = _result("short", [0.1, 0.2])
    with pytest.raises(UnknownValueError, match="diff:gim-short: cannot subtract short"):
        select_values("diff:gim-short", results)


def test_clear_errors_for_unknown_names(results):
    with pytest.raises(UnknownValueError, match="choose one with --feature-set"):
        select_values("r", results)
    with pytest.raises(UnknownValueError, match="feature set 'nope' not in the run"):
        select_values("r", results, "nope")
    with pytest.raises(UnknownValueError, match=r"no unique variance for space 'xx'; spaces: \['gim', 'lm'\]"):
        select_values("unique:xx", results, "lm_gim")
    with pytest.raises(UnknownValueError, match="gim has no unique-variance maps"):
        select_values("unique:gim", results, "gim")
    with pytest.raises(UnknownValueError, match="has no p-values"):
        select_values("pvalue", results, "gim")
    with pytest.raises(UnknownValueError, match="diff:gim-zz names neither"):
        select_values("diff:gim-zz", results)


def test_roi_summary_means_per_region():
    values = np.array([1.0, 3.0, 10.0, np.nan, 5.0, -2.0])
    labels = np.array(["A", "A", "B", "B", "", "B"], dtype=object)
    table = roi_summary(values, labels)
    assert list(table.index) == ["B", "A"]  # sorted by mean
    assert table.loc["A", "mean"] == 2.0 and table.loc["A", "n"] == 2
    assert table.loc["B", "mean"] == 4.0 and table.loc["B", "max"] == 10.0
    assert table.loc["B", "frac_positive"] == 0.5


def test_seitzman_atlas_is_offline_and_labels_roi_centres():
    from nilearn import datasets

    atlas = datasets.fetch_coords_seitzman_2018()
    auditory = np.flatnonzero(np.asarray(atlas.networks) == "Auditory")[0]
    centre = np.asarray(atlas.rois[["x", "y", "z"]], float)[auditory]
    labels = seitzman_labels(np.array([centre, centre + 2.0, [0.0, 0.0, 200.0]]), radius=8.0)
    assert labels[0].startswith("Auditory ") and labels[1] == labels[0]
    assert labels[2] == ""
