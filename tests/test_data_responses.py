"""Response readers (hf5, npy, npz, NIfTI + mask, text) and their checks."""

from __future__ import annotations

import warnings

import h5py
import nibabel as nib
import numpy as np
import pytest

from gim_brain.data import ResponseError, inspect_responses, read_responses, validate_responses
from gim_brain.data.responses import response_shape


def test_readers_return_float32_rows_by_targets(tmp_path):
    data = np.random.default_rng(0).standard_normal((12, 5))
    with h5py.File(tmp_path / "s.hf5", "w") as f:
        f.create_dataset("data", data=data)
        f.create_dataset("other", data=data[:, :2])
    np.save(tmp_path / "s.npy", data)
    np.savez(tmp_path / "s.npz", responses=data, tr_text=np.array(["a"] * 12))
    np.savetxt(tmp_path / "s.txt", data)
    for name, key in [("s.hf5", None), ("s.npy", None), ("s.npz", None), ("s.txt", None)]:
        out = read_responses(tmp_path / name, key=key)
        assert out.dtype == np.float32 and out.shape == (12, 5)
        np.testing.assert_allclose(out, data, rtol=1e-5)
    assert read_responses(tmp_path / "s.hf5", key="other").shape == (12, 2)
    assert response_shape(tmp_path / "s.hf5") == (12, 5)
    with pytest.raises(ResponseError, match=r"s\.hf5.*'nope'"):
        read_responses(tmp_path / "s.hf5", key="nope")
    with pytest.raises(ResponseError, match=r"s\.npz.*'nope'"):
        read_responses(tmp_path / "s.npz", key="nope")
    with pytest.raises(FileNotFoundError, match="missing.hf5"):
        read_responses(tmp_path / "missing.hf5")


def test_nifti_with_mask(tmp_path):
    rng = np.random.default_rng(1)
    vol = rng.standard_normal((4, 3, 2, 9)).astype(np.float32)
    mask = np.zeros((4, 3, 2), dtype=np.uint8)
    mask[1:3, :, 1] = 1
    nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / "bold.nii.gz")
    nib.save(nib.Nifti1Image(mask, np.eye(4)), tmp_path / "mask.nii.gz")
    out = read_responses(tmp_path / "bold.nii.gz", mask=tmp_path / "mask.nii.gz")
    assert out.shape == (9, int(mask.sum()))
    np.testing.assert_array_equal(out, vol[mask.astype(bool)].T)
    assert response_shape(tmp_path / "bold.nii.gz", mask=tmp_path / "mask.nii.gz") == (9, 6)
    with pytest.raises(ResponseError, match="bold.nii.gz.*mask"):
        read_responses(tmp_path / "bold.nii.gz")
    nib.save(nib.Nifti1Image(mask[:3], np.eye(4)), tmp_path / "small.nii.gz")
    with pytest.raises(ResponseError, match="small.nii.gz"):
        read_responses(tmp_path / "bold.nii.gz", mask=tmp_path / "small.nii.gz")


def test_row_mismatch_nan_rows_all_zero_and_constant_targets_are_named():
    data = np.random.default_rng(2).standard_normal((10, 4)).astype(np.float32)
    with pytest.raises(ResponseError, match=r"UTS01/avatar: 10 rows but the TR grid has 12"):
        validate_responses(data, "UTS01/avatar", expected_rows=12)
    nan = data.copy()
    nan[3, 1] = np.nan
    nan[7, 0] = np.inf
    with pytest.raises(ResponseError, match=r"UTS01/avatar: NaN or inf in 2 row\(s\): 3, 7"):
        validate_responses(nan, "UTS01/avatar", expected_rows=10)
    with pytest.raises(ResponseError, match="s33.*every value is zero"):
        validate_responses(np.zeros((10, 6)), "s33", expected_rows=10)
    const = data.copy()
    const[:, 2] = 5.0
    with pytest.warns(UserWarning, match="1 constant target.*LPTL"):
        validate_responses(const, "s18", 10, target_names=["LATL", "RATL", "LPTL", "LIPL"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert validate_responses(data, "fine", 10) is data
    report = inspect_responses(nan, "x", 9)
    assert report.row_mismatch and report.nonfinite_rows == [3, 7] and not report.all_zero
