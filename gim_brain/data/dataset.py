"""A dataset described by a manifest: its stories (words on a TR grid), subjects and responses."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .cleaning import DEFAULT_DROP, CleaningReport, TokenCleaner
from .manifest import ManifestError, fill_template, load_manifest, match_template
from .responses import read_responses, response_shape, validate_responses
from .timing import TRGrid
from .transcripts import Transcript, read_textgrid, read_word_arrays, read_word_table

__all__ = ["Story", "Dataset", "Split", "SplitError", "StoryNotFoundError", "load_dataset"]


class StoryNotFoundError(FileNotFoundError):
    """A story (or a subject's responses to it) is not in the dataset; names story and file."""


class SplitError(ValueError):
    """No usable train/test split for a subject (names the subject and the stories at fault)."""


@dataclass(frozen=True)
class Split:
    """Which stories train and which test one subject's encoding models.

    Attributes
    ----------
    subject : str
    train : list of str
        Stories with words and responses of ``subject`` that are not test stories.
    test : list of str
        The manifest's test stories that have words and responses of ``subject``.
    test_without_data : list of str
        The manifest's test stories left out because words or responses are missing.
    """

    subject: str
    train: list
    test: list
    test_without_data: list

    @property
    def stories(self) -> list[str]:
        """Training then test stories."""
        return list(self.train) + list(self.test)


@dataclass
class Story:
    """One story: cleaned words with times, its response-row grid and what cleaning did.

    Attributes
    ----------
    name : story name.
    transcript : cleaned :class:`Transcript` (seconds from audio start).
    grid : :class:`TRGrid` of the story's response rows.
    cleaning_report : :class:`CleaningReport` of raw -> cleaned tokens.
    """

    name: str
    transcript: Transcript
    grid: TRGrid
    cleaning_report: CleaningReport

    @property
    def words(self) -> list[str]:
        return self.transcript.words

    @property
    def n_rows(self) -> int:
        """Number of response rows of the story's grid."""
        return self.grid.n_rows

    @property
    def word_rows(self) -> np.ndarray:
        """Response row of each word, int64 (n_words,), -1 outside the grid."""
        return self.grid.assign_words(self.transcript.onsets)

    def row_words(self) -> list[list[str]]:
        """Words heard in each response row (n_rows lists)."""
        return self.grid.row_words(self.transcript.words, self.transcript.onsets)


def _read_n_trs_table(path: Path, story_column: str, n_trs_column: str) -> dict[str, int]:
    """TR counts per story from a JSON object ``{story: n_trs}`` or a CSV/TSV table."""
    if not path.is_file():
        raise FileNotFoundError(f"TR-count file not found: {path} (manifest key timing.n_trs)")
    if path.suffix.lower() == ".json":
        with open(path) as f:
            data = json.load(f)
        if not isinstance(data, dict):
            raise ManifestError(f"{path}: expected a JSON object story -> number of TRs")
        out = {}
        for story, value in data.items():
            if isinstance(value, dict):  # {story: {"n_trs": 300, ...}}
                value = value.get(n_trs_column)
            try:
                out[str(story)] = int(value)
            except (TypeError, ValueError):
                raise ManifestError(f"{path}: story {story!r} has no integer TR count ({value!r})") from None
        return out
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        fields = reader.fieldnames or []
        for col in (story_column, n_trs_column):
            if col not in fields:
                raise ManifestError(f"{path}: no column {col!r} (timing.story_column/n_trs_column); columns: {fields}")
        out = {}
        for row in reader:
            value = row[n_trs_column]
            if value in ("", None):
                continue
            out[row[story_column]] = int(float(value))
    return out


class Dataset:
    """A story-listening dataset as described by a manifest, rooted at ``data_root``.

    Use :func:`load_dataset` to build one. Nothing is read until asked for.

    Attributes
    ----------
    name : manifest name.
    manifest : the validated manifest (dict with defaults filled in).
    manifest_path : the TOML file it came from.
    root : the data root folder.
    tr : repetition time in seconds.
    """

    def __init__(self, manifest: dict, data_root: str | os.PathLike, manifest_path: str | os.PathLike | None = None):
        self.manifest = manifest
        self.manifest_path = Path(manifest_path) if manifest_path else None
        self.root = Path(data_root).expanduser()
        self.name = manifest["name"]
        self.tr = float(manifest["timing"]["tr"])
        self._n_trs_from_responses: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, root={str(self.root)!r})"

    # ------------------------------------------------------------------ paths

    def words_path(self, story: str) -> Path:
        return self.root / fill_template(self.manifest["words"]["path"], story=story)

    def responses_path(self, subject: str, story: str) -> Path:
        return self.root / fill_template(self.manifest["responses"]["path"], subject=subject, story=story)

    def has_words(self, story: str) -> bool:
        return self.words_path(story).is_file()

    def has_responses(self, subject: str, story: str) -> bool:
        return self.responses_path(subject, story).is_file()

    # ------------------------------------------------------------------ listings

    @cached_property
    def _n_trs_table(self) -> dict[str, int]:
        source = self.manifest["timing"]["n_trs"]
        if not isinstance(source, str):
            return {}
        timing = self.manifest["timing"]
        return _read_n_trs_table(self.root / source, timing["story_column"], timing["n_trs_column"])

    def _listed_stories(self) -> list[str] | None:
        names = self.manifest["stories"]["names"]
        return [str(s) for s in names] if names else None

    @cached_property
    def _all_stories(self) -> list[str]:
        listed = self._listed_stories()
        if listed is not None:
            names = set(listed)
        else:
            names = set(self._n_trs_table)
            names |= {m["story"] for m in match_template(self.root, self.manifest["words"]["path"]) if "story" in m}
            names |= {m["story"] for m in match_template(self.root, self.manifest["responses"]["path"]) if "story" in m}
        names -= set(self.manifest["stories"]["exclude"])
        return sorted(names)

    def all_stories(self) -> list[str]:
        """Every story the dataset mentions (words, TR counts or responses), sorted."""
        return list(self._all_stories)

    def stories(self) -> list[str]:
        """Stories whose words file exists, sorted."""
        return [s for s in self._all_stories if self.has_words(s)]

    @cached_property
    def test_stories(self) -> list[str]:
        """Held-out stories named by the manifest (``stories.test`` or ``stories.test_file``)."""
        cfg = self.manifest["stories"]
        if cfg["test"] is not None:
            return [str(s) for s in cfg["test"]]
        if cfg["test_file"]:
            path = self.root / cfg["test_file"]
            if not path.is_file():
                raise FileNotFoundError(f"test-story file not found: {path} (manifest key stories.test_file)")
            with open(path) as f:
                data = json.load(f)
            if isinstance(data, dict):
                if cfg["test_key"] not in data:
                    raise ManifestError(f"{path}: no key {cfg['test_key']!r} (stories.test_key); keys: {list(data)}")
                data = data[cfg["test_key"]]
            return [str(s) for s in data]
        return []

    def train_stories(self, subject: str | None = None) -> list[str]:
        """Stories with words (and responses of ``subject`` if given) that are not test stories."""
        test = set(self.test_stories)
        names = self.stories() if subject is None else self.stories_with_responses(subject, require_words=True)
        return [s for s in names if s not in test]

    @cached_property
    def _subjects(self) -> list[str]:
        cfg = self.manifest["responses"]
        if cfg["subjects"]:
            subjects = [str(s) for s in cfg["subjects"]]
        else:
            template = cfg["path"]
            if "{subject}" not in template:
                subjects = ["all"]
            else:
                subjects = sorted({m["subject"] for m in match_template(self.root, template)})
        return [s for s in subjects if s not in set(cfg["exclude_subjects"])]

    def subjects(self) -> list[str]:
        """Subjects listed by the manifest, or discovered from the responses folder."""
        return list(self._subjects)

    def stories_with_responses(self, subject: str, require_words: bool = False) -> list[str]:
        """Stories for which ``subject`` has a responses file (and words, if asked)."""
        return [s for s in self._all_stories if self.has_responses(subject, s) and (not require_words or self.has_words(s))]

    def split(self, subject: str, train_stories: list[str] | None = None) -> Split:
        """The train/test split of ``subject``: the one place that decides it.

        Test stories are the manifest's (``stories.test`` / ``test_file``) that have words and
        responses of ``subject``; every other story with both trains, unless ``train_stories``
        names a subset.

        Raises
        ------
        SplitError
            Unknown subject, no test story with data, a named training story that is a test
            story or lacks words/responses, or fewer than 2 training stories.
        """
        if subject not in self.subjects():
            raise SplitError(f"unknown subject {subject!r}; dataset {self.name!r} has: "
                             f"{', '.join(self.subjects())}")
        have = self.stories_with_responses(subject, require_words=True)
        test = [s for s in self.test_stories if s in set(have)]
        dropped = [s for s in self.test_stories if s not in set(have)]
        if not test:
            raise SplitError(f"none of the test stories {self.test_stories} of dataset "
                             f"{self.name!r} has both words and responses of {subject}")
        if train_stories is not None:
            bad = [s for s in train_stories if s not in set(have) or s in set(test)]
            if bad:
                raise SplitError(f"train_stories: {', '.join(bad)} are test stories or lack words "
                                 f"or responses of {subject}")
            train = list(dict.fromkeys(train_stories))
        else:
            train = [s for s in have if s not in set(test)]
        if len(train) < 2:
            raise SplitError(f"need at least 2 training stories with words and responses of "
                             f"{subject} (got {len(train)}: {', '.join(train) or 'none'}; "
                             f"train_stories or the dataset)")
        return Split(subject, train, test, dropped)

    def targets(self, subject: str) -> dict:
        """What the response columns of ``subject`` are, as recorded in a run's ``targets.json``.

        ``{"kind": "pycortex_db", "db": ..., "subject": ...}`` when the data root holds the
        ds003020 ``derivative/pycortex-db/<subject>`` folder (native voxels),
        ``{"kind": "volume", "mask": ..., "subject": ..., "order": "nifti"}`` when the manifest
        names a NIfTI mask, else ``{"kind": "components", ...}`` (e.g. response PCs).
        """
        db = self.root / "derivative" / "pycortex-db"
        if (db / subject).is_dir():
            return {"kind": "pycortex_db", "db": str(db), "subject": subject}
        if self.manifest["responses"].get("mask"):
            return {"kind": "volume", "mask": str(self._mask_path(subject)), "subject": subject,
                    "order": "nifti"}
        return {"kind": "components", "reason": "response components (no voxel mask)",
                "subject": subject}

    # ------------------------------------------------------------------ timing

    def n_trs(self, story: str) -> int:
        """Raw number of TRs of a story (before trims).

        From the manifest's ``timing.n_trs`` (an integer, or a JSON/CSV file of counts); for a
        story missing there, from the rows of any subject's responses plus the trims.
        """
        source = self.manifest["timing"]["n_trs"]
        if isinstance(source, int):
            return source
        table = self._n_trs_table if isinstance(source, str) else {}
        if story in table:
            return table[story]
        if story in self._n_trs_from_responses:
            return self._n_trs_from_responses[story]
        timing = self.manifest["timing"]
        for subject in self._subjects:
            path = self.responses_path(subject, story)
            if path.is_file():
                rows = response_shape(path, self.manifest["responses"]["key"], self._mask_path(subject))[0]
                extra = timing["trim_start"] + timing["trim_end"] if self.manifest["responses"]["trimmed"] else 0
                self._n_trs_from_responses[story] = rows + extra
                return rows + extra
        where = f" nor in {self.root / source}" if isinstance(source, str) else ""
        raise StoryNotFoundError(
            f"story {story!r}: number of TRs unknown: not in the manifest{where}, and no subject has responses for it"
        )

    def grid(self, story: str) -> TRGrid:
        """The story's response-row grid (see :meth:`TRGrid.from_convention`)."""
        t = self.manifest["timing"]
        return TRGrid.from_convention(self.n_trs(story), t["tr"], t["audio_start"], t["trim_start"], t["trim_end"], story=story,
                                      convention=t["convention"])

    # ------------------------------------------------------------------ words

    @cached_property
    def cleaner(self) -> TokenCleaner:
        cfg = {k: v for k, v in self.manifest["cleaning"].items() if v is not None}
        if "drop" not in cfg:
            cfg["drop"] = DEFAULT_DROP
        return TokenCleaner.from_config(cfg, where=str(self.manifest_path or self.name))

    def load_transcript(self, story: str) -> Transcript:
        """Raw tokens of a story, as the words file has them (no cleaning)."""
        path = self.words_path(story)
        if not path.is_file():
            raise StoryNotFoundError(f"story {story!r}: words file not found: {path}")
        cfg = self.manifest["words"]
        fmt = cfg["format"]
        suffix = path.suffix.lower()
        if fmt == "auto":
            fmt = {".textgrid": "textgrid", ".npy": "npy"}.get(suffix, "table")
        if fmt == "textgrid":
            transcript = read_textgrid(path, tier=cfg["tier"], phone_tier=cfg["phone_tier"])
        elif fmt == "npy":
            if not cfg["onsets_path"]:
                raise ManifestError(f"{self.manifest_path}: words.format 'npy' needs words.onsets_path")
            transcript = read_word_arrays(path, self.root / fill_template(cfg["onsets_path"], story=story), cfg["word_duration"])
        else:
            transcript = read_word_table(path, cfg["word_column"], cfg["onset_column"], cfg["offset_column"])
        if cfg["time_offset"]:
            phones = transcript.phones.shifted(cfg["time_offset"]) if transcript.phones is not None else None
            transcript = Transcript(transcript.words, transcript.onsets + cfg["time_offset"],
                                    transcript.offsets + cfg["time_offset"], source=transcript.source,
                                    phones=phones)
        return transcript

    def load_story(self, story: str) -> Story:
        """Cleaned words of a story on its TR grid."""
        transcript, report = self.cleaner(self.load_transcript(story))
        return Story(story, transcript, self.grid(story), report)

    # ------------------------------------------------------------------ responses

    def _mask_path(self, subject: str) -> Path | None:
        mask = self.manifest["responses"]["mask"]
        return self.root / fill_template(mask, subject=subject) if mask else None

    def load_responses(self, subject: str, story: str, check: bool = True) -> np.ndarray:
        """Responses of ``subject`` to ``story``: float32 (n_rows, n_targets).

        With ``check`` (default), raises :class:`~gim_brain.data.responses.ResponseError` when the
        rows do not match the story's TR grid, for NaN/inf rows and for all-zero data, and warns
        about constant targets (named).
        """
        path = self.responses_path(subject, story)
        if not path.is_file():
            raise StoryNotFoundError(f"subject {subject!r}, story {story!r}: responses file not found: {path}")
        cfg = self.manifest["responses"]
        data = read_responses(path, cfg["key"], self._mask_path(subject))
        grid = self.grid(story)
        if not cfg["trimmed"]:
            t = self.manifest["timing"]
            n_trs = self.n_trs(story)
            if data.shape[0] != n_trs:
                from .responses import ResponseError

                raise ResponseError(f"{path} (subject {subject!r}): {data.shape[0]} rows but story {story!r} has {n_trs} raw TRs "
                                    f"(responses.trimmed = false)")
            data = data[t["trim_start"]: n_trs - t["trim_end"]]
        if check:
            validate_responses(data, f"{path} (subject {subject!r}, story {story!r})", grid.n_rows, cfg["target_names"])
        return data


def load_dataset(manifest_name_or_path: str | os.PathLike, data_root: str | os.PathLike) -> Dataset:
    """Open the dataset described by a manifest (built-in name or ``.toml`` path) at ``data_root``."""
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data root is not a folder: {root}")
    manifest, path = load_manifest(manifest_name_or_path)
    return Dataset(manifest, root, path)
