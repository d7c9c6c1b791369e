"""Shared language models for tests: ``from _lm_fixtures import offline_lm, tiny_lm``.

``offline_lm()`` is the real SmolLM2-135M (offline default, converted once into the user cache);
``tiny_lm()`` is a 4-block random-weight Llama of the same family with the SmolLM2 tokenizer, for
fast unit tests where the trained weights do not matter. Both are cached per process.
"""

from __future__ import annotations

import functools

import torch


@functools.lru_cache(maxsize=None)
def offline_lm():
    """The offline default SmolLM2-135M ``LanguageModel`` on CPU (process-wide)."""
    from gim_brain.lm import load_lm

    return load_lm(None, device="cpu")


@functools.lru_cache(maxsize=None)
def tiny_lm():
    """A tiny random-weight Llama (4 blocks, hidden 32) with the SmolLM2 tokenizer (process-wide)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from gim_brain.lm import LanguageModel
    from gim_brain.lm.loading import load_offline_tokenizer

    tokenizer = load_offline_tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=2048, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(0)
        model = LlamaForCausalLM(config).float()
    finally:
        torch.random.set_rng_state(generator_state)
    return LanguageModel.from_pretrained_objects(model, tokenizer, "tiny-random-llama-smollm2-tokenizer")
