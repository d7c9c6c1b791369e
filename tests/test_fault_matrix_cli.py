"""Fault matrix, subprocess part: the real ``gim-brain`` commands over generated bad inputs.

A `tiny` data root (5 stories of ``../shared/data/lebel2023`` and an adjusted copy of the
``lebel2023_pca`` manifest) is copied per test and damaged one way. Every case asserts the exit
code (1 bad data, 2 bad usage/manifest, 0 where the fault is only reported or repaired by
recomputing, 130 Ctrl-C), no "Traceback" on stderr, the file/story/key named, and nothing
written outside ``--out`` and the cache. Caches: a corrupt or mismatched entry, a truncated
converted model, SIGKILL between an atomic write's temporary file and its rename (through the
``GIM_BRAIN_TEST_KILL_IN_WRITE`` hook), each followed by a run identical to an uninterrupted one.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from _fault_helpers import (TEST_STORY, Tiny, cli_env, gim_brain, gim_brain_command, lebel_available, make_tiny,
                            snapshot)

pytestmark = pytest.mark.skipif(not lebel_available(), reason="the real data ../shared/data/lebel2023 is absent")

STORY = "sweetaspie"  # the story each single-story fault damages


@pytest.fixture
def tiny(tmp_path) -> Tiny:
    return make_tiny(tmp_path)


def _assert_clean(r, rc: int, needles: tuple[str, ...]) -> None:
    assert r.rc == rc, f"exit {r.rc}, expected {rc}\nstdout: {r.out[-2000:]}\nstderr: {r.err[-2000:]}"
    assert "Traceback" not in r.err, r.err[-3000:]
    for needle in needles:
        assert needle in r.text, f"{needle!r} not in the output:\n{r.text[-3000:]}"


# --------------------------------------------------------------------------- fault setups

def _cut(path: Path, at) -> Path:
    data = path.read_bytes()
    n = at if isinstance(at, int) else int(len(data) * at)
    path.write_bytes(data[:n] if n >= 0 else data[:len(data) + n])
    return path


def _cut_mid_row(path: Path, fraction: float = 0.5) -> Path:
    data = path.read_bytes()
    line_start = data.rfind(b"\n", 0, int(len(data) * fraction)) + 1
    path.write_bytes(data[: data.index(b"\t", line_start) + 3])
    return path


def _edit_words(t: Tiny, edit) -> Path:
    path = t.words(STORY)
    lines = path.read_text().splitlines()
    header, rows = lines[0], [line.split("\t") for line in lines[1:]]
    rows = edit(rows)
    path.write_text("\n".join([header] + ["\t".join(r) for r in rows]) + "\n")
    return path


def _shift_words(rows, seconds=2000.0):
    return [[f"{float(a) + seconds:.4f}", f"{float(b) + seconds:.4f}", w] for a, b, w in rows]


def _swap_two(rows):
    rows[10], rows[20] = rows[20], rows[10]
    return rows


def _offset_before_onset(rows):
    a, b, w = rows[15]
    rows[15] = [a, f"{float(a) - 0.5:.4f}", w]
    return rows


def _edit_responses(t: Tiny, edit, stories=None) -> None:
    for story in stories or [s for s in t.root.joinpath("responses", "UTS03").iterdir()]:
        path = story if isinstance(story, Path) else t.responses(story)
        with np.load(path) as z:
            y = z["responses"]
        np.savez(path, responses=edit(y).astype(np.float32))


def _stories_csv(t: Tiny, edit) -> Path:
    path = t.root / "stories.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")
    return path


def _csv_set(lines, story, n_trs):
    return [line if not line.startswith(story + ",") else ",".join([story, n_trs] + line.split(",")[2:])
            for line in lines]


def _n_trs_json_with_duplicate(t: Tiny) -> None:
    (t.root / "n_trs.json").write_text('{"sweetaspie": 177, "againstthewind": 190, "sweetaspie": 178}')
    t.edit_manifest('n_trs = "stories.csv"', 'n_trs = "n_trs.json"')


CHECK = "check"


def _case(name, setup, rc, needles, command=CHECK, absent=()):
    return pytest.param(setup, rc, needles, command, absent, id=name)


CASES = [
    # -- every reader's files truncated (the in-process suite cuts each format at 4 points)
    _case("npz-cut-10-bytes", lambda t: _cut(t.responses(STORY), 10), 1, ("sweetaspie.npz", "cannot read responses")),
    _case("npz-cut-half", lambda t: _cut(t.responses(STORY), 0.5), 1, ("sweetaspie.npz", "cannot read responses")),
    _case("npz-cut-last-byte", lambda t: _cut(t.responses(STORY), -1), 1, ("sweetaspie.npz", "cannot read responses")),
    _case("npz-cut-half-features", lambda t: _cut(t.responses(STORY), 0.5), 1, ("sweetaspie.npz",),
          command="features-ar"),
    _case("tsv-cut-mid-row", lambda t: _cut_mid_row(t.words(STORY)), 1, ("sweetaspie.tsv", "but the header has 3")),
    _case("tsv-cut-in-header", lambda t: _cut(t.words(STORY), 8), 1, ("sweetaspie.tsv", "columns: ['onset', 'of']")),
    _case("tsv-cut-mid-row-features", lambda t: _cut_mid_row(t.words(STORY)), 1, ("sweetaspie.tsv",),
          command="features"),
    _case("stories-csv-cut-mid-row", lambda t: _cut(t.root / "stories.csv", 0.6), 1,
          ("stories.csv", "timing.n_trs")),
    _case("splits-json-cut", lambda t: _cut(t.root / "splits.json", 0.5), 1,
          ("splits.json", "stories.test_file", "invalid JSON")),
    _case("manifest-toml-cut-in-string", lambda t: _cut(t.manifest, t.manifest.read_bytes().index(b"\"LeBel") + 3), 2,
          ("tiny.toml", "invalid TOML")),
    _case("manifest-toml-cut-half", lambda t: _cut(t.manifest, 0.5), 2, ("tiny.toml", "missing section [")),
    # -- paths that would leave the data root or --out
    _case("words-template-etc", lambda t: t.edit_manifest('path = "words/{story}.tsv"',
                                                          'path = "../../../etc/{story}"'),
          2, ("words.path", "'..'"), absent=("root:",)),
    _case("responses-absolute", lambda t: t.edit_manifest('path = "responses/{subject}/{story}.npz"',
                                                          'path = "/tmp/{subject}/{story}.npz"'),
          2, ("responses.path", "absolute")),
    _case("subject-dotdot", lambda t: t.edit_manifest('trimmed = true', 'trimmed = true\nsubjects = ["../UTS03"]'),
          2, ("responses.subjects[0]", "'../UTS03'")),
    _case("test-file-dotdot", lambda t: t.edit_manifest('test_file = "splits.json"', 'test_file = "../splits.json"'),
          2, ("stories.test_file",)),
    _case("story-escapes-check", lambda t: _stories_csv(t, lambda ls: ls + ["../../escaped,200,manifest,,True,,"]),
          1, ("'../../escaped'", "timing.n_trs")),
    _case("story-escapes-features", lambda t: _stories_csv(t, lambda ls: ls + ["../../escaped,200,manifest,,True,,"]),
          1, ("'../../escaped'", "not a plain name"), command="features"),
    _case("story-escapes-features-stories-flag", lambda t: None, 2, ("'../../escaped'", "would leave --out"),
          command="features-escape-flag"),
    # -- timing
    _case("tr-1e-9", lambda t: t.edit_manifest("tr = 2.0", "tr = 1e-9"), 1, ("timing.tr", "1e-09")),
    _case("audio-start-after-scan", lambda t: t.edit_manifest("audio_start = 10.0", "audio_start = 1e6"),
          1, ("timing.audio_start", "the audio starts after it")),
    _case("words-2000s-past-scan", lambda t: _edit_words(t, _shift_words), 1,
          (STORY, "start after the scan ends", "fall outside the TR grid")),
    _case("onsets-out-of-order", lambda t: _edit_words(t, _swap_two), 1, ("sweetaspie.tsv", "onsets go backwards")),
    _case("offset-before-onset", lambda t: _edit_words(t, _offset_before_onset), 1,
          ("sweetaspie.tsv", "end before they start")),
    _case("trims-leave-no-rows", lambda t: t.edit_manifest("trim_end = 10", "trim_end = 500"), 1,
          ("leave no rows", "trim_end=500")),
    # -- duplicates and TR counts
    _case("stories-csv-duplicate-row", lambda t: _stories_csv(t, lambda ls: ls + [ls[1]]), 1,
          ("stories.csv", "is listed again")),
    _case("stories-names-duplicate", lambda t: t.edit_manifest('test_key = "test"',
                                                               'test_key = "test"\nnames = ["sweetaspie", "sweetaspie"]'),
          2, ("stories.names", "more than once")),
    _case("stories-test-duplicate", lambda t: t.edit_manifest('test_key = "test"',
                                                              'test_key = "test"\ntest = ["sweetaspie", "sweetaspie"]'),
          2, ("stories.test", "more than once")),
    _case("splits-json-duplicate", lambda t: (t.root / "splits.json").write_text(
        '{"test": ["wheretheressmoke", "wheretheressmoke"]}'), 1, ("splits.json", "listed more than once")),
    _case("tr-count-not-integer", lambda t: _stories_csv(t, lambda ls: _csv_set(ls, STORY, "177.5")), 1,
          ("stories.csv", "not a whole number")),
    _case("tr-count-not-number", lambda t: _stories_csv(t, lambda ls: _csv_set(ls, STORY, "many")), 1,
          ("stories.csv", "'many' is not a number")),
    _case("n-trs-json-duplicate-key", _n_trs_json_with_duplicate, 1, ("n_trs.json", "listed more than once")),
    # -- encodings and rows that do not fit the header
    _case("tsv-latin1", lambda t: t.words(STORY).write_bytes(t.words(STORY).read_bytes().replace(b"\tTHE\n", b"\tTH\xc9\n", 1)),
          1, ("sweetaspie.tsv", "not valid UTF-8")),
    _case("tsv-extra-field", lambda t: _edit_words(t, lambda rows: rows[:5] + [rows[5] + ["x"]] + rows[6:]), 1,
          ("sweetaspie.tsv", "4 field(s) but the header has 3")),
    _case("stories-csv-latin1", lambda t: (t.root / "stories.csv").write_bytes(
        (t.root / "stories.csv").read_bytes() + b"caf\xe9,200,manifest,,False,,\n"), 1, ("stories.csv", "not valid UTF-8")),
    # -- manifest keys
    _case("bad-drop-regex", lambda t: t.edit_manifest("lowercase = true", 'lowercase = true\ndrop_regex = "(["'),
          2, ("cleaning.drop_regex",)),
    _case("bad-drop-regex-features", lambda t: t.edit_manifest("lowercase = true", 'lowercase = true\ndrop_regex = "(["'),
          2, ("cleaning.drop_regex",), command="features"),
    # -- responses
    _case("responses-plus-1000", lambda t: _edit_responses(t, lambda y: y + 1000.0), 0,
          ("not centred", "usable: yes")),
    _case("responses-scale-1e-6", lambda t: _edit_responses(t, lambda y: y * 1e-6), 0, ("scale far from 1",)),
    _case("target-count-differs", lambda t: _edit_responses(t, lambda y: y[:, :199], [STORY]), 1,
          ("target counts differ", "199 in sweetaspie")),
    _case("nan-row", lambda t: _edit_responses(t, lambda y: np.where(np.arange(len(y))[:, None] == 3, np.nan, y),
                                               [STORY]), 1, ("sweetaspie.npz", "NaN or inf in 1 row(s): 3")),
]


def _command(t: Tiny, command: str) -> list[str]:
    if command == CHECK:
        return ["datasets", "check", *t.args()]
    if command == "features":
        return ["features", *t.args("--space", "wordrate", "--out", str(t.out), "--no-progress")]
    if command == "features-ar":
        return ["features", *t.args("--space", "ar-control[n_components=3]", "--subject", "UTS03",
                                    "--out", str(t.out), "--no-progress")]
    if command == "features-escape-flag":
        return ["features", *t.args("--space", "wordrate", "--stories", "../../escaped", "--out", str(t.out),
                                    "--no-progress")]
    raise AssertionError(command)


@pytest.mark.parametrize("setup, rc, needles, command, absent", CASES)
def test_fault(tiny, setup, rc, needles, command, absent):
    setup(tiny)
    before = snapshot(tiny.base, skip=(tiny.out, tiny.cache))
    r = gim_brain(_command(tiny, command), tiny.cache, cwd=tiny.base)
    _assert_clean(r, rc, needles)
    for text in absent:
        assert text not in r.text
    assert snapshot(tiny.base, skip=(tiny.out, tiny.cache)) == before  # nothing written outside
    assert not (tiny.base.parent / "escaped.npy").exists() and not (tiny.base / "escaped.npy").exists()


def test_sound_tiny_root_is_usable_and_features_build(tiny):
    """The baseline every fault departs from: check says usable, features writes its files."""
    _assert_clean(gim_brain(_command(tiny, CHECK), tiny.cache, cwd=tiny.base), 0, ("usable: yes",))
    _assert_clean(gim_brain(_command(tiny, "features"), tiny.cache, cwd=tiny.base), 0, ("wrote 5 stories",))
    assert sorted(p.name for p in tiny.out.iterdir())[-1] == f"{TEST_STORY}.npy"


# --------------------------------------------------------------------------- NIfTI geometry

def _nifti_root(base: Path, flip_story: str | None = None, flip_mask: bool = False) -> tuple[Path, Path]:
    import nibabel as nib

    root = base / "nifti"
    rng = np.random.default_rng(0)
    for i, story in enumerate(["s0", "s1", "s2"]):
        (root / "words").mkdir(parents=True, exist_ok=True)
        (root / "bold" / "P1").mkdir(parents=True, exist_ok=True)
        rows = ["onset\toffset\tword"] + [f"{t:.2f}\t{t + 0.3:.2f}\tw{t:.0f}" for t in np.arange(0.5, 58, 0.6)]
        (root / "words" / f"{story}.tsv").write_text("\n".join(rows) + "\n")
        affine = np.diag([-2.0, 2.0, 2.0, 1.0]) if story == flip_story else np.diag([2.0, 2.0, 2.0, 1.0])
        nib.save(nib.Nifti1Image(rng.standard_normal((4, 4, 3, 30)).astype(np.float32), affine),
                 str(root / "bold" / "P1" / f"{story}.nii.gz"))
    mask_affine = np.diag([2.0, -2.0, 2.0, 1.0]) if flip_mask else np.diag([2.0, 2.0, 2.0, 1.0])
    nib.save(nib.Nifti1Image(np.ones((4, 4, 3), np.uint8), mask_affine), str(root / "mask.nii.gz"))
    manifest = base / "nifti.toml"
    manifest.write_text('name = "nifti"\n[words]\npath = "words/{story}.tsv"\n[timing]\ntr = 2.0\n'
                        '[responses]\npath = "bold/{subject}/{story}.nii.gz"\nmask = "mask.nii.gz"\n')
    return manifest, root


@pytest.mark.parametrize("flip_story, flip_mask, needles", [
    (None, False, ("usable: yes",)),
    ("s1", False, ("s1.nii.gz", "not on one voxel grid")),
    (None, True, ("mask.nii.gz", "not on the same grid", "orientation")),
])
def test_nifti_geometry_faults(tmp_path, flip_story, flip_mask, needles):
    manifest, root = _nifti_root(tmp_path, flip_story, flip_mask)
    for shapes_only in ([], ["--shapes-only"]):
        r = gim_brain(["datasets", "check", "--manifest", str(manifest), "--data-root", str(root), *shapes_only],
                      tmp_path / "cache", cwd=tmp_path)
        _assert_clean(r, 0 if needles == ("usable: yes",) else 1, needles)


# --------------------------------------------------------------------------- run directories (map)

@pytest.fixture(scope="module")
def fitted_run(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("fitted")
    t = make_tiny(base)
    r = gim_brain(["fit", *t.args("--subject", "UTS03", "--features", "wordrate", "--n-folds", "2",
                                  "--n-permutations", "0", "--out", str(base / "run"), "--no-progress")],
                  t.cache, cwd=base)
    _assert_clean(r, 0, ())
    return base / "run"


@pytest.mark.parametrize("fault", ["arrays-cut-10", "arrays-cut-half", "result-json-no-key"])
def test_map_of_a_damaged_run_names_the_file(fitted_run, tmp_path, fault):
    run = tmp_path / "run"
    shutil.copytree(fitted_run, run)
    result = run / "results" / "wordrate"
    if fault == "result-json-no-key":
        meta = json.loads((result / "result.json").read_text())
        del meta["feature_set"]
        (result / "result.json").write_text(json.dumps(meta))
        named = "result.json"
    else:
        _cut(result / "arrays.npz", 10 if fault.endswith("10") else 0.5)
        named = "arrays.npz"
    r = gim_brain(["map", str(run), "--out", str(tmp_path / "maps"), "--kind", "volume"], tmp_path / "cache",
                  cwd=tmp_path)
    _assert_clean(r, 2, (named,))


# --------------------------------------------------------------------------- SIGKILL in an atomic write

def test_sigkill_between_temp_write_and_rename_then_rerun(tiny):
    target = tiny.out / "check.json"
    args = ["datasets", "check", *tiny.args("--json", str(target))]
    r = gim_brain(args, tiny.cache, cwd=tiny.base, GIM_BRAIN_TEST_KILL_IN_WRITE="check.json")
    assert r.rc == -signal.SIGKILL
    assert not target.exists()  # never a half-written file under the final name
    left = [p for p in tiny.out.iterdir() if p.name.startswith(".check.json.")]
    assert len(left) == 1 and left[0].stat().st_size > 0  # the temporary file the kill left
    r = gim_brain(args, tiny.cache, cwd=tiny.base)
    _assert_clean(r, 0, ("usable: yes",))
    assert [p.name for p in tiny.out.iterdir()] == ["check.json"]  # the stale temporary file is gone
    clean = tiny.base / "clean.json"
    _assert_clean(gim_brain(["datasets", "check", *tiny.args("--json", str(clean))], tiny.cache, cwd=tiny.base), 0, ())
    assert json.loads(target.read_text()) == json.loads(clean.read_text())  # same as an uninterrupted run


# --------------------------------------------------------------------------- LM caches (lm-eval)

def _shared_model_folder() -> Path | None:
    """The offline model as converted in the user's cache (only read, never written, here)."""
    from gim_brain.lm.loading import _converted_folder, _offline_gguf_path

    try:
        folder = _converted_folder(_offline_gguf_path())
    except FileNotFoundError:
        return None
    return folder if (folder / "config.json").is_file() else None


@pytest.fixture(scope="module")
def lm_cache(tmp_path_factory):
    """A temporary GIM_BRAIN_CACHE whose models/ links to the already converted offline model
    (read-only use), two small documents, and a first lm-eval run that fills the fuzzy cache."""
    folder = _shared_model_folder()
    if folder is None:
        pytest.skip("the offline model is not converted in the user cache (run any LM command once)")
    base = tmp_path_factory.mktemp("lmcache")
    (base / "cache" / "models").mkdir(parents=True)
    (base / "cache" / "models" / folder.name).symlink_to(folder)
    words = (Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lebel2023" / "words")
    docs = []
    for story in ("sweetaspie", "againstthewind", TEST_STORY):
        text = " ".join(line.split("\t")[2] for line in (words / f"{story}.tsv").read_text().splitlines()[1:])
        docs.append(base / f"{story}.txt")
        docs[-1].write_text(text.lower())
    return base, folder, docs[:2], docs[2]


def _lm_eval(base: Path, cache: Path, docs, json_out: Path, **env):
    return gim_brain(["lm-eval", "--text", *map(str, docs), "--methods", "fuzzy", "--context", "64",
                      "--protocol", "every-token", "--max-tokens", "150", "--no-progress", "--json", str(json_out)], cache, cwd=base, **env)


def _scores(path: Path) -> dict:
    methods = json.loads(path.read_text())["methods"]
    return {m: (v["top1"], v["top1_lenient"]) for m, v in methods.items()}


@pytest.mark.slow
def test_corrupt_and_mismatched_cache_entries_are_recomputed(lm_cache):
    base, _, docs, _ = lm_cache
    cache = base / "cache"
    _assert_clean(_lm_eval(base, cache, docs, base / "first.json"), 0, ())
    entries = sorted((cache / "gim-fuzzy").glob("*.npz"))
    assert len(entries) == 2
    a, b = entries
    shutil.copyfile(b, a)  # a holds b's entry: a copy under the wrong name
    _cut(b, 0.5)  # b truncated
    r = _lm_eval(base, cache, docs, base / "second.json")
    _assert_clean(r, 0, (f"cache entry {a} is corrupt or mismatched (it holds the entry of key '{b.stem}')",
                         f"cache entry {b} is corrupt or mismatched (unreadable"))
    assert _scores(base / "second.json") == _scores(base / "first.json")


@pytest.mark.slow
def test_sigkill_while_writing_a_cache_entry_then_resume(lm_cache, tmp_path):
    base, folder, docs, _ = lm_cache
    cache = tmp_path / "cache"
    (cache / "models").mkdir(parents=True)
    (cache / "models" / folder.name).symlink_to(folder)
    r = _lm_eval(base, cache, docs, tmp_path / "killed.json", GIM_BRAIN_TEST_KILL_IN_WRITE=".npz")
    assert r.rc == -signal.SIGKILL
    fuzzy = cache / "gim-fuzzy"
    entries = lambda: sorted(p.name for p in fuzzy.iterdir() if not p.name.startswith("."))  # noqa: E731
    temps = lambda: sorted(p.name for p in fuzzy.iterdir() if p.name.startswith("."))  # noqa: E731
    assert entries() == [] and len(temps()) == 1 and temps()[0].endswith(".tmp.npz")
    r = _lm_eval(base, cache, docs, tmp_path / "resumed.json")
    _assert_clean(r, 0, ())
    assert "cache entry" not in r.err  # the killed write left no entry to distrust, only a temp file
    assert temps() == [] and len(entries()) == 2
    reference = base / "first.json"
    if not reference.exists():
        _assert_clean(_lm_eval(base, base / "cache", docs, reference), 0, ())
    assert _scores(tmp_path / "resumed.json") == _scores(reference)


@pytest.mark.slow
def test_truncated_converted_model_is_converted_again(lm_cache, tmp_path):
    """A COPY of the converted model in a temporary cache is truncated; the user cache is untouched."""
    base, folder, docs, _ = lm_cache
    cache = tmp_path / "cache"
    copy = cache / "models" / folder.name
    shutil.copytree(folder, copy)
    size = (folder / "model.safetensors").stat().st_size
    _cut(copy / "model.safetensors", 0.3)
    r = _lm_eval(base, cache, docs[:1], tmp_path / "out.json")
    _assert_clean(r, 0, (f"converted model {copy} is unusable", "converting the GGUF again"))
    assert (copy / "model.safetensors").stat().st_size == size
    assert (copy / "gim_brain_conversion.json").is_file()
    assert (folder / "model.safetensors").stat().st_size == size  # the user's copy was never touched


# --------------------------------------------------------------------------- Ctrl-C

def test_ctrl_c_prints_one_line_and_exits_130(lm_cache, tmp_path):
    """SIGINT once the command is at work (its first progress bar on stderr): one line, exit 130.

    Waiting for the bar, not a fixed sleep, puts the signal inside main() however slow the
    machine is (a fixed delay could land before main() or after the work was done). The command
    starts with SIGINT at its default, as from a terminal: a suite launched in the background
    (``pytest ... &``) ignores SIGINT, its children inherit that, and Python then installs no
    KeyboardInterrupt handler.
    """
    base, _, _, long_doc = lm_cache
    proc = subprocess.Popen([*gim_brain_command(), "lm-eval", "--text", str(long_doc),
                             "--methods", "lm"], cwd=tmp_path, env=cli_env(base / "cache"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    err_chunks: list[str] = []
    started = threading.Event()

    def read_stderr():
        while chunk := proc.stderr.read(1):
            err_chunks.append(chunk)
            if "%|" in "".join(err_chunks[-200:]):
                started.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        assert started.wait(timeout=300), "lm-eval showed no progress bar: " + "".join(err_chunks)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(timeout=10)
    err = "".join(err_chunks)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "gim-brain lm-eval: interrupted (Ctrl-C)"


# --------------------------------------------------------------------------- for the fit layer

def test_ensure_usable_refuses_what_check_calls_unusable(tiny):
    """In-process: the function `fit` can call to refuse what `datasets check` calls unusable."""
    from gim_brain.data import load_dataset
    from gim_brain.data.check import DatasetUnusableError, ensure_usable

    assert ensure_usable(load_dataset(tiny.manifest, tiny.root), ["UTS03"]).usable
    tiny.edit_manifest("tr = 2.0", "tr = 1e-9")
    with pytest.raises(DatasetUnusableError, match=r"dataset tiny at .* is not usable.*timing\.tr: TR = 1e-09 s"):
        ensure_usable(load_dataset(tiny.manifest, tiny.root), ["UTS03"])


def test_demo_refuses_a_data_root_that_holds_other_files(tmp_path):
    """`demo --data-root DIR` never overwrites a user's manifest.toml / n_trs.json / words."""
    root = tmp_path / "mydata"
    (root / "words").mkdir(parents=True)
    mine = {root / "manifest.toml": "my manifest\n", root / "n_trs.json": '{"a": 3}\n',
            root / "words" / "a.tsv": "onset\toffset\tword\n"}
    for path, text in mine.items():
        path.write_text(text)
    proc = gim_brain(["demo", "--out", tmp_path / "out", "--data-root", root, "--no-progress"],
                     cache=tmp_path / "cache", cwd=tmp_path)
    assert proc.rc == 2, proc.err
    assert "Traceback" not in proc.err
    assert "--data-root" in proc.err and "not a demo folder" in proc.err
    for path, text in mine.items():
        assert path.read_text() == text


@pytest.mark.parametrize("edit, needles", [
    (("tr = 2.0", "tr = 1e-9"), ("timing.tr", "1e-09")),
    (("audio_start = 10.0", "audio_start = 1e6"), ("audio",)),
])
def test_fit_refuses_what_check_calls_unusable(tiny, tmp_path, edit, needles):
    """`fit` runs the same checks as `datasets check` first: impossible timing exits 1 before
    anything is fitted, and --out gets no results."""
    tiny.edit_manifest(*edit)
    out = tmp_path / "run"
    r = gim_brain(["fit", *tiny.args("--subject", "UTS03", "--features", "wordrate", "--n-folds", "2",
                                     "--n-permutations", "0", "--out", str(out), "--no-progress")],
                  tiny.cache, cwd=tiny.base)
    _assert_clean(r, 1, ("not usable", *needles))
    assert not (out / "results").exists()
