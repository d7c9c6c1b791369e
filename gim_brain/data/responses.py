"""Readers and checks for fMRI responses: float32 arrays of shape (n_rows, n_targets)."""

from __future__ import annotations

import os
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "ResponseError",
    "ResponseProblems",
    "read_responses",
    "response_shape",
    "inspect_responses",
    "validate_responses",
    "nifti_geometry",
]


class ResponseError(ValueError):
    """Responses that cannot be used as they are; the message names the file and the fault."""


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _as_2d(data: np.ndarray, path: Path) -> np.ndarray:
    data = np.asarray(data)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2:
        raise ResponseError(f"{path}: responses must be 2-D (n_rows, n_targets), got shape {data.shape}")
    if not np.issubdtype(data.dtype, np.number):
        raise ResponseError(f"{path}: responses must be numeric, got dtype {data.dtype}")
    return np.ascontiguousarray(data, dtype=np.float32)


def _npz_key(keys: list[str], key: str | None, path: Path) -> str:
    if key is not None:
        if key not in keys:
            raise ResponseError(f"{path}: no array named {key!r}; arrays: {keys}")
        return key
    if len(keys) == 1:
        return keys[0]
    for default in ("responses", "data"):
        if default in keys:
            return default
    raise ResponseError(f"{path}: several arrays {keys}; name one (manifest key responses.key)")


def _nifti_pair(path: Path, mask: str | Path | None):
    """The image and its mask, loaded lazily; their grids (shape and affine) must agree."""
    import nibabel as nib

    if mask is None:
        raise ResponseError(f"{path}: a 4-D NIfTI needs a mask (manifest key responses.mask)")
    mask = Path(mask)
    if not mask.is_file():
        raise FileNotFoundError(f"mask not found: {mask}")
    img = nib.load(str(path))
    try:
        mask_img = nib.load(str(mask))
    except Exception as exc:
        if not _is_read_error(exc):
            raise
        raise ResponseError(f"{mask}: cannot read the mask: {type(exc).__name__}: {exc}") from None
    if len(img.shape) != 4:
        raise ResponseError(f"{path}: expected a 4-D NIfTI (x, y, z, time), got shape {img.shape}")
    if tuple(mask_img.shape[:3]) != tuple(img.shape[:3]) or len(mask_img.shape) != 3:
        raise ResponseError(f"{path}: image grid {img.shape[:3]} differs from mask {mask} grid {mask_img.shape}")
    if not np.allclose(img.affine, mask_img.affine, atol=1e-3):
        codes = "".join(nib.aff2axcodes(img.affine)), "".join(nib.aff2axcodes(mask_img.affine))
        raise ResponseError(f"{path}: image and mask {mask} are not on the same grid: their affines "
                            f"differ (orientation {codes[0]} vs {codes[1]}); resample one onto the other")
    return img, mask_img


def _masked_nifti(path: Path, mask: str | Path | None) -> np.ndarray:
    img, mask_img = _nifti_pair(path, mask)
    mask_data = np.asarray(mask_img.dataobj) != 0
    if not mask_data.any():
        raise ResponseError(f"{mask}: mask is empty")
    data = np.asarray(img.dataobj)
    return data[mask_data].T  # (n_time, n_voxels) in C order of the mask


def _hdf5_dataset(f, path: Path, key: str | None):
    """The dataset ``key`` (default ``data``) of an open HDF5 file, or a ResponseError naming both."""
    name = key or "data"
    if name not in f:
        raise ResponseError(f"{path}: no HDF5 dataset named {name!r}; datasets: {list(f.keys())}")
    return f[name]


def _unreadable(path: Path, exc: BaseException) -> ResponseError:
    first = str(exc).splitlines()[0] if str(exc) else ""
    return ResponseError(f"{path}: cannot read responses (truncated or not a valid "
                         f"{_suffix(path) or 'data'} file?): {type(exc).__name__}: {first}")


#: What the format libraries raise on a damaged file (zipfile.BadZipFile is an Exception,
#: h5py/nibabel raise OSError, numpy ValueError/EOFError, gzip BadGzipFile/EOFError).
_READ_ERRORS = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile)
#: Modules whose own exception classes (nibabel's ImageFileError, HeaderDataError) mean a bad file.
_READER_MODULES = ("nibabel", "h5py", "zipfile", "gzip")


def _is_read_error(exc: BaseException) -> bool:
    return isinstance(exc, _READ_ERRORS) or type(exc).__module__.split(".")[0] in _READER_MODULES


def _read(path: Path, key: str | None, mask: str | Path | None) -> np.ndarray:
    suffix = _suffix(path)
    if suffix in (".hf5", ".h5", ".hdf5"):
        import h5py

        with h5py.File(path, "r") as f:
            return _hdf5_dataset(f, path, key)[()]
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return z[_npz_key(list(z.files), key, path)]
    if suffix in (".nii", ".nii.gz"):
        return _masked_nifti(path, mask)
    if suffix in (".txt", ".tsv", ".csv"):
        return _read_text_table(path, "," if suffix == ".csv" else None)
    raise ResponseError(f"{path}: unknown responses format {suffix!r}")


def _read_text_table(path: Path, delimiter: str | None) -> np.ndarray:
    """Numbers of a text table, one row per TR; ragged rows and non-UTF-8 bytes are errors."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ResponseError(f"{path}: not valid UTF-8 text (byte {exc.start}: {raw[exc.start:exc.start + 1]!r})") from None
    rows = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split(delimiter) if delimiter else line.split()
        try:
            values = [float(v) for v in fields]
        except ValueError:
            raise ResponseError(f"{path}, line {line_no}: not all numbers: {line[:80]!r}") from None
        if rows and len(values) != len(rows[0]):
            raise ResponseError(f"{path}, line {line_no}: {len(values)} values but the first row has "
                                f"{len(rows[0])} (truncated or ragged table?)")
        rows.append(values)
    if not rows:
        raise ResponseError(f"{path}: no rows of numbers")
    return np.asarray(rows, dtype=np.float64)


def _guarded(reader, path: Path, key, mask):
    """``reader(path, key, mask)``, with any reader library's error on a damaged file turned
    into a :class:`ResponseError` naming ``path``."""
    if not path.is_file():
        raise FileNotFoundError(f"responses not found: {path}")
    try:
        return reader(path, key, mask)
    except (ResponseError, FileNotFoundError):
        raise
    except Exception as exc:
        if not _is_read_error(exc):
            raise
        raise _unreadable(path, exc) from None


def read_responses(path: str | Path, key: str | None = None, mask: str | Path | None = None) -> np.ndarray:
    """Read one story's responses as float32 ``(n_rows, n_targets)``.

    Parameters
    ----------
    path : ``.hf5``/``.h5`` (HDF5 dataset ``key``, default ``data``), ``.npy``, ``.npz``
        (array ``key``, default the only array or ``responses``/``data``), ``.nii``/``.nii.gz``
        (4-D image masked by ``mask``: voxels where the mask is non-zero, C order), or
        ``.txt``/``.tsv``/``.csv`` (whitespace/tab/comma-separated numbers, one row per TR).
    key : dataset or array name.
    mask : 3-D NIfTI mask, required for 4-D NIfTI responses.

    Raises
    ------
    ResponseError
        Naming the file: unreadable or truncated files, unknown arrays, ragged tables, a mask
        whose grid or orientation differs from the image, non-numeric or non-2-D data.
    FileNotFoundError
        The file (or the mask) does not exist.
    """
    path = Path(path)
    return _as_2d(_guarded(_read, path, key, mask), path)


def _check_nifti_size(path: Path, img) -> None:
    """Compare the bytes a NIfTI header promises with the file (``.nii``) or with the gzip
    trailer's uncompressed size (``.nii.gz``, modulo 2**32): a header-only read that still
    notices a truncated file."""
    header = img.header
    offset = int(getattr(img.dataobj, "offset", header.get_data_offset()))
    expected = offset + int(np.prod(img.shape)) * header.get_data_dtype().itemsize
    if _suffix(path) == ".nii":
        size = path.stat().st_size
        if size < expected:
            raise ResponseError(f"{path}: truncated NIfTI: {size} bytes but its header describes {expected}")
        return
    with open(path, "rb") as f:
        f.seek(-4, os.SEEK_END)
        isize = int.from_bytes(f.read(4), "little")
    if isize != expected % 2**32 and _gunzip_size(path) != expected:  # multi-member gzip: count
        raise ResponseError(f"{path}: truncated or damaged .nii.gz: the gzip trailer gives {isize} "
                            f"uncompressed bytes but the header describes {expected}")


def _gunzip_size(path: Path) -> int | None:
    """Uncompressed size of a gzip file (every member), or None when it does not decompress."""
    import gzip

    total = 0
    try:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                total += len(chunk)
    except (OSError, EOFError):
        return None
    return total


def _header_shape(path: Path, key: str | None, mask: str | Path | None) -> tuple[int, ...]:
    suffix = _suffix(path)
    if suffix in (".hf5", ".h5", ".hdf5"):
        import h5py

        with h5py.File(path, "r") as f:
            return tuple(_hdf5_dataset(f, path, key).shape)
    if suffix == ".npy":
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        if arr.ndim and arr.shape[0]:
            arr[-1]  # a truncated file fails here rather than later
        return tuple(arr.shape)
    if suffix in (".nii", ".nii.gz") and mask is not None:
        img, mask_img = _nifti_pair(path, mask)
        _check_nifti_size(path, img)
        n_vox = int((np.asarray(mask_img.dataobj) != 0).sum())
        return (int(img.shape[3]) if len(img.shape) == 4 else 1, n_vox)
    return tuple(read_responses(path, key=key, mask=mask).shape)


def response_shape(path: str | Path, key: str | None = None, mask: str | Path | None = None) -> tuple[int, int]:
    """``(n_rows, n_targets)`` of a responses file, reading only its header where the format allows.

    Raises :class:`ResponseError` naming the file when it cannot be read (see :func:`read_responses`).
    """
    path = Path(path)
    shape = _guarded(_header_shape, path, key, mask)
    if len(shape) == 1:
        shape = (shape[0], 1)
    return (int(shape[0]), int(np.prod(shape[1:])))


def nifti_geometry(path: str | Path) -> tuple[tuple[int, ...], np.ndarray] | None:
    """``(grid shape (x, y, z), 4x4 affine)`` of a NIfTI responses file from its header; None for
    other formats. Raises :class:`ResponseError` naming the file when the header is unreadable."""
    path = Path(path)
    if _suffix(path) not in (".nii", ".nii.gz"):
        return None
    import nibabel as nib

    try:
        img = nib.load(str(path))
    except Exception as exc:
        if not _is_read_error(exc):
            raise
        raise _unreadable(path, exc) from None
    return tuple(int(n) for n in img.shape[:3]), np.asarray(img.affine, dtype=np.float64)


@dataclass
class ResponseProblems:
    """What is wrong with a responses array (all empty/False when nothing is).

    Attributes
    ----------
    source : file or ``subject/story`` the array came from.
    shape : ``(n_rows, n_targets)``.
    expected_rows : rows the TR grid requires (None when unknown).
    nonfinite_rows : indices of rows containing NaN or inf.
    constant_targets : names of targets that never change (a voxel outside the brain, a dead ROI).
    all_zero : every value is zero (a subject whose export failed, e.g. Alice s33).
    """

    source: str
    shape: tuple[int, int]
    expected_rows: int | None = None
    nonfinite_rows: list[int] = field(default_factory=list)
    constant_targets: list[str] = field(default_factory=list)
    all_zero: bool = False

    @property
    def row_mismatch(self) -> bool:
        return self.expected_rows is not None and self.shape[0] != self.expected_rows

    def errors(self) -> list[str]:
        """Faults that make the array unusable, as messages naming the source."""
        out = []
        if self.row_mismatch:
            out.append(f"{self.source}: {self.shape[0]} rows but the TR grid has {self.expected_rows} "
                       f"(check the TR count, trims and responses.trimmed)")
        if self.nonfinite_rows:
            rows = self.nonfinite_rows
            shown = ", ".join(map(str, rows[:10])) + (" ..." if len(rows) > 10 else "")
            out.append(f"{self.source}: NaN or inf in {len(rows)} row(s): {shown}")
        if self.all_zero:
            out.append(f"{self.source}: every value is zero (failed export?); exclude it")
        return out

    def warnings(self) -> list[str]:
        """Faults worth knowing that do not stop a fit."""
        if self.constant_targets and not self.all_zero:
            names = self.constant_targets
            shown = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
            return [f"{self.source}: {len(names)} constant target(s): {shown}"]
        return []


def inspect_responses(
    data: np.ndarray,
    source: str,
    expected_rows: int | None = None,
    target_names: list[str] | None = None,
) -> ResponseProblems:
    """Look for row-count mismatch, NaN/inf rows, constant targets and all-zero data.

    Parameters
    ----------
    data : array (n_rows, n_targets).
    source : name used in messages (file path or ``subject/story``).
    expected_rows : rows of the story's TR grid.
    target_names : names of the targets (default ``target_<index>``).
    """
    data = np.asarray(data)
    finite = np.isfinite(data)
    bad_rows = np.flatnonzero(~finite.all(axis=1)).tolist()
    clean = np.where(finite, data, 0.0)
    all_zero = bool(data.size) and not np.any(clean) and not bad_rows
    if data.shape[0] > 1:
        constant = np.flatnonzero(np.all(clean == clean[:1], axis=0) & finite.all(axis=0))
    else:
        constant = np.array([], dtype=int)
    if target_names is not None and len(target_names) != data.shape[1]:
        raise ResponseError(f"{source}: {data.shape[1]} targets but {len(target_names)} target names")
    names = [target_names[i] if target_names is not None else f"target_{i}" for i in constant]
    return ResponseProblems(source, tuple(data.shape), expected_rows, bad_rows, names, all_zero)


def validate_responses(
    data: np.ndarray,
    source: str,
    expected_rows: int | None = None,
    target_names: list[str] | None = None,
) -> np.ndarray:
    """Raise :class:`ResponseError` for unusable responses; warn about constant targets.

    Returns ``data`` unchanged when it is usable.
    """
    problems = inspect_responses(data, source, expected_rows, target_names)
    errors = problems.errors()
    if errors:
        raise ResponseError("; ".join(errors))
    for message in problems.warnings():
        warnings.warn(message, stacklevel=2)
    return data
