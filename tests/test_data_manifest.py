"""Manifests (validation, discovery, templates) and datasets in the official ds003020 layout."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from _data_helpers import write_ds003020_tree
from gim_brain.cli.main import main
from gim_brain.data import (
    ManifestError,
    ResponseError,
    StoryNotFoundError,
    list_manifests,
    load_dataset,
    load_manifest,
)
from gim_brain.data.check import check_dataset
from gim_brain.data.manifest import fill_template, match_template

MINIMAL = """
name = "mine"
[words]
path = "words/{story}.tsv"
[timing]
tr = 1.5
n_trs = 20
[responses]
path = "resp/{subject}/{story}.npy"
"""


def test_builtin_manifests_are_found_and_valid():
    found = list_manifests()
    assert {"lebel2023", "lebel2023_pca", "brennan2016"} <= set(found)
    for name in ("lebel2023", "lebel2023_pca", "brennan2016"):
        m, path = load_manifest(name)
        assert m["name"] == name and path == found[name]
        assert m["license"] and m["citation"]
    official = load_manifest("lebel2023")[0]
    assert official["words"]["path"] == "derivative/TextGrids/{story}.TextGrid"
    assert official["responses"]["path"] == "derivative/preprocessed_data/{subject}/{story}.hf5"
    assert official["timing"]["tr"] == 2.0


@pytest.mark.parametrize("extra, key", [
    ('colour = "red"\n', "'colour'"),
    ('[words]\ntierr = "word"\n', "'words.tierr'.*did you mean 'words.tier'"),
    ('[timming]\ntr = 2\n', "'timming'.*did you mean \\[timing\\]"),
])
def test_unknown_keys_are_rejected_by_name(tmp_path, extra, key):
    text = MINIMAL
    if extra.startswith("["):
        section, body = extra.split("\n", 1)
        text = text.replace(section + "\n", extra) if section in text else text + extra
    else:
        text = extra + text
    path = tmp_path / "m.toml"
    path.write_text(text)
    with pytest.raises(ManifestError, match=f"m.toml.*{key}"):
        load_manifest(path)


def test_manifest_type_and_missing_key_errors(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text(MINIMAL.replace("tr = 1.5", 'tr = "fast"'))
    with pytest.raises(ManifestError, match="'timing.tr' must be"):
        load_manifest(path)
    path.write_text(MINIMAL.replace('path = "resp/{subject}/{story}.npy"', ""))
    with pytest.raises(ManifestError, match="missing required key 'responses.path'"):
        load_manifest(path)
    path.write_text("name = [")
    with pytest.raises(ManifestError, match="invalid TOML"):
        load_manifest(path)
    with pytest.raises(ManifestError, match="no manifest named 'lebel2032'.*did you mean 'lebel2023'"):
        load_manifest("lebel2032")


def test_env_folder_manifests_and_templates(tmp_path, monkeypatch):
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "mine.toml").write_text(MINIMAL)
    monkeypatch.setenv("GIM_BRAIN_MANIFESTS", str(folder))
    assert list_manifests()["mine"] == folder / "mine.toml"
    assert fill_template("resp/{subject}/{story}.npy", subject="S1", story="a") == "resp/S1/a.npy"
    with pytest.raises(ManifestError, match="needs a subject"):
        fill_template("resp/{subject}/{story}.npy", story="a")
    for subject, story in [("S1", "a"), ("S1", "b"), ("S2", "a")]:
        (tmp_path / "resp" / subject).mkdir(parents=True, exist_ok=True)
        (tmp_path / "resp" / subject / f"{story}.npy").touch()
    (tmp_path / "resp" / "S2" / "notes.txt").touch()
    assert match_template(tmp_path, "resp/{subject}/{story}.npy") == [
        {"subject": "S1", "story": "a"}, {"subject": "S1", "story": "b"}, {"subject": "S2", "story": "a"}]
    assert match_template(tmp_path, "resp/{subject}/{story}.npy", subject="S2") == [{"story": "a"}]


def test_user_manifest_discovers_subjects_and_checks_rows(tmp_path):
    (tmp_path / "m.toml").write_text(MINIMAL)
    (tmp_path / "words").mkdir()
    (tmp_path / "words" / "a.tsv").write_text("onset\toffset\tword\n0.2\t0.5\tHI\n3.1\t3.4\tTHERE\n")
    for subject in ("S2", "S1"):
        (tmp_path / "resp" / subject).mkdir(parents=True)
        np.save(tmp_path / "resp" / subject / "a.npy", np.random.default_rng(0).standard_normal((20, 3)))
    np.save(tmp_path / "resp" / "S1" / "b.npy", np.ones((19, 3)))
    ds = load_dataset(tmp_path / "m.toml", tmp_path)
    assert ds.subjects() == ["S1", "S2"] and ds.stories() == ["a"] and ds.all_stories() == ["a", "b"]
    story = ds.load_story("a")
    assert story.words == ["hi", "there"] and story.grid.n_rows == 20
    np.testing.assert_array_equal(story.word_rows, [1, 3])  # row r holds onsets in [1.5 (r-1), 1.5 r)
    assert ds.load_responses("S1", "a").shape == (20, 3)
    with pytest.raises(ResponseError, match=r"b\.npy.*'S1'.*'b'.*19 rows but the TR grid has 20"):
        ds.load_responses("S1", "b")
    with pytest.raises(StoryNotFoundError, match=r"story 'c'.*words.*c\.tsv"):
        ds.load_story("c")
    with pytest.raises(StoryNotFoundError, match=r"'S2'.*'b'.*resp/S2/b\.npy"):
        ds.load_responses("S2", "b")


def test_official_ds003020_layout_loads_through_the_lebel2023_manifest(tmp_path, capsys):
    stories = {"alpha": 40, "beta": 35, "wheretheressmoke": 31}
    spoken = write_ds003020_tree(tmp_path, stories, ["UTS01", "UTS02"], test_story="wheretheressmoke")
    ds = load_dataset("lebel2023", tmp_path)
    assert ds.subjects() == ["UTS01", "UTS02"]
    assert ds.stories() == sorted(stories)
    assert "wheretheressmoke" in ds.test_stories
    for name, n_trs in stories.items():
        story = ds.load_story(name)
        assert story.words == spoken[name]          # sp and {BR} dropped, lower-cased
        assert story.grid.n_rows == n_trs - 20      # respdict (or responses + 20 for the test story)
        np.testing.assert_array_equal(story.grid.row_times, 10 + 2 * np.arange(n_trs - 20))
        y = ds.load_responses("UTS02", name)
        assert y.dtype == np.float32 and y.shape == (n_trs - 20, 7)
    assert ds.n_trs("wheretheressmoke") == 31 and "wheretheressmoke" not in json.loads(
        (tmp_path / "derivative" / "respdict.json").read_text())
    rc = main(["datasets", "check", "--manifest", "lebel2023", "--data-root", str(tmp_path),
               "--json", str(tmp_path / "check.json")])
    assert rc == 0, capsys.readouterr().out
    report = json.loads((tmp_path / "check.json").read_text())
    assert report["usable"] and report["summary"]["subjects"]["UTS01"]["usable"] == 3


def test_check_reports_each_bad_input_by_name(tmp_path, capsys):
    stories = {"alpha": 40, "beta": 35, "gamma": 30, "delta": 30}
    write_ds003020_tree(tmp_path, stories, ["UTS01", "UTS02"])
    d = tmp_path / "derivative"
    tg = d / "TextGrids" / "beta.TextGrid"
    tg.write_text(tg.read_text()[:-400])                       # truncated TextGrid
    (d / "TextGrids" / "delta.TextGrid").unlink()               # missing words file
    with h5py.File(d / "preprocessed_data" / "UTS01" / "alpha.hf5", "r+") as f:   # NaN rows
        data = f["data"][()]
        data[[2, 5]] = np.nan
        f["data"][...] = data
    with h5py.File(d / "preprocessed_data" / "UTS01" / "gamma.hf5", "w") as f:    # wrong row count
        f.create_dataset("data", data=np.ones((13, 7)))
    for story in stories:                                       # an all-zero subject
        with h5py.File(d / "preprocessed_data" / "UTS02" / f"{story}.hf5", "r+") as f:
            f["data"][...] = 0.0
    ds = load_dataset("lebel2023", tmp_path)
    result = check_dataset(ds, progress=False)
    text = "\n".join(str(p) for p in result.problems)
    assert "beta.TextGrid" in text and "ends early" in text
    assert "WARNING delta" in text and "no words file" in text
    assert "UTS01/alpha" in text and "NaN or inf in 2 row(s): 2, 5" in text
    assert "UTS01/gamma" in text and "13 rows but the TR grid has 10" in text
    assert "subject UTS02: responses are all zeros in every story" in text
    assert not result.usable
    rc = main(["datasets", "check", "--manifest", "lebel2023", "--data-root", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 1 and "usable: no" in out and "UTS02" in out
    shapes = check_dataset(ds, shapes_only=True, progress=False)
    assert any("13 rows" in str(p) for p in shapes.errors)


def test_cli_list_info_and_usage_errors(tmp_path, capsys):
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    assert "lebel2023_pca" in out and "brennan2016" in out
    assert main(["datasets", "info", "lebel2023"]) == 0
    assert "derivative/preprocessed_data/{subject}/{story}.hf5" in capsys.readouterr().out
    assert main(["datasets", "info", "nosuch"]) == 2
    assert "no manifest named 'nosuch'" in capsys.readouterr().err
    assert main(["datasets", "check", "--manifest", "lebel2023", "--data-root", str(tmp_path / "absent")]) == 2
    assert "data root is not a folder" in capsys.readouterr().err
