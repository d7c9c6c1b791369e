"""The response-row time grid of a story and the assignment of words to rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TRGrid", "TimingError"]


class TimingError(ValueError):
    """Inconsistent timing parameters (TR, trims, audio start, number of TRs)."""


@dataclass(frozen=True)
class TRGrid:
    """Times of a story's response rows.

    Row ``r`` holds the words whose onset lies in ``[row_times[r] - tr, row_times[r])``.

    Parameters
    ----------
    tr : float
        Repetition time in seconds.
    n_rows : int
        Number of response rows (after trims).
    row_times : float64 array, shape (n_rows,)
        Seconds from audio start at the END of each row's word window.
    """

    tr: float
    n_rows: int
    row_times: np.ndarray

    def __post_init__(self) -> None:
        row_times = np.asarray(self.row_times, dtype=np.float64).reshape(-1)
        object.__setattr__(self, "row_times", row_times)
        if not self.tr > 0:
            raise TimingError(f"tr must be positive seconds, got {self.tr}")
        if row_times.shape != (self.n_rows,):
            raise TimingError(f"row_times has {row_times.size} entries but n_rows={self.n_rows}")
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
    ) -> "TRGrid":
        """Grid of a scan of ``n_trs`` raw volumes.

        Volume ``k`` is stamped ``k * tr - audio_start`` seconds from audio start (the audio
        starts ``audio_start`` s after the first volume) and holds the words heard during the
        preceding TR. The first ``trim_start`` and last ``trim_end`` volumes are dropped, so row
        ``r`` is volume ``trim_start + r`` and ``n_rows = n_trs - trim_start - trim_end``.

        ds003020 (LeBel 2023): ``tr=2, audio_start=10, trim_start=10, trim_end=10`` gives
        ``row_times[r] = 10 + 2 r`` (words with onset in ``[8 + 2r, 10 + 2r)``) and
        ``n_trs - 20`` rows.
        """
        where = f" for story {story!r}" if story else ""
        if int(n_trs) != n_trs or n_trs <= 0:
            raise TimingError(f"n_trs{where} must be a positive integer, got {n_trs}")
        if trim_start < 0 or trim_end < 0:
            raise TimingError(f"trims{where} must be >= 0, got trim_start={trim_start}, trim_end={trim_end}")
        n_rows = int(n_trs) - int(trim_start) - int(trim_end)
        if n_rows <= 0:
            raise TimingError(
                f"story{where}: {n_trs} TRs leave no rows after trim_start={trim_start} and trim_end={trim_end}"
            )
        row_times = (np.arange(n_rows, dtype=np.float64) + trim_start) * float(tr) - float(audio_start)
        return cls(float(tr), n_rows, row_times)

    @property
    def row_starts(self) -> np.ndarray:
        """Seconds from audio start at the beginning of each row's word window, shape (n_rows,)."""
        return self.row_times - self.tr

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
