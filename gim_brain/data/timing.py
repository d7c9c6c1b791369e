"""The response-row time grid of a story and the assignment of words to rows.

Two timing conventions place a dataset's words on its response rows (``[timing] convention`` of
a manifest). Both start from the same volume stamps: raw volume ``k`` is stamped
``s_k = k * tr - audio_start`` seconds from audio start (the audio starts ``audio_start`` s after
the first volume), and response row ``r`` is volume ``trim_start + r``.

``"tr_text"`` (default)
    Row ``r`` holds the words whose onset lies in ``[s_k - tr, s_k)``: the TR *before* the stamp,
    the windows of the per-TR text (``tr_text``) shipped with the ds003020 response files.
    Lanczos/sinc kernels are centred at the stamp, the window's end: ``s_k``.
``"reference"``
    The HuthLab ``deep-fMRI-dataset`` code: the trigger at ``s_k`` starts a TR and row ``r``
    holds the words whose onset lies in ``[s_k, s_k + tr)`` (its word->TR chunks), kernels
    centred in the middle of that TR, ``s_k + tr / 2``. On ds003020 these windows are one TR
    later than ``tr_text`` (reference row ``r`` = ``tr_text`` row ``r + 1``) and the kernels
    1 s later than under ``"tr_text"``.

Everything else is shared by the two: the row count ``n_trs - trim_start - trim_end``, word
midpoints ``(onset + offset) / 2`` as the times the kernels see, word onsets for rectangular
windows, per-story z-scoring of the trimmed rows. The reference code's word filter goes with
``"reference"`` (see :mod:`gim_brain.data.cleaning`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TRGrid", "TimingError", "TIMING_CONVENTIONS", "DEFAULT_CONVENTION", "check_convention"]

#: Known timing conventions (see the module docstring).
TIMING_CONVENTIONS = ("tr_text", "reference")
#: The convention a manifest gets when ``[timing] convention`` is not given.
DEFAULT_CONVENTION = "tr_text"


class TimingError(ValueError):
    """Inconsistent timing parameters (TR, trims, audio start, number of TRs)."""


def check_convention(convention: str, where: str = "timing.convention") -> str:
    """``convention`` if it is a known timing convention, else :class:`TimingError` naming ``where``."""
    if convention not in TIMING_CONVENTIONS:
        raise TimingError(f"{where} must be one of {list(TIMING_CONVENTIONS)}, got {convention!r}")
    return convention


@dataclass(frozen=True)
class TRGrid:
    """Times of a story's response rows.

    Row ``r`` holds the words whose onset lies in ``[row_times[r] - tr, row_times[r])`` (the
    rectangular window of ``sum``/``mean`` resampling and of word->row assignment); Lanczos/sinc
    kernels are centred at ``kernel_times[r]``.

    Parameters
    ----------
    tr : float
        Repetition time in seconds.
    n_rows : int
        Number of response rows (after trims).
    row_times : float64 array, shape (n_rows,)
        Seconds from audio start at the END of each row's word window.
    kernel_times : float64 array, shape (n_rows,), optional
        Seconds from audio start at the centre of each row's resampling kernel (default:
        ``row_times``).
    convention : str
        Name of the timing convention the grid follows (recorded, not interpreted).
    """

    tr: float
    n_rows: int
    row_times: np.ndarray
    kernel_times: np.ndarray | None = None
    convention: str = DEFAULT_CONVENTION

    def __post_init__(self) -> None:
        row_times = np.asarray(self.row_times, dtype=np.float64).reshape(-1)
        object.__setattr__(self, "row_times", row_times)
        kernel = row_times if self.kernel_times is None else np.asarray(self.kernel_times, np.float64).reshape(-1)
        object.__setattr__(self, "kernel_times", kernel)
        if not self.tr > 0:
            raise TimingError(f"tr must be positive seconds, got {self.tr}")
        if row_times.shape != (self.n_rows,):
            raise TimingError(f"row_times has {row_times.size} entries but n_rows={self.n_rows}")
        if kernel.shape != (self.n_rows,):
            raise TimingError(f"kernel_times has {kernel.size} entries but n_rows={self.n_rows}")
        if self.n_rows > 1 and np.any(np.diff(row_times) <= 0):
            raise TimingError("row_times must increase strictly")

    @classmethod
    def from_convention(
        cls,
        n_trs: int,
        tr: float,
        audio_start: float = 0.0,
        trim_start: int = 0,
        trim_end: int = 0,
        story: str = "",
        convention: str = DEFAULT_CONVENTION,
    ) -> "TRGrid":
        """Grid of a scan of ``n_trs`` raw volumes under a timing ``convention``.

        Volume ``k`` is stamped ``s_k = k * tr - audio_start`` seconds from audio start. The
        first ``trim_start`` and last ``trim_end`` volumes are dropped, so row ``r`` is volume
        ``trim_start + r`` and ``n_rows = n_trs - trim_start - trim_end``. ``"tr_text"``: words
        of ``[s_k - tr, s_k)``, kernels at ``s_k``; ``"reference"``: words of ``[s_k, s_k + tr)``,
        kernels at ``s_k + tr / 2`` (see the module docstring).

        ds003020 (LeBel 2023): ``tr=2, audio_start=10, trim_start=10, trim_end=10`` gives
        ``n_trs - 20`` rows; ``"tr_text"``: words with onset in ``[8 + 2r, 10 + 2r)``, kernels
        at ``10 + 2r``; ``"reference"``: words in ``[10 + 2r, 12 + 2r)``, kernels at ``11 + 2r``.
        """
        where = f" for story {story!r}" if story else ""
        check_convention(convention, f"timing convention{where}")
        if int(n_trs) != n_trs or n_trs <= 0:
            raise TimingError(f"n_trs{where} must be a positive integer, got {n_trs}")
        if trim_start < 0 or trim_end < 0:
            raise TimingError(f"trims{where} must be >= 0, got trim_start={trim_start}, trim_end={trim_end}")
        n_rows = int(n_trs) - int(trim_start) - int(trim_end)
        if n_rows <= 0:
            raise TimingError(
                f"story{where}: {n_trs} TRs leave no rows after trim_start={trim_start} and trim_end={trim_end}"
            )
        tr = float(tr)
        stamps = (np.arange(n_rows, dtype=np.float64) + trim_start) * tr - float(audio_start)
        if convention == "reference":
            return cls(tr, n_rows, stamps + tr, kernel_times=stamps + tr / 2.0, convention=convention)
        return cls(tr, n_rows, stamps, kernel_times=stamps, convention=convention)

    @property
    def row_starts(self) -> np.ndarray:
        """Seconds from audio start at the beginning of each row's word window, shape (n_rows,)."""
        return self.row_times - self.tr

    def describe(self) -> dict:
        """JSON-ready summary: convention, TR and the first row's window and kernel centre (s)."""
        first = {"window": [float(self.row_starts[0]), float(self.row_times[0])],
                 "kernel_centre": float(self.kernel_times[0])} if self.n_rows else {}
        return {"convention": self.convention, "tr": self.tr, "first_row": first}

    def assign_words(self, onsets: np.ndarray) -> np.ndarray:
        """Row of each word.

        Parameters
        ----------
        onsets : float array (n_words,), seconds from audio start.

        Returns
        -------
        int64 array (n_words,): the row whose window ``[row_times[r] - tr, row_times[r])``
        contains the onset, or -1 for words outside every window.
        """
        onsets = np.asarray(onsets, dtype=np.float64).reshape(-1)
        rows = np.searchsorted(self.row_times, onsets, side="right").astype(np.int64)
        inside = rows < self.n_rows
        ok = np.zeros(onsets.shape, dtype=bool)
        ok[inside] = onsets[inside] >= self.row_times[rows[inside]] - self.tr
        rows[~ok] = -1
        return rows

    def words_per_row(self, onsets: np.ndarray) -> np.ndarray:
        """Number of words in each row, int64 (n_rows,)."""
        rows = self.assign_words(onsets)
        return np.bincount(rows[rows >= 0], minlength=self.n_rows).astype(np.int64)

    def row_words(self, words: list[str], onsets: np.ndarray) -> list[list[str]]:
        """The words of each row, in order: a list of n_rows lists."""
        rows = self.assign_words(onsets)
        out: list[list[str]] = [[] for _ in range(self.n_rows)]
        for w, r in zip(words, rows):
            if r >= 0:
                out[r].append(w)
        return out
