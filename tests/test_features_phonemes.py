"""Phoneme spaces: phone tiers read from TextGrids, CMUdict pronunciations that tile each word,
dictionary misses reported, articulatory features, and ``phonemerate`` / ``articulation``."""

from __future__ import annotations

import numpy as np
import pytest
from _data_helpers import textgrid_text
from _features_helpers import MANIFEST, TEXT, make_tiny_dataset

from gim_brain._cache import NpzCache
from gim_brain.data import TokenCleaner, Transcript, load_dataset, read_textgrid
from gim_brain.data.pronunciations import (
    ARPABET,
    dictionary_misses,
    load_cmudict,
    phone_symbol,
    pronounce,
)
from gim_brain.features import SpaceContext, build_design
from gim_brain.features.phonemes import (
    ARTICULATION,
    ARTICULATORY_FEATURES,
    PhoneTierMissingError,
    articulation_matrix,
    dictionary_phones,
    spread_evenly,
)


def _ctx(ds, tmp_path):
    return SpaceContext(ds, cache=NpzCache(tmp_path / "cache"), progress=False)


# --------------------------------------------------------------------------- mapping

def test_articulation_covers_every_arpabet_phoneme_with_the_22_features():
    assert len(ARTICULATORY_FEATURES) == 22 and set(ARTICULATION) == set(ARPABET)
    places = set(ARTICULATORY_FEATURES[:8])
    manners = set(ARTICULATORY_FEATURES[8:14])
    for ph, feats in ARTICULATION.items():
        assert feats <= set(ARTICULATORY_FEATURES), ph
        if ph[0] in "AEIOU":  # vowels: height and backness only
            assert feats & {"low", "mid", "high"} and feats & {"front", "central", "back"}, ph
            assert not feats & (places | manners | {"voiced", "unvoiced"}), ph
        else:
            assert len(feats & {"voiced", "unvoiced"}) == 1 and len(feats & manners) == 1, ph
            assert feats & places, ph
    assert ARTICULATION["B"] == {"bilabial", "plosive", "voiced"}
    assert ARTICULATION["SH"] == {"postalveolar", "fricative", "unvoiced"}
    assert ARTICULATION["JH"] == {"postalveolar", "affricate", "voiced"}
    assert {"low", "high", "front"} <= ARTICULATION["AY"]
    m = articulation_matrix(["B", "AA", "HH"])
    assert m.shape == (3, 22) and m.dtype == np.float32
    assert m[0].sum() == 3 and m[1, ARTICULATORY_FEATURES.index("low")] == 1
    assert m[2, ARTICULATORY_FEATURES.index("glottal")] == 1


def test_phone_symbols_and_pronunciations():
    assert phone_symbol(" ah0") == "AH" and phone_symbol("NG") == "NG"
    assert phone_symbol("sp") is None and phone_symbol("") is None and phone_symbol("{NS}") is None
    d = load_cmudict()
    assert pronounce("Hello", d) == ["HH", "AH", "L", "OW"]
    assert pronounce("hello,", d) == ["HH", "AH", "L", "OW"]  # edge punctuation
    assert pronounce("well-known", d) == pronounce("well", d) + pronounce("known", d)
    assert pronounce("zorblaxian", d) is None and pronounce("", d) is None


# --------------------------------------------------------------------------- tiling

@pytest.mark.parametrize("onset,offset,n", [(0.0, 1.0, 3), (12.3456, 12.9012, 7), (5.0, 5.0, 2),
                                             (1.1, 1.4, 1)])
def test_spread_evenly_tiles_the_interval(onset, offset, n):
    a, b = spread_evenly(onset, offset, n)
    assert len(a) == len(b) == n
    assert a[0] == onset and b[-1] == offset
    np.testing.assert_array_equal(a[1:], b[:-1])  # no gap, no overlap
    assert np.all(b >= a)
    assert np.isclose((b - a).sum(), offset - onset)
    np.testing.assert_allclose(b - a, (offset - onset) / n)


def test_cmudict_phonemes_tile_each_words_duration():
    words = ["the", "zorblaxian", "river", "well-known", "a"]
    onsets = np.array([0.5, 0.9, 1.7, 2.3, 3.1])
    offsets = np.array([0.8, 1.6, 2.2, 3.0, 3.2])  # silences between words stay silent
    ev = dictionary_phones(Transcript(words, onsets, offsets))
    d = load_cmudict()
    assert ev.misses == {"zorblaxian": 1} and ev.n_words == 5
    i = 0
    for w, on, off in zip(words, onsets, offsets):
        phones = pronounce(w, d)
        if phones is None:
            continue
        n = len(phones)
        assert ev.symbols[i:i + n] == phones
        a, b = ev.onsets[i:i + n], ev.offsets[i:i + n]
        assert a[0] == on and b[-1] == off and np.array_equal(a[1:], b[:-1])
        assert np.isclose((b - a).sum(), off - on)
        i += n
    assert i == len(ev.symbols)


# --------------------------------------------------------------------------- TextGrid phone tier

def _textgrid_with_phones(words, start=1.0, step=0.6, dur=0.4, stress=True):
    """Word and phone tiers as a forced aligner writes them: ``sp`` between words, each word's
    CMUdict phones (with stress digits) tiling it evenly."""
    d = load_cmudict()
    word_items, phone_items, t = [], [], 0.0
    for i, w in enumerate(words):
        on, off = round(start + i * step, 4), round(start + i * step + dur, 4)
        if on > t:
            word_items.append((t, on, "sp"))
            phone_items.append((t, on, "sp"))
        word_items.append((on, off, w.upper()))
        raw = d[w.lower()][0]
        a, b = spread_evenly(on, off, len(raw))
        phone_items += [(float(x), float(y), p if stress else p.rstrip("012"))
                        for x, y, p in zip(a, b, raw)]
        t = off
    return textgrid_text([("IntervalTier", "phone", phone_items), ("IntervalTier", "word", word_items)])


def test_read_textgrid_keeps_the_phone_tier(tmp_path):
    path = tmp_path / "story.TextGrid"
    path.write_text(_textgrid_with_phones(["hello", "world"]))
    t = read_textgrid(path)
    assert t.words == ["sp", "HELLO", "sp", "WORLD"]
    assert t.phones is not None and t.phones.name == "phone"
    assert t.phones.labels == ["sp", "HH", "AH0", "L", "OW1", "sp", "W", "ER1", "L", "D"]
    cleaned, _ = TokenCleaner()(t)
    assert cleaned.words == ["hello", "world"] and cleaned.phones is t.phones  # cleaning keeps it
    with pytest.raises(ValueError, match="no interval tier named 'phones'.*interval tiers"):
        read_textgrid(path, phone_tier="phones")
    only_words = tmp_path / "words.TextGrid"
    only_words.write_text(textgrid_text([("IntervalTier", "word", [(0, 1, "hi")])]))
    assert read_textgrid(only_words).phones is None


def _textgrid_dataset(root, stories):
    root.mkdir(parents=True, exist_ok=True)
    (root / "words").mkdir(exist_ok=True)
    rows = ["story,n_trs"]
    for name, words in stories.items():
        (root / "words" / f"{name}.TextGrid").write_text(_textgrid_with_phones(words))
        rows.append(f"{name},{int(np.ceil((1 + 0.6 * len(words) + 10) / 2)) + 20}")
    (root / "stories.csv").write_text("\n".join(rows) + "\n")
    (root / "splits.json").write_text('{"test": []}')
    manifest = root / "tg.toml"
    manifest.write_text(MANIFEST.replace('"words/{story}.tsv"', '"words/{story}.TextGrid"'))
    return load_dataset(manifest, root)


def test_tier_phones_give_the_same_rows_as_the_pronunciations_they_were_aligned_from(tmp_path):
    words = [w for w in (TEXT * 3)[:80]]
    ds = _textgrid_dataset(tmp_path / "tg", {"a": words, "b": words[5:]})
    ctx = _ctx(ds, tmp_path)
    tier = build_design(ctx, "phonemerate[source=tier]+articulation[source=tier]", delays=(0,))
    auto = build_design(ctx, "phonemerate+articulation", delays=(0,))
    cmu = build_design(ctx, "phonemerate[source=cmudict]+articulation[source=cmudict]", delays=(0,))
    for s in ("a", "b"):
        assert tier.X[s].shape == (ds.load_story(s).grid.n_rows, 23)
        np.testing.assert_allclose(tier.X[s], auto.X[s], atol=1e-6)
        np.testing.assert_allclose(tier.X[s], cmu.X[s], atol=1e-4)
    rep = auto.spaces[0]["report"]
    assert rep["phones_from_tier"] == 2 and rep["phones_from_cmudict"] == 0
    assert rep["tier_labels_not_phonemes"]["sp"] > 0
    assert cmu.spaces[0]["report"]["not_in_cmudict"]["words"] == 0


def test_phonemerate_sum_counts_the_phonemes_of_each_row(tmp_path):
    manifest = make_tiny_dataset(tmp_path / "data", n_stories=2)
    ds = load_dataset(manifest, tmp_path / "data")
    ctx = _ctx(ds, tmp_path)
    from gim_brain.features import get_space, resolve_params

    space = get_space("phonemerate")
    x = space.build(ctx, resolve_params(space, {"method": "sum"}), "s1")
    st = ds.load_story("s1")
    d = load_cmudict()
    per_word = np.array([len(pronounce(w, d)) for w in st.words])
    rows = st.grid.assign_words(st.transcript.onsets)  # the first phoneme starts at the word onset
    # each word's phonemes tile its 0.4 s, never crossing a 2 s row boundary here except by onset
    expected = np.bincount(rows[rows >= 0], weights=per_word[rows >= 0], minlength=st.n_rows)
    assert x.shape == (st.n_rows, 1)
    assert abs(x.sum() - expected.sum()) <= per_word.max() * 2  # phonemes straddling a boundary
    assert np.corrcoef(x[:, 0], expected)[0, 1] > 0.95


def test_cmudict_misses_reach_the_cleaning_report_and_features_json(tmp_path):
    manifest = make_tiny_dataset(tmp_path / "data", n_stories=2)
    path = tmp_path / "data" / "words" / "s1.tsv"
    lines = path.read_text().splitlines()
    for i in (3, 9, 15):  # replace three words by made-up ones
        on, off, _ = lines[i].split("\t")
        lines[i] = f"{on}\t{off}\t{'ZORBLAX' if i < 15 else 'QUUXLY'}"
    path.write_text("\n".join(lines) + "\n")
    ds = load_dataset(manifest, tmp_path / "data")
    ctx = _ctx(ds, tmp_path)
    d = build_design(ctx, "articulation", stories=["s0", "s1"])
    rep = d.spaces[0]["report"]["not_in_cmudict"]
    assert rep["words"] == 3 and rep["per_story"] == {"s0": 0, "s1": 3}
    assert rep["most_common"] == {"zorblax": 2, "quuxly": 1}
    assert rep["of_words"] == len(ds.load_story("s0").words) + len(ds.load_story("s1").words)
    report = ctx.story("s1").cleaning_report
    assert report.not_in_dictionary == {"zorblax": 2, "quuxly": 1}
    assert "not in cmudict 3" in report.summary() and report.to_dict()["dictionary"] == "cmudict"
    assert dictionary_misses(ctx.story("s1").words) == {"zorblax": 2, "quuxly": 1}
    from gim_brain.data.check import check_dataset

    chk = check_dataset(ds, pronunciations=True, progress=False)
    byname = {s.story: s for s in chk.stories}
    assert byname["s1"].not_in_dictionary == {"zorblax": 2, "quuxly": 1}
    assert chk.summary()["not_in_cmudict"]["words"] == 3


def test_source_tier_without_a_phone_tier_is_an_error_naming_story_and_file(tmp_path):
    manifest = make_tiny_dataset(tmp_path / "data", n_stories=2)
    ds = load_dataset(manifest, tmp_path / "data")
    with pytest.raises(PhoneTierMissingError, match=r"story 's0'.*s0\.tsv.*source=cmudict"):
        build_design(_ctx(ds, tmp_path), "phonemerate[source=tier]")


def test_words_time_offset_moves_the_phones_too(tmp_path):
    ds = _textgrid_dataset(tmp_path / "tg", {"a": ["hello", "world"]})
    before = ds.load_transcript("a")
    text = ds.manifest_path.read_text().replace('.TextGrid"\n', '.TextGrid"\ntime_offset = 1.5\n', 1)
    ds.manifest_path.write_text(text)
    after = load_dataset(ds.manifest_path, ds.root).load_story("a").transcript
    np.testing.assert_allclose(after.phones.onsets, before.phones.onsets + 1.5)
    np.testing.assert_allclose(after.onsets[0], before.onsets[1] + 1.5)  # 'sp' dropped by cleaning
    assert after.phones.labels == before.phones.labels
