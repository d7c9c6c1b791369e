"""Named evaluation settings (``gim-brain lm-eval --preset NAME``); explicit flags override them.

``paper-gpt2`` and ``paper-llama2`` are the paper's next-token settings as read in the authors'
code (``../shared/docs/GIM.md``): protocol ``paper``, L = 1024 context tokens, fuzzy window
W = 64, T = 0.1, tau = 8 for the GPT-2 tokenizer and 9 for LLaMA-2's (LLaMA-2's tokenizer is
not shipped offline: pass ``--tokenizer <its Hugging Face folder>``). ``smollm2-tuned`` is this
project's setting for the SmolLM2 tokenizer (tau 4, T 0.05, tuned on held-out text in
``gim_brain/gim/README.md``; W comes from the distilled checkpoint).
"""

from __future__ import annotations

__all__ = ["PRESETS", "PresetError", "preset_values"]

#: name -> {parameter: value}; ``tokenizer`` None means "must be given with --tokenizer".
PRESETS: dict[str, dict] = {
    "paper-gpt2": {"protocol": "paper", "context": 1024, "window": 64, "temperature": 0.1,
                   "tau": 8, "tokenizer": "gpt2"},
    "paper-llama2": {"protocol": "paper", "context": 1024, "window": 64, "temperature": 0.1,
                     "tau": 9, "tokenizer": None},
    "smollm2-tuned": {"protocol": "paper", "context": 1024, "temperature": 0.05, "tau": 4,
                      "tokenizer": "smollm2"},
}


class PresetError(ValueError):
    """An unknown preset name (the message lists the known ones)."""


def preset_values(name: str | None) -> dict:
    """The parameters of preset ``name`` (``{}`` for None)."""
    if name is None:
        return {}
    if name not in PRESETS:
        raise PresetError(f"unknown preset {name!r}; known presets: {', '.join(sorted(PRESETS))}")
    return dict(PRESETS[name])
