"""Check every story and subject of a dataset: words, TR grids and responses."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np
from tqdm.auto import tqdm

from .dataset import Dataset
from .responses import ResponseError, inspect_responses, read_responses, response_shape

__all__ = ["Problem", "StoryCheck", "DatasetCheck", "check_dataset"]


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
        }

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


def check_dataset(dataset: Dataset, subjects: list[str] | None = None, shapes_only: bool = False,
                  progress: bool = True) -> DatasetCheck:
    """Check every story and subject of ``dataset``.

    Parameters
    ----------
    dataset : the :class:`Dataset` to check.
    subjects : subjects to check (default all).
    shapes_only : only compare response shapes with the TR grids (reads file headers where the
        format allows; for the full voxel data this skips reading ~100 GB).
    progress : show a tqdm progress bar.

    Returns
    -------
    DatasetCheck. Stories without words or without a subject's responses are warnings;
    unreadable files, unknown TR counts, rows that do not match the grid, NaN/inf rows and
    all-zero subjects are errors.
    """
    problems: list[Problem] = []
    subjects = dataset.subjects() if subjects is None else list(subjects)
    manifest_name = str(dataset.manifest_path) if dataset.manifest_path else dataset.name
    try:
        all_stories = dataset.all_stories()
        test = set(dataset.test_stories)
    except (OSError, ValueError) as exc:
        problems.append(Problem("error", dataset.name, str(exc)))
        return DatasetCheck(dataset.name, manifest_name, str(dataset.root), subjects, [], problems)
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
    for story in tqdm(all_stories, desc=f"checking {dataset.name}", disable=not progress, leave=False):
        sc = StoryCheck(story, is_test=story in test)
        found: list[Problem] = []
        try:
            grid = dataset.grid(story)
            sc.n_trs, sc.n_rows = dataset.n_trs(story), grid.n_rows
        except (OSError, ValueError) as exc:
            grid = None
            found.append(Problem("error", story, str(exc)))
        sc.has_words = dataset.has_words(story)
        if sc.has_words:
            try:
                raw = dataset.load_transcript(story)
                cleaned, report = dataset.cleaner(raw)
                sc.n_tokens, sc.n_words = report.n_in, report.n_out
                if grid is not None:
                    sc.words_outside_grid = int((grid.assign_words(cleaned.onsets) < 0).sum())
                if sc.n_words == 0:
                    found.append(Problem("error", story, f"no words left after cleaning {dataset.words_path(story)}"))
            except (OSError, ValueError) as exc:
                sc.has_words = False
                found.append(Problem("error", story, str(exc)))
        else:
            found.append(Problem("warning", story, f"no words file ({dataset.words_path(story).name}): "
                                 "usable for responses only"))
        for subject in subjects:
            path = dataset.responses_path(subject, story)
            if not path.is_file():
                if sc.has_words:
                    found.append(Problem("warning", f"{subject}/{story}", "no responses file"))
                continue
            resp_count[subject] = resp_count.get(subject, 0) + 1
            entry = {"rows": None, "targets": None, "ok": False}
            sc.responses[subject] = entry
            where = f"{subject}/{story}"
            try:
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
    return DatasetCheck(dataset.name, manifest_name, str(dataset.root), subjects, checks, problems)
