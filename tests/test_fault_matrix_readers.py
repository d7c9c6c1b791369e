"""Fault matrix, in-process part: every reader's files truncated at several points, bad
encodings, rows that do not fit the header, duplicates and non-integer TR counts, unsafe names,
damaged cache entries and converted models. Each must raise the reader's own error (a
``ValueError`` subclass the CLI turns into exit 1) naming the file, never a library exception
such as ``zipfile.BadZipFile`` or ``EOFError``, and never return silently repaired data.
(The subprocess part, running the real ``gim-brain`` commands, is test_fault_matrix_cli.py.)"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from gim_brain._cache import META_ARRAY, NpzCache, clean_stale_temp
from gim_brain.data import ManifestError, ResponseError, TranscriptError, read_responses, validate_responses
from gim_brain.data.manifest import fill_template, parse_manifest
from gim_brain.data.responses import response_shape
from gim_brain.data.tables import read_n_trs_table, read_story_list
from gim_brain.data.transcripts import read_textgrid, read_word_arrays, read_word_table

CUTS = (0.02, 0.3, 0.6, 0.97)  # truncation points, as fractions of the file size


def _cut(path: Path, fraction: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: max(1, int(len(data) * fraction))])
    return path


def _responses_file(tmp_path: Path, fmt: str) -> tuple[Path, dict]:
    rng = np.random.default_rng(0)
    y = rng.standard_normal((40, 30)).astype(np.float32)
    if fmt == "npz":
        path = tmp_path / "r.npz"
        np.savez(path, responses=y)
        return path, {"key": "responses"}
    if fmt == "npz-compressed":
        path = tmp_path / "r.npz"
        np.savez_compressed(path, responses=y)
        return path, {"key": "responses"}
    if fmt == "npy":
        path = tmp_path / "r.npy"
        np.save(path, y)
        return path, {}
    if fmt == "hdf5":
        import h5py

        path = tmp_path / "r.hf5"
        with h5py.File(path, "w") as f:
            f.create_dataset("data", data=y)
        return path, {}
    if fmt in ("nii", "nii.gz"):
        import nibabel as nib

        path = tmp_path / f"r.{fmt}"
        nib.save(nib.Nifti1Image(rng.standard_normal((5, 4, 3, 40)).astype(np.float32), np.eye(4)), str(path))
        mask = tmp_path / "mask.nii.gz"
        nib.save(nib.Nifti1Image(np.ones((5, 4, 3), np.uint8), np.eye(4)), str(mask))
        return path, {"mask": mask}
    if fmt == "txt":
        path = tmp_path / "r.txt"
        np.savetxt(path, y)
        return path, {}
    raise AssertionError(fmt)


@pytest.mark.parametrize("cut", CUTS)
@pytest.mark.parametrize("fmt", ["npz", "npz-compressed", "npy", "hdf5", "nii", "nii.gz", "txt"])
def test_truncated_responses_name_the_file(tmp_path, fmt, cut):
    """Reading a cut file fails naming it; where a cut leaves a readable shorter table (a text
    table cut at its first line), the row check against the TR grid fails naming it."""
    path, opts = _responses_file(tmp_path, fmt)
    good = read_responses(path, **opts)
    assert good.shape[0] == 40
    _cut(path, cut)
    with pytest.raises(ResponseError, match=str(path.name)) as info:
        validate_responses(read_responses(path, **opts), str(path), expected_rows=40)
    assert str(path) in str(info.value)
    with pytest.raises(ResponseError, match=str(path.name)):
        shape = response_shape(path, **opts)  # header-only reads check the file size too
        validate_responses(np.zeros(shape), str(path), expected_rows=40)


def test_text_responses_ragged_and_encoding(tmp_path):
    path = tmp_path / "r.txt"
    path.write_text("1 2 3\n4 5 6\n7 8\n")
    with pytest.raises(ResponseError, match=r"r\.txt, line 3: 2 values but the first row has 3"):
        read_responses(path)
    path.write_bytes(b"1 2 3\n4 5 \xe9\n")
    with pytest.raises(ResponseError, match=r"not valid UTF-8"):
        read_responses(path)


def test_nifti_mask_of_another_orientation_is_refused(tmp_path):
    import nibabel as nib

    path, opts = _responses_file(tmp_path, "nii.gz")
    flipped = np.diag([-1.0, 1.0, 1.0, 1.0])
    nib.save(nib.Nifti1Image(np.ones((5, 4, 3), np.uint8), flipped), str(opts["mask"]))
    with pytest.raises(ResponseError, match=r"not on the same grid.*orientation RAS vs LAS"):
        read_responses(path, **opts)
    nib.save(nib.Nifti1Image(np.ones((5, 4, 2), np.uint8), np.eye(4)), str(opts["mask"]))
    with pytest.raises(ResponseError, match=r"grid \(5, 4, 3\) differs from mask"):
        read_responses(path, **opts)


# --------------------------------------------------------------------------- transcripts

def _textgrid(tmp_path: Path, encoding: str = "utf-8", short: bool = False) -> Path:
    words = ["the", "cat", "sät", "down"]
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0", "xmax = 4",
             "tiers? <exists>", "size = 1", "item []:", "    item [1]:", '        class = "IntervalTier"',
             '        name = "words"', "        xmin = 0", "        xmax = 4", f"        intervals: size = {len(words)}"]
    for i, w in enumerate(words):
        lines += [f"        intervals [{i + 1}]:", f"            xmin = {i}", f"            xmax = {i + 1}",
                  f'            text = "{w}"']
    path = tmp_path / "s.TextGrid"
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


@pytest.mark.parametrize("cut", CUTS)
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_truncated_textgrid_names_the_file(tmp_path, encoding, cut):
    path = _textgrid(tmp_path, encoding)
    assert read_textgrid(path).words[2] == "sät"
    _cut(path, cut)
    with pytest.raises(TranscriptError, match=r"s\.TextGrid"):
        read_textgrid(path)


def test_textgrid_in_latin1_is_reported_not_guessed(tmp_path):
    path = _textgrid(tmp_path, "latin-1")
    with pytest.raises(TranscriptError, match=r"s\.TextGrid: not valid UTF-8 text at byte \d+"):
        read_textgrid(path)


def _table(tmp_path: Path, name: str = "w.tsv") -> Path:
    path = tmp_path / name
    sep = "\t" if name.endswith(".tsv") else ","
    rows = ["onset offset word".split()] + [[f"{i:.3f}", f"{i + 0.4:.3f}", f"word{i}"] for i in range(50)]
    path.write_text("\n".join(sep.join(r) for r in rows) + "\n")
    return path


@pytest.mark.parametrize("cut", CUTS)
@pytest.mark.parametrize("name", ["w.tsv", "w.csv"])
def test_truncated_word_table_names_the_file(tmp_path, name, cut):
    """Cut inside a row's second field. (A cut inside the last field, the word, leaves a valid
    row with a shorter or empty word: a text table cannot tell that from a shorter file.)"""
    path = _table(tmp_path, name)
    data = path.read_bytes()
    sep = b"\t" if name.endswith(".tsv") else b","
    line_start = data.rfind(b"\n", 0, int(len(data) * cut)) + 1
    at = data.index(sep, line_start)
    path.write_bytes(data[: at + 3])
    with pytest.raises(TranscriptError, match=name.replace(".", r"\.")):
        read_word_table(path)


def test_word_table_rows_that_do_not_fit_the_header(tmp_path):
    path = _table(tmp_path)
    lines = path.read_text().splitlines()
    lines[5] += "\textra"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TranscriptError, match=r"w\.tsv, line 6: 4 field\(s\) but the header has 3"):
        read_word_table(path)


def test_word_table_bad_utf8(tmp_path):
    path = _table(tmp_path)
    path.write_bytes(path.read_bytes().replace(b"word7", b"w\xe9rd7"))
    with pytest.raises(TranscriptError, match=r"w\.tsv: not valid UTF-8 text at byte"):
        read_word_table(path)


@pytest.mark.parametrize("which", ["words", "onsets"])
@pytest.mark.parametrize("cut", (0.1, 0.9))
def test_truncated_word_arrays_name_the_file(tmp_path, which, cut):
    np.save(tmp_path / "words.npy", np.array(["a", "b", "c", "d"] * 20))
    np.save(tmp_path / "onsets.npy", np.arange(80, dtype=np.float64))
    _cut(tmp_path / f"{which}.npy", cut)
    with pytest.raises(TranscriptError, match=f"{which}.npy"):
        read_word_arrays(tmp_path / "words.npy", tmp_path / "onsets.npy")


# --------------------------------------------------------------------------- listings

@pytest.mark.parametrize("content, match", [
    ("story,n_trs\na,300\nb,310\na,300\n", r"line 4: story 'a' is listed again \(first on line 2\)"),
    ("story,n_trs\na,300.5\n", r"line 2: TR count 300.5 is not a whole number"),
    ("story,n_trs\na,three\n", r"line 2: TR count 'three' is not a number"),
    ("story,n_trs\na,0\n", r"TR count 0 must be positive"),
    ("story,n_trs\na,300\nb\n", r"line 3: 1 field\(s\) but the header has 2"),
    ("story,n_trs\na,300\n../../x,3\n", r"story name '../../x' is not a plain name"),
    ("story,n_trs\nab\xe9,300\n", r"not valid UTF-8"),
    ("story,count\na,300\n", r"no column 'n_trs'"),
])
def test_tr_table_faults_are_reported(tmp_path, content, match):
    path = tmp_path / "stories.csv"
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(ManifestError, match=match) as info:
        read_n_trs_table(path)
    assert str(path) in str(info.value) and "timing.n_trs" in str(info.value)


@pytest.mark.parametrize("content, match", [
    ('{"a": 300, "b": 310, "a": 301}', r"'a' listed more than once"),
    ('{"a": 300.25}', r"story 'a': TR count 300.25 is not a whole number"),
    ('{"a": true}', r"is not a number"),
    ('{"a": 300, "b": 3', r"invalid JSON \(truncated\?\)"),
])
def test_tr_json_faults_are_reported(tmp_path, content, match):
    path = tmp_path / "n_trs.json"
    path.write_text(content)
    with pytest.raises(ManifestError, match=match):
        read_n_trs_table(path)


def test_tr_table_reads_what_is_sound(tmp_path):
    path = tmp_path / "stories.csv"
    path.write_text("story,n_trs\na,300\nb,\nc,310.0\n")
    assert read_n_trs_table(path) == {"a": 300, "c": 310}


@pytest.mark.parametrize("content, match", [
    ('{"test": ["a", "b", "a"]}', r"'a' listed more than once"),
    ('{"test": ["a", "b"', r"invalid JSON"),
    ('{"other": ["a"]}', r"no key 'test'"),
    ('{"test": ["../a"]}', r"not a plain name"),
])
def test_story_list_faults_are_reported(tmp_path, content, match):
    path = tmp_path / "splits.json"
    path.write_text(content)
    with pytest.raises(ManifestError, match=match):
        read_story_list(path)


# --------------------------------------------------------------------------- manifests

def _manifest(**overrides) -> dict:
    m = {"name": "m", "words": {"path": "words/{story}.tsv"}, "timing": {"tr": 2.0},
         "responses": {"path": "responses/{subject}/{story}.npz"}}
    for dotted, value in overrides.items():
        section, key = dotted.split("__")
        m.setdefault(section, {})[key] = value
    return m


@pytest.mark.parametrize("overrides, names", [
    ({"words__path": "../../../etc/{story}"}, "words.path"),
    ({"words__path": "/etc/{story}"}, "words.path"),
    ({"responses__path": "/data/{subject}/{story}.npz"}, "responses.path"),
    ({"responses__mask": "../mask.nii.gz"}, "responses.mask"),
    ({"timing__n_trs": "../stories.csv"}, "timing.n_trs"),
    ({"stories__test_file": "sub/../../splits.json"}, "stories.test_file"),
    ({"responses__subjects": ["../UTS03"]}, "responses.subjects[0]"),
    ({"stories__names": ["a", "..", "b"]}, "stories.names[1]"),
    ({"stories__names": ["a", "b", "a"]}, "stories.names"),
    ({"stories__test": ["a", "a"]}, "stories.test"),
    ({"responses__subjects": ["S1", "S1"]}, "responses.subjects"),
    ({"responses__target_names": ["v1", "v1"]}, "responses.target_names"),
    ({"cleaning__drop_regex": "(["}, "cleaning.drop_regex"),
    ({"stories__exclude": [3]}, "stories.exclude[0]"),
])
def test_manifest_rejects_escapes_duplicates_and_bad_regex(overrides, names):
    with pytest.raises(ManifestError, match=names.replace(".", r"\.").replace("[", r"\[").replace("]", r"\]")):
        parse_manifest(_manifest(**overrides), "m.toml")


@pytest.mark.parametrize("value", ["../../escaped", "a/b", "..", "", "a\\b"])
def test_fill_template_refuses_names_that_leave_the_root(value):
    with pytest.raises(ManifestError, match="not a plain name"):
        fill_template("words/{story}.tsv", story=value)


# --------------------------------------------------------------------------- caches

def test_cache_entry_records_and_verifies_its_key(tmp_path, capsys):
    cache = NpzCache(tmp_path)
    calls = []

    def compute(v):
        return lambda: calls.append(v) or {"x": np.full(3, v, np.float32)}

    cache.get_or_compute("k1", compute(1.0))
    cache.get_or_compute("k2", compute(2.0))
    with np.load(tmp_path / "k1.npz") as z:
        meta = json.loads(str(z[META_ARRAY]))
    assert meta["key"] == "k1" and meta["arrays"] == {"x": ["float32", [3]]}
    # an entry stored under the wrong name (a copy, a rename) is refused and recomputed
    (tmp_path / "k1.npz").write_bytes((tmp_path / "k2.npz").read_bytes())
    assert cache.get_or_compute("k1", compute(1.0))["x"][0] == 1.0
    err = capsys.readouterr().err
    assert f"cache entry {tmp_path / 'k1.npz'} is corrupt or mismatched (it holds the entry of key 'k2')" in err
    # truncated at several points: recomputed with a notice naming the file
    for cut in CUTS:
        _cut(tmp_path / "k2.npz", cut)
        assert cache.get_or_compute("k2", compute(2.0))["x"][0] == 2.0
        assert str(tmp_path / "k2.npz") in capsys.readouterr().err
    assert calls == [1.0, 2.0, 1.0] + [2.0] * len(CUTS)
    assert cache.get_or_compute("k2", compute(9.0))["x"][0] == 2.0  # sound again: read, not recomputed


def test_cache_entry_with_other_shapes_than_recorded_is_recomputed(tmp_path, capsys):
    cache = NpzCache(tmp_path)
    cache.save("k", {"x": np.zeros((2, 3))})
    meta = json.dumps({"key": "k", "version": "0", "arrays": {"x": ["float64", [3, 2]]}})
    np.savez(tmp_path / "k.npz", x=np.zeros((2, 3)), **{META_ARRAY: np.array(meta)})
    assert cache.load("k") is None
    assert "differ from the recorded" in capsys.readouterr().err
    assert not (tmp_path / "k.npz").exists()


def test_legacy_entries_without_a_record_are_still_read(tmp_path):
    np.savez(tmp_path / "old.npz", x=np.arange(3))
    assert NpzCache(tmp_path).load("old")["x"].tolist() == [0, 1, 2]


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path):
    from gim_brain._cache import _HOST

    dead = tmp_path / f".k.npz.{_HOST}-999999999.abcd1234.tmp.npz"
    alive = tmp_path / f".k.npz.{_HOST}-{os.getppid()}.abcd1234.tmp.npz"
    other = tmp_path / ".k.npz.unrelated.tmp"
    for p in (dead, alive, other):
        p.write_bytes(b"partial")
    removed = clean_stale_temp(tmp_path, force=True)
    assert removed == [dead]
    assert alive.exists() and other.exists()


def test_conversion_record_detects_a_truncated_copy(tmp_path):
    from gim_brain.lm.loading import CONVERSION_RECORD, _conversion_problem

    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"x" * 100)
    (tmp_path / CONVERSION_RECORD).write_text(json.dumps({"sizes": {"config.json": 2, "model.safetensors": 100}}))
    assert _conversion_problem(tmp_path) is None
    (tmp_path / "model.safetensors").write_bytes(b"x" * 60)
    assert "model.safetensors has 60 bytes, the conversion wrote 100" in _conversion_problem(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    assert "model.safetensors is missing" in _conversion_problem(tmp_path)


def test_npz_cache_rejects_the_reserved_name(tmp_path):
    with pytest.raises(ValueError, match="reserved"):
        NpzCache(tmp_path).save("k", {META_ARRAY: np.zeros(1)})
