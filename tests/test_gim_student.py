"""The distilled fuzzy model: windowed attention, per-window semantics, teacher distances,
checkpoints (ours, the authors' layout, bad ones) and the ``distilled`` embedder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _lm_fixtures import tiny_lm

from gim_brain.gim import GIM, CheckpointError, DistilledEmbedder, FuzzyStudent, make_embedder
from gim_brain.gim.distill import save_checkpoint
from gim_brain.gim.student import embedding_digest, tokenizer_digest
from gim_brain.gim.teacher import TeacherTargets, jsd_matrix, skl_matrix

W = 8


def _student(embedding="projected", seed=0, **kw):
    torch.manual_seed(seed)
    params = dict(vocab_size=50, width=16, depth=3, heads=2, out_dim=12, window=W, teacher_dim=10,
                  embedding=embedding)
    params.update(kw)
    model = FuzzyStudent(**params)
    table = torch.randn(params["vocab_size"], params["teacher_dim"])
    model.init_from_teacher(table)
    with torch.no_grad():   # random blocks everywhere (rel. positions too), so nothing is trivial
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model.eval(), table


@pytest.mark.parametrize("embedding", ["projected", "table"])
def test_every_layer_stops_at_w_tokens(embedding):
    model, _ = _student(embedding)
    rng = np.random.default_rng(1)
    seq = torch.as_tensor(rng.integers(0, 50, 3 * W))[None]
    t = 2 * W + 3                                # a position with more than W tokens before it
    with torch.no_grad():
        base = model(seq)[0]
        far = seq.clone()
        far[0, t - W] = (far[0, t - W] + 1) % 50   # W tokens back: outside position t's window
        near = seq.clone()
        near[0, t - W + 1] = (near[0, t - W + 1] + 1) % 50   # W-1 back: inside it
        # a single block already stops at W: its output at t ignores token t-W
        x = model._embed_tokens(seq)
        xf = model._embed_tokens(far)
        blk = model.blocks[0]
        assert torch.allclose(blk(x)[0, t], blk(xf)[0, t], atol=1e-6)
        assert not torch.allclose(blk(x)[0, t - W + 1:t + 1].sum(0), blk(xf)[0, t - W + 1:t + 1].sum(0))
        # a stack over one long row would see further back (receptive field grows per block) ...
        assert not torch.allclose(model(far)[0, t], base[t], atol=1e-6)
        assert not torch.allclose(model(near)[0, t], base[t], atol=1e-4)
    # ... so documents are read window by window: changing a token W (or more) back is invisible
    ids = seq[0].numpy()
    emb = model.embed_document(ids)
    emb_far = model.embed_document(far[0].numpy())
    emb_near = model.embed_document(near[0].numpy())
    np.testing.assert_allclose(emb_far[t], emb[t], atol=1e-6)
    assert np.abs(emb_near[t] - emb[t]).max() > 1e-4
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_embedding_a_document_equals_embedding_each_window_alone():
    model, _ = _student()
    ids = np.random.default_rng(2).integers(0, 50, 5 * W + 3)
    whole = model.embed_document(ids, batch_size=7)
    alone = np.stack([model.embed_document(ids[max(0, t - W + 1):t + 1])[-1] for t in range(len(ids))])
    np.testing.assert_allclose(whole, alone, atol=1e-5)
    with torch.no_grad():
        last = model(torch.as_tensor(ids[:W])[None], last_only=True)[0].numpy()
    np.testing.assert_allclose(last, whole[W - 1], atol=1e-5)


def _random_targets(rng, n, k, vocab):
    ids = np.stack([rng.choice(vocab, k, replace=False) for _ in range(n)]).astype(np.int32)
    p = rng.dirichlet(np.full(k + 1, 0.5), n)
    logp = np.log(p[:, :k]).astype(np.float32)
    rest = np.log(p[:, k]).astype(np.float32)
    return TeacherTargets(ids, logp, rest, vocab)


def _dense(t: TeacherTargets) -> np.ndarray:
    n, k = t.ids.shape
    out = np.repeat((np.exp(t.rest.astype(np.float64)) / (t.vocab_size - k))[:, None], t.vocab_size, 1)
    out[np.arange(n)[:, None], t.ids] = np.exp(t.logp.astype(np.float64))
    return out


def test_skl_and_jsd_by_matrix_products_equal_the_direct_formulas():
    rng = np.random.default_rng(3)
    a, b = _random_targets(rng, 7, 5, 40), _random_targets(rng, 9, 5, 40)
    p, q = _dense(a)[:, None, :], _dense(b)[None, :, :]
    skl = 0.5 * ((p * np.log(p / q)).sum(-1) + (q * np.log(q / p)).sum(-1))
    np.testing.assert_allclose(skl_matrix(a, b).numpy(), skl, rtol=1e-4, atol=1e-5)
    m = 0.5 * (p + q)
    jsd = 0.5 * ((p * np.log(p / m)).sum(-1) + (q * np.log(q / m)).sum(-1))
    np.testing.assert_allclose(jsd_matrix(a, b, max_elements=100).numpy(), jsd, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.diag(skl_matrix(a, a).numpy()), 0.0, atol=1e-5)


def _meta(lm, table):
    return {"teacher": {"name": lm.name, "embedding_digest": embedding_digest(table)},
            "tokenizer": "smollm2", "tokenizer_digest": tokenizer_digest(lm.tokenizer)}


def _tiny_student_for(lm, embedding="projected"):
    table = lm.model.get_input_embeddings().weight.detach().float()
    torch.manual_seed(0)
    model = FuzzyStudent(lm.vocab_size, width=16, depth=2, heads=2, out_dim=8, window=W,
                         teacher_dim=table.shape[1], embedding=embedding)
    model.init_from_teacher(table)
    return model, table


def test_distilled_embedder_loads_our_checkpoint_and_runs_in_gim(tmp_path):
    lm = tiny_lm()
    model, table = _tiny_student_for(lm)
    path, half = tmp_path / "best.pt", tmp_path / "half.pt"
    save_checkpoint(path, model, _meta(lm, table))
    save_checkpoint(half, model, _meta(lm, table), dtype=torch.float16)
    assert "teacher_embedding" not in torch.load(path, weights_only=True)["model"]  # table not stored
    emb = make_embedder("distilled", lm, checkpoint=path)
    assert isinstance(emb, DistilledEmbedder) and emb.window == W
    ids = lm.encode("the old man walked to the river and the old man sat down by the river")
    e = emb.embed(ids)
    np.testing.assert_allclose(e, model.embed_document(ids), atol=1e-6)
    np.testing.assert_allclose(DistilledEmbedder(lm, checkpoint=half).embed(ids), e, atol=5e-3)
    assert emb.cache_parts()["weights"] == emb.digest
    assert DistilledEmbedder(lm, checkpoint=half).cache_parts() != emb.cache_parts()
    pred = GIM(embedder=emb, tau=4, vocab_size=lm.vocab_size).predict_document(ids)
    assert len(pred.ids) == len(ids)


def test_checkpoint_in_the_authors_layout_loads(tmp_path):
    """``{"model": state_dict with module. prefixes, "model_kwargs": nanoGPT-style names}``."""
    lm = tiny_lm()
    model, _ = _tiny_student_for(lm, embedding="table")
    kw = model.kwargs
    authors = {"model": {f"module.{k}": v for k, v in model.state_dict().items()},
               "model_kwargs": {"vocab_size": kw["vocab_size"], "n_embd": kw["width"],
                                "n_layer": kw["depth"], "n_head": kw["heads"],
                                "out_dim": kw["out_dim"], "block_size": kw["window"]}}
    path = tmp_path / "authors.pt"
    torch.save(authors, path)
    emb = DistilledEmbedder(lm, checkpoint=path)
    ids = lm.encode("and the old man sat down by the water and looked at the boats")
    np.testing.assert_allclose(emb.embed(ids), model.embed_document(ids), atol=1e-6)
    assert DistilledEmbedder(None, checkpoint=path).embed(ids).shape == (len(ids), kw["out_dim"])


def test_bad_checkpoints_raise_errors_naming_the_file(tmp_path):
    lm = tiny_lm()
    missing = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError, match="nope.pt does not exist"):
        DistilledEmbedder(lm, checkpoint=missing)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a torch file at all")
    with pytest.raises(CheckpointError, match="corrupt.pt is not a readable torch checkpoint"):
        DistilledEmbedder(lm, checkpoint=corrupt)
    other = tmp_path / "other.pt"
    torch.save({"weights": {}}, other)
    with pytest.raises(CheckpointError, match="other.pt has no 'model'"):
        DistilledEmbedder(lm, checkpoint=other)
    model, table = _tiny_student_for(lm)
    wrong_tok = tmp_path / "wrong_tokenizer.pt"
    save_checkpoint(wrong_tok, model, {**_meta(lm, table), "tokenizer": "gpt2-abc",
                                       "tokenizer_digest": "0123456789abcdef"})
    with pytest.raises(CheckpointError, match="wrong_tokenizer.pt was trained with tokenizer 'gpt2-abc'"):
        DistilledEmbedder(lm, checkpoint=wrong_tok)
    wrong_table = tmp_path / "wrong_table.pt"
    save_checkpoint(wrong_table, model, {**_meta(lm, table), "teacher": {"name": "x",
                                                                        "embedding_digest": "ff"}})
    with pytest.raises(CheckpointError, match="wrong_table.pt was trained on the input embeddings"):
        DistilledEmbedder(lm, checkpoint=wrong_table)


def test_the_shipped_checkpoint_is_small_and_loads():
    from gim_brain.gim import DEFAULT_CHECKPOINT

    assert DEFAULT_CHECKPOINT.is_file(), "the default distilled checkpoint must ship with the package"
    assert DEFAULT_CHECKPOINT.stat().st_size <= 3 * 1024 * 1024
    ckpt = torch.load(DEFAULT_CHECKPOINT, weights_only=True)
    assert ckpt["distance"] in ("skl", "jsd") and ckpt["model_kwargs"]["window"] >= 2
    assert (DEFAULT_CHECKPOINT.parent / "fuzzy_default_summary.json").is_file()


def test_gim_feature_spaces_can_use_the_distilled_model(tmp_path, monkeypatch):
    from _features_helpers import make_tiny_dataset
    from _lm_fixtures import offline_lm

    from gim_brain._cache import NpzCache
    from gim_brain.data import load_dataset
    from gim_brain.features import SpaceContext, build_design
    from gim_brain.features.gim_spaces import word_distilled_states
    from gim_brain.lm.alignment import align_words

    lm = offline_lm()
    monkeypatch.setenv("GIM_BRAIN_CACHE", str(tmp_path / "usercache"))
    manifest = make_tiny_dataset(tmp_path / "data", n_stories=2)
    ctx = SpaceContext(load_dataset(manifest, tmp_path / "data"), subject="S1",
                       cache=NpzCache(tmp_path / "cache"), progress=False, lm_model=lm)
    d = build_design(ctx, "gim-stats[fuzzy=distilled]", delays=(1,))
    assert d.n_features == 7 and all(np.isfinite(x).all() for x in d.X.values())
    words = ctx.story("s1").transcript.words
    al = align_words(lm.tokenizer, words)
    states = word_distilled_states(ctx, "s1", None, None)
    full = DistilledEmbedder(lm).embed(al.ids)
    np.testing.assert_allclose(states, full[al.spans[:, 1] - 1], atol=1e-6)
