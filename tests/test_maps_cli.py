"""`gim-brain map` on run directories written by the encoding layer's write_run."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from gim_brain.cli.main import main

from _maps_helpers import blob_values, low_res_mni_mask, make_fake_pycortex_db

encoding = pytest.importorskip("gim_brain.encoding")


def _result(spec, spaces, r, **extra):
    return encoding.EncodingResult(feature_set=spec, spaces=spaces,
                                   scores={"r": r.astype(np.float32), "r2": (r ** 2).astype(np.float32)},
                                   alphas=np.full(r.size, 10.0, np.float32), **extra)


@pytest.fixture(scope="module")
def mni_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("mni_run")
    mask = low_res_mni_mask(8)
    nib.save(mask, str(root / "mask.nii.gz"))
    r_gim = blob_values(mask, (-56, -24, 4), sigma_mm=10.0)
    r_lm = blob_values(mask, (50, 20, 10), sigma_mm=10.0, amplitude=0.3)
    banded = _result("lm,gim", ["lm", "gim"], np.maximum(r_gim, r_lm),
                     unique_variance={"lm": r_lm ** 2, "gim": r_gim ** 2},
                     split_scores={"lm": r_lm ** 2, "gim": r_gim ** 2})
    encoding.write_run(root / "run", {"gim": _result("gim", ["gim"], r_gim),
                                      "lm": _result("lm", ["lm"], r_lm), "lm,gim": banded},
                       subject="MNI01", test_stories=["a"],
                       targets={"kind": "volume", "mask": str(root / "mask.nii.gz")},
                       parameters={})
    return root, mask, r_gim, r_lm


def test_map_writes_every_kind_with_the_data_behind_it(mni_run, tmp_path, capsys):
    root, mask, r_gim, r_lm = mni_run
    out = tmp_path / "maps"
    code = main(["map", str(root / "run"), "--out", str(out), "--value", "diff:gim-lm", "--dpi", "40"])
    assert code == 0, capsys.readouterr().err
    names = {p.name for p in out.iterdir()}
    slug = "diff_gim-lm"
    assert {f"{slug}.nii.gz", f"{slug}_volume.png", f"{slug}_glass.png", f"{slug}_rois.csv",
            f"{slug}_surface.png", f"{slug}_surface.npz", f"{slug}_flat.png",
            f"{slug}_surface.html", f"{slug}_volume.html"} <= names
    # the saved volume holds r(gim) - r(lm) on the mask voxels
    img = nib.load(str(out / f"{slug}.nii.gz"))
    assert np.allclose(img.get_fdata()[np.asarray(mask.dataobj) != 0], r_gim - r_lm, atol=1e-6)
    # on fsaverage5, the gim blob (left temporal) is positive, the lm blob (right frontal) negative
    vertex = np.load(out / f"{slug}_surface.npz")
    assert vertex["left"].max() > 0.1 and vertex["right"].min() < -0.05
    # ROI summary: the left auditory network sits in the positive blob
    table = {line.split(",")[0]: line.split(",") for line in
             (out / f"{slug}_rois.csv").read_text().splitlines()[1:]}
    assert float(table["Auditory L"][2]) > 0
    printed = capsys.readouterr().out
    assert "surface" in printed and "MNI01" not in printed  # lists files; subject is in titles


def test_map_unique_variance_for_one_kind(mni_run, tmp_path):
    root, mask, r_gim, _ = mni_run
    out = tmp_path / "u"
    assert main(["map", str(root / "run"), "--out", str(out), "--kind", "volume",
                 "--value", "unique:gim", "--feature-set", "lm,gim", "--dpi", "40"]) == 0
    img = nib.load(str(out / "unique_gim_lm__gim.nii.gz"))
    assert np.allclose(img.get_fdata()[np.asarray(mask.dataobj) != 0], r_gim ** 2, atol=1e-6)
    assert not (out / "unique_gim_lm__gim_surface.png").exists()


@pytest.mark.parametrize("argv, message", [
    (["--value", "bogus"], "unknown value 'bogus'"),
    (["--value", "r", "--feature-set", "nosuch"], "feature set 'nosuch' not in the run"),
    (["--value", "unique:zz"], "no feature set of the run"),
    (["--value", "unique:zz", "--feature-set", "lm,gim"], "no unique variance for space 'zz'"),
    (["--kind", "volume,3d"], "unknown kind(s) ['3d']"),
])
def test_bad_arguments_give_clear_errors(mni_run, tmp_path, capsys, argv, message):
    root = mni_run[0]
    assert main(["map", str(root / "run"), "--out", str(tmp_path / "o"), *argv]) == 2
    assert message in capsys.readouterr().err


def test_component_targets_and_bad_masks_are_refused(mni_run, tmp_path, capsys):
    root = mni_run[0]
    run = root / "run"
    targets = json.loads((run / "targets.json").read_text())
    pcs = tmp_path / "pcs"
    encoding.write_run(pcs, {"gim": _result("gim", ["gim"], np.zeros(200))}, subject="UTS03",
                       test_stories=["a"], targets={"kind": "components", "reason": "response PCs"},
                       parameters={})
    assert main(["map", str(pcs), "--out", str(tmp_path / "o")]) == 2
    assert "components (response PCs), not voxels" in capsys.readouterr().err
    # values that do not fit the mask: the error names the mask file
    short = tmp_path / "short"
    encoding.write_run(short, {"gim": _result("gim", ["gim"], np.zeros(10))}, subject="S",
                       test_stories=["a"], targets=targets, parameters={})
    assert main(["map", str(short), "--out", str(tmp_path / "o"), "--kind", "volume"]) == 2
    assert "10 values do not match the" in capsys.readouterr().err


def test_map_pycortex_db_run_draws_native_surfaces(tmp_path):
    db = make_fake_pycortex_db(tmp_path / "pycortex-db")
    n = int(db.mask.sum())
    r = np.linspace(-0.1, 0.6, n)
    encoding.write_run(tmp_path / "run", {"gim": _result("gim", ["gim"], r)}, subject="UTS99",
                       test_stories=["a"],
                       targets={"kind": "pycortex_db", "db": str(db.root), "subject": "UTS99"},
                       parameters={})
    out = tmp_path / "maps"
    assert main(["map", str(tmp_path / "run"), "--out", str(out), "--kind", "volume,surface,flat",
                 "--dpi", "40"]) == 0
    img = nib.load(str(out / "r_gim.nii.gz"))
    assert np.allclose(img.get_fdata().T[db.mask.T], r, atol=1e-6)  # pycortex voxel order
    vertex = np.load(out / "r_gim_surface.npz")
    assert vertex["left"].shape == (db.wm["left"].shape[0],)
    assert (out / "r_gim_flat.png").stat().st_size > 1000


def test_map_without_feature_set_maps_every_feature_set(mni_run, tmp_path, capsys):
    root = mni_run[0]
    out = tmp_path / "all"
    assert main(["map", str(root / "run"), "--out", str(out), "--kind", "volume", "--dpi", "30"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"r_gim.nii.gz", "r_lm.nii.gz", "r_lm__gim.nii.gz"} <= names
    # a value only some feature sets have: those are mapped
    assert main(["map", str(root / "run"), "--out", str(tmp_path / "u"), "--kind", "volume",
                 "--value", "unique:gim", "--dpi", "30"]) == 0
    assert {p.name for p in (tmp_path / "u").glob("*.nii.gz")} == {"unique_gim_lm__gim.nii.gz"}


def test_a_new_map_kind_is_one_module(mni_run, tmp_path, monkeypatch):
    """A module registering a kind is offered by `gim-brain map --kind` with no other edit."""
    from pathlib import Path

    from gim_brain.maps import kinds, render

    # the built-in kinds are found as the modules of gim_brain.maps.kinds, listed nowhere else
    modules = {p.stem for p in Path(kinds.__file__).parent.glob("*.py") if p.stem != "__init__"}
    assert set(render.map_kinds()) == modules == set(render.MAP_KINDS)

    def draw(job):
        path = job.out / f"{job.slug}_mean.txt"
        path.write_text(f"{np.nanmean(job.values):.6f}\n")
        return [path]

    monkeypatch.setitem(render._KINDS, "mean", render.MapKind("mean", draw, order=99))
    root, mask, r_gim, _ = mni_run
    assert "mean" in render.map_kinds()
    out = tmp_path / "m"
    assert main(["map", str(root / "run"), "--out", str(out), "--kind", "mean",
                 "--feature-set", "gim"]) == 0
    assert float((out / "r_gim_mean.txt").read_text()) == pytest.approx(float(np.mean(r_gim)), abs=1e-6)
