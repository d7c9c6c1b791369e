"""Check every story and subject of a dataset: words, TR grids and responses."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np
from tqdm.auto import tqdm

from .dataset import Dataset
from .manifest import unsafe_name
from .pronunciations import dictionary_misses, note_dictionary_misses
from .responses import inspect_responses, nifti_geometry, response_shape
from .tables import read_n_trs_table, read_story_list

__all__ = ["Problem", "StoryCheck", "DatasetCheck", "DatasetUnusableError", "check_dataset", "ensure_usable",
           "TR_RANGE_S", "TR_TYPICAL_S"]

#: A TR outside this range (seconds) makes a dataset unusable (``tr = 1e-9`` is a typo, not a scan).
TR_RANGE_S = (0.05, 60.0)
#: A TR outside this range is reported as a warning (unusual for fMRI).
TR_TYPICAL_S = (0.25, 10.0)
#: Share of a story's words outside the TR grid above which it is reported (ds003020: <= 7 %).
OUTSIDE_GRID_WARN = 0.25
#: Share of a story's words starting after the scan ended above which it is an error.
PAST_SCAN_ERROR = 0.05
#: Median |mean| / std over targets above which a story's responses count as not centred.
CENTRE_WARN = 1.0
#: Median per-target std outside this range counts as a scale far from 1.
SCALE_WARN = (1e-2, 1e2)


class DatasetUnusableError(ValueError):
    """``datasets check`` finds the dataset unusable; the message lists its errors."""


@dataclass
class Problem:
    """One finding. ``severity`` is ``"error"`` (makes the dataset unusable as it is) or ``"warning"``."""

    severity: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity.upper()} {self.where}: {self.message}"


@dataclass
class StoryCheck:
    """What was found for one story (``None`` where unknown)."""

    story: str
    is_test: bool = False
    has_words: bool = False
    n_tokens: int | None = None
    n_words: int | None = None
    words_outside_grid: int | None = None
    n_trs: int | None = None
    n_rows: int | None = None
    responses: dict = field(default_factory=dict)  # subject -> {"rows": int, "targets": int, "ok": bool}
    problems: list = field(default_factory=list)
    has_phone_tier: bool = False
    not_in_dictionary: dict | None = None  # word -> count missing from CMUdict (pronunciations=True)


@dataclass
class DatasetCheck:
    """Result of :func:`check_dataset`: per-story findings, a summary and every problem."""

    dataset: str
    manifest: str
    data_root: str
    subjects: list
    stories: list
    problems: list

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def usable(self) -> bool:
        """No errors, and at least one subject has a story with words and good responses."""
        return not self.errors and self.summary()["usable_pairs"] > 0

    def summary(self) -> dict:
        with_words = [s for s in self.stories if s.has_words]
        per_subject = {}
        pairs = 0
        for subject in self.subjects:
            resp = [s for s in self.stories if subject in s.responses]
            both = [s for s in resp if s.has_words]
            good = [s for s in both if s.responses[subject]["ok"]]
            pairs += len(good)
            per_subject[subject] = {"with_responses": len(resp), "with_words_and_responses": len(both),
                                    "usable": len(good)}
        return {
            "stories": len(self.stories),
            "with_words": len(with_words),
            "words": int(sum(s.n_words or 0 for s in with_words)),
            "test_stories": [s.story for s in self.stories if s.is_test],
            "subjects": per_subject,
            "usable_pairs": pairs,
            "errors": len(self.errors),
            "warnings": len(self.problems) - len(self.errors),
            **self._dictionary_summary(),
        }

    def _dictionary_summary(self) -> dict:
        looked = [s for s in self.stories if s.not_in_dictionary is not None]
        if not looked:
            return {}
        misses = Counter()
        for s in looked:
            misses.update(s.not_in_dictionary)
        n_words = sum(s.n_words or 0 for s in looked)
        return {"not_in_cmudict": {"stories": len(looked), "words": sum(misses.values()),
                                   "of_words": n_words, "most_common": dict(misses.most_common(20))}}

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "manifest": self.manifest,
            "data_root": self.data_root,
            "usable": self.usable,
            "summary": self.summary(),
            "stories": [asdict(s) | {"problems": [str(p) for p in s.problems]} for s in self.stories],
            "problems": [asdict(p) for p in self.problems],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def table(self, max_subject_columns: int = 4) -> str:
        """Plain-text table: story, words, rows, responses rows per subject, problems."""
        show = self.subjects if len(self.subjects) <= max_subject_columns else []
        head = ["story", "words", "rows"] + show + ([] if show else ["subjects"]) + ["problems"]
        lines = []
        for s in self.stories:
            cells = [s.story + (" (test)" if s.is_test else ""),
                     "-" if s.n_words is None else str(s.n_words),
                     "-" if s.n_rows is None else str(s.n_rows)]
            if show:
                for subj in show:
                    r = s.responses.get(subj)
                    cells.append("-" if r is None else (str(r["rows"]) if r["ok"] else f"{r['rows']}!"))
            else:
                cells.append(str(sum(1 for r in s.responses.values() if r["ok"])))
            cells.append("; ".join(p.message if p.where == s.story else f"{p.where}: {p.message}" for p in s.problems))
            lines.append(cells)
        widths = [max(len(h), *(len(c[i]) for c in lines)) if lines else len(h) for i, h in enumerate(head)]
        widths[-1] = 0
        fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
        out = [fmt(head), fmt(["-" * w for w in widths[:-1]] + ["--------"])] + [fmt(c) for c in lines]
        return "\n".join(out)


def _subject_of(where: str) -> str:
    return where.split("/", 1)[0]


def _listing_problems(dataset: Dataset) -> list[Problem]:
    """Strict re-reading of the TR table and the test-story file: duplicates, non-integer
    counts, ragged rows, bad encodings and unsafe names are errors naming file and key."""
    found = []
    t, st = dataset.manifest["timing"], dataset.manifest["stories"]
    if isinstance(t["n_trs"], str):
        try:
            read_n_trs_table(dataset.root / t["n_trs"], t["story_column"], t["n_trs_column"])
        except (OSError, ValueError) as exc:
            found.append(Problem("error", "timing.n_trs", str(exc)))
    if st["test"] is None and st["test_file"]:
        try:
            read_story_list(dataset.root / st["test_file"], st["test_key"])
        except (OSError, ValueError) as exc:
            found.append(Problem("error", "stories.test_file", str(exc)))
    tr = float(t["tr"])
    lo, hi = TR_RANGE_S
    if not lo <= tr <= hi:
        found.append(Problem("error", "timing.tr", f"TR = {tr:g} s is outside {lo:g}-{hi:g} s: not a "
                             f"plausible repetition time (seconds, not ms or minutes?)"))
    elif not TR_TYPICAL_S[0] <= tr <= TR_TYPICAL_S[1]:
        found.append(Problem("warning", "timing.tr", f"TR = {tr:g} s is unusual for fMRI "
                             f"({TR_TYPICAL_S[0]:g}-{TR_TYPICAL_S[1]:g} s)"))
    return found


def _timing_problems(story: str, raw, cleaned, grid, n_trs: int | None, dataset: Dataset) -> list[Problem]:
    """Onsets out of order, offsets before onsets, words outside the grid or after the scan."""
    found = []
    src = raw.source or story
    on, off = raw.onsets, raw.offsets
    back = np.flatnonzero(np.diff(on) < 0)
    if back.size:
        i = int(back[0]) + 1
        found.append(Problem("error", story, f"{src}: onsets go backwards at {back.size} word(s), first at "
                             f"word {i + 1} ({raw.words[i]!r} at {on[i]:g} s after {on[i - 1]:g} s)"))
    early = np.flatnonzero(off < on)
    if early.size:
        i = int(early[0])
        found.append(Problem("error", story, f"{src}: {early.size} word(s) end before they start, first "
                             f"word {i + 1} ({raw.words[i]!r}: onset {on[i]:g} s, offset {off[i]:g} s)"))
    n = len(cleaned)
    if not n:
        return found
    t = dataset.manifest["timing"]
    if n_trs is not None:
        scan = n_trs * float(t["tr"])
        if float(t["audio_start"]) >= scan:
            found.append(Problem("error", story, f"timing.audio_start = {t['audio_start']:g} s but the scan "
                                 f"lasts {scan:g} s ({n_trs} TRs of {t['tr']:g} s): the audio starts after it"))
        scan_end = scan - float(t["audio_start"])  # end of the last volume, seconds from audio start
        past = int((cleaned.onsets > scan_end).sum())
        if past:
            sev = "error" if past / n >= PAST_SCAN_ERROR else "warning"
            found.append(Problem(sev, story, f"{past} of {n} words start after the scan ends ({scan_end:g} s "
                                 f"after audio start; last word at {cleaned.onsets.max():g} s): wrong TR, TR "
                                 f"count, audio_start or transcript?"))
    if grid is not None:
        outside = int((grid.assign_words(cleaned.onsets) < 0).sum())
        span = f"rows cover {grid.row_starts[0]:g}-{grid.row_times[-1]:g} s, words {cleaned.onsets.min():g}-" \
               f"{cleaned.onsets.max():g} s after audio start"
        if outside == n:
            found.append(Problem("error", story, f"all {n} words fall outside the TR grid ({span}): check "
                                 f"timing.tr, audio_start, trims and words.time_offset"))
        elif outside / n > OUTSIDE_GRID_WARN:
            found.append(Problem("warning", story, f"{outside} of {n} words ({outside / n:.0%}) fall outside "
                                 f"the TR grid ({span})"))
    negative = int((cleaned.onsets < 0).sum())
    if negative:
        found.append(Problem("warning", story, f"{negative} word(s) start before the audio (negative onsets)"))
    return found


def _response_stats(data: np.ndarray) -> tuple[float, float]:
    """Median over targets of ``|mean| / std`` and of ``std`` (constant targets left out)."""
    data = np.asarray(data, dtype=np.float64)
    finite = np.isfinite(data).all(axis=0)
    if not data.size or data.shape[0] < 2 or not finite.any():
        return 0.0, 1.0
    d = data[:, finite]
    std = d.std(axis=0)
    live = std > 0
    if not live.any():
        return 0.0, 0.0
    return float(np.median(np.abs(d[:, live].mean(axis=0)) / std[live])), float(np.median(std[live]))


def _subject_problems(subject: str, checks: list["StoryCheck"], geometry: dict, dataset: Dataset) -> list[Problem]:
    """Across one subject's stories: target counts, NIfTI grids, centring and scale."""
    found = []
    entries = {sc.story: sc.responses[subject] for sc in checks if subject in sc.responses}
    counts: dict[int, list[str]] = {}
    for story, e in entries.items():
        if e["targets"] is not None:
            counts.setdefault(int(e["targets"]), []).append(story)
    if len(counts) > 1:
        common = max(counts, key=lambda k: len(counts[k]))
        odd = "; ".join(f"{k} in {', '.join(v[:5])}{' ...' if len(v) > 5 else ''}"
                        for k, v in sorted(counts.items()) if k != common)
        found.append(Problem("error", subject, f"subject {subject}: target counts differ across stories: "
                             f"{common} in {len(counts[common])} stories, but {odd}"))
    grids = geometry.get(subject, {})
    if grids:
        first_story, (shape0, aff0) = next(iter(grids.items()))
        for story, (shape, aff) in grids.items():
            if shape != shape0 or not np.allclose(aff, aff0, atol=1e-3):
                found.append(Problem("error", f"{subject}/{story}", f"{dataset.responses_path(subject, story)}: "
                                     f"image grid {shape} / affine differs from story {first_story!r} "
                                     f"({shape0}): the stories are not on one voxel grid"))
    stats = {s: (e["centre"], e["scale"]) for s, e in entries.items() if e.get("centre") is not None}
    off = [s for s, (c, _) in stats.items() if c > CENTRE_WARN]
    if off:
        worst = max(stats[s][0] for s in off)
        found.append(Problem("warning", subject, f"subject {subject}: responses are not centred in {len(off)} of "
                             f"{len(stats)} stories (median |mean| up to {worst:.3g} x the std, e.g. raw BOLD; "
                             f"first: {off[0]}); ridge fits have no intercept, so each story must be centred"))
    lo, hi = SCALE_WARN
    scaled = [s for s, (_, sd) in stats.items() if sd > 0 and not lo <= sd <= hi]
    if scaled:
        sds = [stats[s][1] for s in scaled]
        found.append(Problem("warning", subject, f"subject {subject}: response scale far from 1 in {len(scaled)} "
                             f"of {len(stats)} stories (median std {min(sds):.3g}-{max(sds):.3g}; first: "
                             f"{scaled[0]}); z-score each story"))
    return found


def check_dataset(dataset: Dataset, subjects: list[str] | None = None, shapes_only: bool = False,
                  progress: bool = True, pronunciations: bool = False) -> DatasetCheck:
    """Check every story and subject of ``dataset``.

    Parameters
    ----------
    dataset : the :class:`Dataset` to check.
    subjects : subjects to check (default all).
    shapes_only : only compare response shapes with the TR grids (reads file headers where the
        format allows; for the full voxel data this skips reading ~100 GB).
    progress : show a tqdm progress bar.
    pronunciations : also list, per story without a phone tier, the cleaned words missing from
        CMUdict (``StoryCheck.not_in_dictionary``; what ``phonemerate``/``articulation`` would
        leave without phonemes). Loads CMUdict (~1.5 s).

    Returns
    -------
    DatasetCheck. Errors (the dataset is unusable as it is): unreadable or truncated files,
    duplicated or non-integer TR counts, unsafe story names, a TR outside :data:`TR_RANGE_S`,
    audio starting after the scan, onsets going backwards, offsets before onsets, every word of
    a story outside the TR grid, >= 5 % of its words after the scan, unknown TR counts, rows
    that do not match the grid, NaN/inf rows, all-zero subjects, target counts or NIfTI grids
    that differ across a subject's stories. Warnings: stories without words or responses,
    constant targets, an unusual TR, many words outside the grid, responses not centred or far
    from unit scale.
    """
    problems: list[Problem] = []
    subjects = dataset.subjects() if subjects is None else list(subjects)
    manifest_name = str(dataset.manifest_path) if dataset.manifest_path else dataset.name
    problems += _listing_problems(dataset)
    try:
        all_stories = dataset.all_stories()
        test = set(dataset.test_stories)
    except (OSError, ValueError) as exc:
        if not any(p.severity == "error" for p in problems):  # else those name the file and key
            problems.append(Problem("error", dataset.name, str(exc)))
        return DatasetCheck(dataset.name, manifest_name, str(dataset.root), subjects, [], problems)
    tr_unusable = any(p.where == "timing.tr" and p.severity == "error" for p in problems)
    if not subjects:
        problems.append(Problem("error", dataset.name, f"no subjects found for responses template "
                                f"{dataset.manifest['responses']['path']!r} under {dataset.root}"))
    if not all_stories:
        problems.append(Problem("error", dataset.name, f"no stories found under {dataset.root} "
                                f"(words template {dataset.manifest['words']['path']!r})"))
    for name in sorted(test - set(all_stories)):
        problems.append(Problem("warning", name, "test story named by the manifest is not in the dataset"))
    cfg = dataset.manifest["responses"]
    checks: list[StoryCheck] = []
    zero_files: dict[str, list[str]] = {}
    resp_count: dict[str, int] = {}
    geometry: dict[str, dict] = {}
    for story in tqdm(all_stories, desc=f"checking {dataset.name}", disable=not progress, leave=False):
        sc = StoryCheck(story, is_test=story in test)
        found: list[Problem] = []
        why = unsafe_name(story)
        if why is not None:  # from the TR table or the test list; would leave the data root
            problems.append(Problem("error", story, f"story name {story!r} is not a plain name ({why}); it "
                                    f"comes from timing.n_trs or stories.test_file"))
            continue
        try:
            grid = dataset.grid(story)
            sc.n_trs, sc.n_rows = dataset.n_trs(story), grid.n_rows
        except (OSError, ValueError) as exc:
            grid = None
            found.append(Problem("error", story, str(exc)))
        try:
            sc.has_words = dataset.has_words(story)
        except ValueError as exc:
            found.append(Problem("error", story, str(exc)))
        if sc.has_words:
            try:
                raw = dataset.load_transcript(story)
                cleaned, report = dataset.cleaner(raw)
                sc.n_tokens, sc.n_words = report.n_in, report.n_out
                sc.has_phone_tier = cleaned.phones is not None
                if pronunciations and not sc.has_phone_tier:
                    note_dictionary_misses(report, dictionary_misses(cleaned.words))
                    sc.not_in_dictionary = dict(report.not_in_dictionary.most_common())
                if grid is not None:
                    sc.words_outside_grid = int((grid.assign_words(cleaned.onsets) < 0).sum())
                if sc.n_words == 0:
                    found.append(Problem("error", story, f"no words left after cleaning {dataset.words_path(story)}"))
                elif not tr_unusable:
                    found += _timing_problems(story, raw, cleaned, grid, sc.n_trs, dataset)
            except (OSError, ValueError) as exc:
                sc.has_words = False
                found.append(Problem("error", story, str(exc)))
        elif not found:
            found.append(Problem("warning", story, f"no words file ({dataset.words_path(story).name}): "
                                 "usable for responses only"))
        for subject in subjects:
            where = f"{subject}/{story}"
            try:
                path = dataset.responses_path(subject, story)
            except ValueError as exc:
                found.append(Problem("error", where, str(exc)))
                continue
            if not path.is_file():
                if sc.has_words:
                    found.append(Problem("warning", where, "no responses file"))
                continue
            resp_count[subject] = resp_count.get(subject, 0) + 1
            entry = {"rows": None, "targets": None, "ok": False, "centre": None, "scale": None}
            sc.responses[subject] = entry
            try:
                geo = nifti_geometry(path)
                if geo is not None:
                    geometry.setdefault(subject, {})[story] = geo
                if shapes_only:
                    n_rows, n_targets = response_shape(path, cfg["key"], dataset._mask_path(subject))
                    if not cfg["trimmed"] and sc.n_trs is not None:
                        n_rows = n_rows - (sc.n_trs - sc.n_rows)
                    entry["rows"], entry["targets"] = n_rows, n_targets
                    if sc.n_rows is not None and n_rows != sc.n_rows:
                        found.append(Problem("error", where, f"{path}: {n_rows} rows but the TR grid has {sc.n_rows}"))
                    else:
                        entry["ok"] = sc.n_rows is not None
                    continue
                data = dataset.load_responses(subject, story, check=False)
                entry["rows"], entry["targets"] = data.shape
                entry["centre"], entry["scale"] = _response_stats(data)
                info = inspect_responses(data, str(path), sc.n_rows, cfg["target_names"])
                if info.all_zero:
                    zero_files.setdefault(subject, []).append(story)
                errors = [m for m in info.errors() if not info.all_zero or "every value is zero" not in m]
                found += [Problem("error", where, m) for m in errors]
                found += [Problem("warning", where, m) for m in info.warnings()]
                entry["ok"] = not info.errors() and sc.n_rows is not None
            except (OSError, ValueError) as exc:
                found.append(Problem("error", where, str(exc)))
        sc.problems = found
        problems += found
        checks.append(sc)
    for subject, stories in zero_files.items():
        if len(stories) == resp_count.get(subject, 0):
            message = (f"subject {subject}: responses are all zeros in every story ({len(stories)} file(s), "
                       f"e.g. {dataset.responses_path(subject, stories[0])}); exclude it with "
                       f"responses.exclude_subjects = [\"{subject}\"]")
        else:
            message = f"subject {subject}: responses are all zeros in stories {stories}"
        problems.append(Problem("error", subject, message))
        for sc in checks:
            if sc.story in stories:
                sc.problems.append(Problem("error", subject, "all zeros"))
    for subject in subjects:
        problems += _subject_problems(subject, checks, geometry, dataset)
    return DatasetCheck(dataset.name, manifest_name, str(dataset.root), subjects, checks, problems)


def ensure_usable(dataset: Dataset, subjects: list[str] | None = None, shapes_only: bool = False,
                  progress: bool = False) -> DatasetCheck:
    """:func:`check_dataset`, raising :class:`DatasetUnusableError` when it is not ``usable``.

    For ``fit`` and other commands that must refuse what ``gim-brain datasets check`` calls
    unusable. The message names the dataset and lists up to 10 errors (file, story or key each).
    """
    result = check_dataset(dataset, subjects=subjects, shapes_only=shapes_only, progress=progress)
    if not result.usable:
        errors = result.errors
        shown = "; ".join(str(p) for p in errors[:10]) + (f"; ... ({len(errors) - 10} more)" if len(errors) > 10 else "")
        reason = shown or "no story has both words and usable responses"
        raise DatasetUnusableError(f"dataset {dataset.name} at {dataset.root} is not usable "
                                   f"(gim-brain datasets check lists why): {reason}")
    return result
