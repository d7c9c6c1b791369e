"""``gim-brain datasets``: list the built-in manifests, describe one, check a dataset on disk,
fetch ds003020 parts (:mod:`.datasets_fetch`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._cache import atomic_write_bytes
from .main import UsageError

EPILOG = """examples:
  gim-brain datasets list
  gim-brain datasets info lebel2023
  gim-brain datasets check --manifest lebel2023_pca --data-root ../shared/data/lebel2023 --json check.json
  gim-brain datasets check --manifest lebel2023 --data-root /data/ds003020 --shapes-only
  gim-brain datasets check --manifest my_dataset.toml --data-root /data/mine
  gim-brain datasets fetch lebel2023 --root /data/ds003020 --subjects UTS03 --dry-run
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "datasets",
        help="list, describe and check datasets (manifests under data_manifests/)",
        description="Datasets are described by TOML manifests: where words, TR counts and responses "
                    "live, the TR, trims and test stories. Built-in manifests live in the repository's "
                    "data_manifests/ folder and in folders listed in $GIM_BRAIN_MANIFESTS; any .toml "
                    "path works too.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="datasets_command", metavar="ACTION")
    p_list = sub.add_parser("list", help="list built-in manifests", epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    p_list.set_defaults(func=_list)
    p_info = sub.add_parser("info", help="describe a manifest", epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    p_info.add_argument("name", help="built-in manifest name or path to a .toml file")
    p_info.add_argument("--data-root", help="also count stories and subjects found under this folder")
    p_info.set_defaults(func=_info)
    p_check = sub.add_parser(
        "check", help="check every story and subject of a dataset", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Reads every words file and responses file, compares response rows with the TR "
                    "grid and looks for NaN/inf rows, constant targets and all-zero subjects. Prints a "
                    "table; exits 0 when the dataset is usable, 1 with the reasons otherwise.",
    )
    p_check.add_argument("--manifest", required=True, help="built-in manifest name or path to a .toml file")
    p_check.add_argument("--data-root", required=True, help="folder the manifest's paths are relative to")
    p_check.add_argument("--json", metavar="FILE", help="also write the findings as JSON to FILE")
    p_check.add_argument("--subject", action="append", help="check only this subject (repeatable)")
    p_check.add_argument("--shapes-only", action="store_true",
                         help="compare response shapes with the TR grids without reading the data")
    p_check.add_argument("--quiet", action="store_true", help="print only the summary and the problems")
    p_check.set_defaults(func=_check)
    from . import datasets_fetch

    datasets_fetch.register(sub)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _open(manifest: str, data_root: str):
    from ..data import ManifestError, load_dataset

    try:
        return load_dataset(manifest, data_root)
    except (ManifestError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None


def _list(args) -> int:
    from ..data.manifest import ManifestError, list_manifests, load_manifest

    found = list_manifests()
    if not found:
        print("no built-in manifests found (data_manifests/ or $GIM_BRAIN_MANIFESTS)")
        return 1
    width = max(len(n) for n in found)
    for name, path in found.items():
        try:
            description = load_manifest(path)[0]["description"]
        except ManifestError as exc:
            description = f"INVALID: {exc}"
        print(f"{name.ljust(width)}  {description}")
        print(f"{' ' * width}  {path}")
    return 0


def _info(args) -> int:
    from ..data.manifest import ManifestError, load_manifest

    try:
        m, path = load_manifest(args.name)
    except ManifestError as exc:
        raise UsageError(str(exc)) from None
    t, w, r, s = m["timing"], m["words"], m["responses"], m["stories"]
    lines = [
        f"name:        {m['name']}",
        f"manifest:    {path}",
        f"description: {m['description']}",
        f"license:     {m['license'] or '-'}",
        f"citation:    {m['citation'] or '-'}",
        f"url:         {m['url'] or '-'}",
        f"words:       {w['path']}" + (f" (tier {w['tier']!r})" if w["tier"] else ""),
        f"responses:   {r['path']}" + (f" (array {r['key']!r})" if r["key"] else "")
        + ("" if r["trimmed"] else " (untrimmed)"),
        f"TR:          {t['tr']} s; audio starts {t['audio_start']} s after the first volume; "
        f"trims {t['trim_start']} + {t['trim_end']} volumes",
        f"TR counts:   {t['n_trs'] if t['n_trs'] is not None else 'from the responses'}",
        f"subjects:    {', '.join(r['subjects']) if r['subjects'] else 'discovered from the responses folder'}"
        + (f" (excluding {', '.join(r['exclude_subjects'])})" if r["exclude_subjects"] else ""),
        f"test:        {(', '.join(s['test']) or '-') if s['test'] is not None else (s['test_file'] or '-')}",
    ]
    print("\n".join(lines))
    if args.data_root:
        ds = _open(str(path), args.data_root)
        try:
            subjects, all_stories, with_words = ds.subjects(), ds.all_stories(), ds.stories()
        except (OSError, ValueError) as exc:
            raise UsageError(str(exc)) from None
        print(f"found:       {len(all_stories)} stories, {len(with_words)} with words; "
              f"{len(subjects)} subjects ({', '.join(subjects[:10])}{' ...' if len(subjects) > 10 else ''})")
    return 0


def _check(args) -> int:
    from ..data.check import check_dataset

    ds = _open(args.manifest, args.data_root)
    if args.subject:
        try:
            known = ds.subjects()
        except (OSError, ValueError) as exc:
            raise UsageError(str(exc)) from None
        unknown = [s for s in args.subject if s not in known]
        if unknown:
            raise UsageError(f"--subject {', '.join(unknown)}: not in dataset {ds.name} (subjects: {', '.join(known)})")
    result = check_dataset(ds, subjects=args.subject, shapes_only=args.shapes_only, progress=sys.stderr.isatty(),
                           pronunciations=True)
    summary = result.summary()
    if not args.quiet:
        print(result.table())
        print()
    print(f"dataset {result.dataset} at {result.data_root}")
    print(f"  stories: {summary['stories']} in total, {summary['with_words']} with words "
          f"({summary['words']} words after cleaning), test: {', '.join(summary['test_stories']) or '-'}")
    oov = summary.get("not_in_cmudict")
    if oov:
        shown = ", ".join(f"{w!r}x{c}" for w, c in list(oov["most_common"].items())[:8])
        print(f"  CMUdict (phonemes of the {oov['stories']} stories without a phone tier): {oov['words']} of "
              f"{oov['of_words']} words not in the dictionary ({oov['words'] / max(oov['of_words'], 1):.2%})"
              + (f": {shown}" if shown else ""))
    per_subject = summary["subjects"]
    if len(per_subject) <= 4:
        for subject, counts in per_subject.items():
            print(f"  {subject}: {counts['with_responses']} stories with responses, "
                  f"{counts['with_words_and_responses']} with words too, {counts['usable']} usable")
    else:
        good = [s for s, c in per_subject.items() if c["usable"]]
        bad = [s for s, c in per_subject.items() if not c["usable"]]
        usable = sorted({c["usable"] for c in per_subject.values() if c["usable"]})
        print(f"  {len(per_subject)} subjects: {len(good)} with usable stories "
              f"({'-'.join(map(str, usable[::max(1, len(usable) - 1)])) or 0} each)"
              + (f"; none usable: {', '.join(bad)}" if bad else ""))
    errors = result.errors
    warnings = [p for p in result.problems if p.severity != "error"]
    if warnings:
        in_rows = {id(p) for sc in result.stories for p in sc.problems}
        general = [p for p in warnings if id(p) not in in_rows]  # subject/key-level: not in the table
        print(f"  {len(warnings)} warning(s) (see the table or --json)" + (":" if general else ""))
        for p in general[:10]:
            print(f"  {p}")
        if len(general) > 10:
            print(f"  ... {len(general) - 10} more")
    for p in errors:
        print(f"  {p}")
    if args.json:
        atomic_write_bytes(Path(args.json), result.to_json().encode())
        print(f"  wrote {args.json}")
    if result.usable:
        print("usable: yes")
        return 0
    reason = f"{len(errors)} error(s)" if errors else "no story has both words and usable responses"
    print(f"usable: no ({reason})")
    return 1
