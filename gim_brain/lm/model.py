"""``LanguageModel``: one thin, batched, float32 interface over a transformers causal LM.

Layer convention (used everywhere in ``gim_brain.lm``): layer 0 is the output of the model's
input-embedding module; layer ``l`` (1..n_layers) is the output of decoder block ``l`` (before any
final layer norm). Negative indices count from the end (-1 = n_layers). Passes that need only
hidden states stop after the deepest requested block and never run the LM head.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
import torch

__all__ = ["LanguageModel"]


class _StopForward(Exception):
    """Raised by a hook to end a forward pass once the deepest needed block has run."""


def _as_ids(ids, name: str = "ids") -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of token ids, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer token ids, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


class LanguageModel:
    """A causal LM and its tokenizer, with batched float32 feature extraction.

    Build with :func:`gim_brain.lm.load_lm` or :meth:`from_pretrained_objects`.

    Attributes
    ----------
    name : str
        Model id, folder or label (part of every cache key).
    tokenizer, model
        The transformers tokenizer and ``*ForCausalLM`` module (in eval mode).
    device : torch.device
    n_layers, hidden_size, vocab_size : int
    max_length : int
        Longest sequence the model accepts (its position limit).
    """

    def __init__(self, model, tokenizer, name: str):
        self.model = model
        self.tokenizer = tokenizer
        self.name = str(name)
        self._fingerprint: str | None = None
        self._blocks_cache = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained_objects(cls, model, tokenizer, name: str) -> "LanguageModel":
        """Wrap a transformers causal-LM module and tokenizer that are already built."""
        if not hasattr(model, "config") or not hasattr(model, "get_input_embeddings"):
            raise TypeError(f"model must be a transformers PreTrainedModel, got {type(model).__name__}")
        model.eval()
        return cls(model, tokenizer, name)

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def n_layers(self) -> int:
        return len(self._blocks())

    @property
    def hidden_size(self) -> int:
        size = getattr(self.model.config, "hidden_size", None)
        return int(size) if size else int(self.model.get_input_embeddings().weight.shape[1])

    @property
    def vocab_size(self) -> int:
        out = self.model.get_output_embeddings()
        if out is not None and hasattr(out, "weight"):
            return int(out.weight.shape[0])
        return int(self.model.config.vocab_size)

    @property
    def max_length(self) -> int:
        cfg = self.model.config
        for attr in ("max_position_embeddings", "n_positions", "max_sequence_length"):
            value = getattr(cfg, attr, None)
            if isinstance(value, int) and value > 0:
                return value
        return 2048

    @property
    def document_start_id(self) -> int | None:
        """Token that marks a document start (``<|endoftext|>`` if known, else BOS, else EOS)."""
        tok = self.tokenizer
        vocab = tok.get_vocab()
        if "<|endoftext|>" in vocab:
            return int(vocab["<|endoftext|>"])
        for tid in (tok.bos_token_id, tok.eos_token_id):
            if tid is not None:
                return int(tid)
        return None

    @property
    def fingerprint(self) -> str:
        """Short digest of the name, config and input embeddings (identifies the weights in cache keys)."""
        if self._fingerprint is None:
            h = hashlib.sha256(self.name.encode())
            h.update(self.model.config.to_json_string().encode())
            w = self.model.get_input_embeddings().weight.detach().float().cpu().numpy()
            h.update(w.tobytes())
            blocks = self._blocks()
            last = next(blocks[-1].parameters()).detach().float().cpu().numpy()
            h.update(last.tobytes())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def __repr__(self) -> str:
        return (f"LanguageModel(name={self.name!r}, n_layers={self.n_layers}, hidden_size={self.hidden_size}, "
                f"vocab_size={self.vocab_size}, device={str(self.device)!r})")

    # ------------------------------------------------------------------ text
    def encode(self, text: str) -> np.ndarray:
        """Token ids of ``text`` without special tokens, int64 ``(n_tokens,)``."""
        return np.asarray(self.tokenizer(text, add_special_tokens=False)["input_ids"], dtype=np.int64)

    def decode(self, ids) -> str:
        """Text of token ids ``(n,)``."""
        return self.tokenizer.decode(_as_ids(ids).tolist())

    # ------------------------------------------------------------------ internals
    def _blocks(self):
        """The ModuleList of decoder blocks (found by structure, works for Llama, GPT-2, ...)."""
        if self._blocks_cache is None:
            n = getattr(self.model.config, "num_hidden_layers", None) or getattr(self.model.config, "n_layer", None)
            best = None
            for _, module in self.model.named_modules():
                if isinstance(module, torch.nn.ModuleList) and len(module) > 0:
                    if n is not None and len(module) == n:
                        best = module
                        break
                    if best is None or len(module) > len(best):
                        best = module
            if best is None:
                raise TypeError(f"cannot find the decoder blocks of {type(self.model).__name__}")
            self._blocks_cache = best
        return self._blocks_cache

    def check_layer(self, layer: int) -> int:
        """Normalise a layer index to 0..n_layers (negative counts from the end)."""
        n = self.n_layers
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
            raise TypeError(f"layer must be an int, got {layer!r}")
        layer = int(layer)
        if not -(n + 1) <= layer <= n:
            raise ValueError(f"layer {layer} is out of range for {self.name!r}: valid layers are 0..{n} "
                             f"(0 = input embeddings, {n} = last block) or -{n + 1}..-1")
        return layer % (n + 1)

    @torch.inference_mode()
    def forward(self, ids: torch.Tensor, layers: Sequence[int] = (), final: bool = False
                ) -> tuple[dict[int, torch.Tensor], torch.Tensor | None]:
        """One batched pass over ``ids`` (batch, length) (no padding: every row is read causally).

        Returns the hidden states ``{layer: (batch, length, hidden)}`` for the normalised
        ``layers`` and, when ``final`` is true, the final (normed) hidden states that the LM head
        reads; otherwise the pass stops after the deepest requested block.
        """
        layers = sorted({self.check_layer(layer) for layer in layers})
        captured: dict[int, torch.Tensor] = {}
        deepest = max(layers) if layers else 0
        blocks = self._blocks()
        handles = []

        def capture(index: int, stop: bool):
            def hook(_module, _inputs, output):
                captured[index] = output[0] if isinstance(output, tuple) else output
                if stop:
                    raise _StopForward
            return hook

        try:
            if 0 in layers:
                handles.append(self.model.get_input_embeddings().register_forward_hook(
                    capture(0, not final and deepest == 0)))
            for layer in layers:
                if layer > 0:
                    handles.append(blocks[layer - 1].register_forward_hook(
                        capture(layer, not final and layer == deepest)))
            base = self.model.base_model
            last = None
            try:
                out = base(input_ids=ids.to(self.device), use_cache=False)
                last = out[0] if isinstance(out, tuple) else out.last_hidden_state
            except _StopForward:
                pass
        finally:
            for handle in handles:
                handle.remove()
        return {layer: captured[layer] for layer in layers}, (last if final else None)

    @torch.inference_mode()
    def logprobs_from_final(self, final: torch.Tensor) -> torch.Tensor:
        """Log-softmax of the LM head applied to final hidden states ``(..., hidden)`` (float32)."""
        logits = self.model.get_output_embeddings()(final)
        return torch.log_softmax(logits if logits.dtype == torch.float64 else logits.float(), dim=-1)

    # ------------------------------------------------------------------ public passes
    def sequence_logprobs(self, ids) -> np.ndarray:
        """``log p(next token | ids[:t+1])`` for every t, float32 ``(n, vocab)``.

        One causal pass when ``n <= max_length``; beyond it, position t reads the window that
        starts at the last multiple of ``max_length // 2`` leaving it at least ``max_length // 2``
        tokens of context (chunks of ``max_length`` tokens, overlapping by half).
        """
        arr = _as_ids(ids)
        n = arr.size
        out = np.empty((n, self.vocab_size), dtype=np.float32)
        if n == 0:
            return out
        L = self.max_length
        half = max(1, L // 2)
        starts = [0] if n <= L else list(range(0, n - half, half))
        for i, s in enumerate(starts):
            e = min(n, s + L)
            read_from = 0 if i == 0 else half  # positions [s+half, s+L) of later chunks
            x = torch.as_tensor(arr[s:e][None])
            _, final = self.forward(x, (), final=True)
            lp = self.logprobs_from_final(final[0, read_from:])
            out[s + read_from:e] = lp.cpu().numpy()
        return out

    def _windows(self, arr: np.ndarray, window: int, batch_size: int, layer: int | None):
        """Yield (positions, tensor rows) with the reading of each t's window (see window_*)."""
        if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
            raise ValueError(f"window must be a positive int, got {window!r}")
        if window > self.max_length:
            raise ValueError(f"window={window} exceeds the model's maximum length {self.max_length}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        n = arr.size
        layers = () if layer is None else (layer,)
        final = layer is None
        # t < window: the windows are prefixes of ids[:window]; one causal pass reads them all
        head = min(n, window)
        hs, fin = self.forward(torch.as_tensor(arr[:head][None]), layers, final=final)
        yield np.arange(head), (fin if final else hs[self.check_layer(layer)])[0]
        if n > window:
            t_all = np.arange(window, n)
            for b in range(0, t_all.size, batch_size):
                ts = t_all[b:b + batch_size]
                rows = np.stack([arr[t - window + 1:t + 1] for t in ts])
                hs, fin = self.forward(torch.as_tensor(rows), layers, final=final)
                yield ts, (fin if final else hs[self.check_layer(layer)])[:, -1]

    def window_hidden_states(self, ids, window: int, layer: int, batch_size: int = 64) -> np.ndarray:
        """Hidden state at ``layer`` of token t when the LM reads ``ids[max(0, t-window+1):t+1]``.

        Returns float32 ``(n, hidden)``. Windows are batched (``batch_size`` per pass); the first
        ``window`` positions come from one causal pass over ``ids[:window]``.
        """
        arr = _as_ids(ids)
        self.check_layer(layer)
        out = np.empty((arr.size, self.hidden_size), dtype=np.float32)
        if arr.size == 0:
            return out
        for ts, h in self._windows(arr, window, batch_size, layer):
            out[ts] = h.float().cpu().numpy()
        return out

    def window_next_token_logprobs(self, ids, window: int, batch_size: int = 64) -> np.ndarray:
        """``log p(next | ids[max(0, t-window+1):t+1])`` for each t, float32 ``(n, vocab)``."""
        arr = _as_ids(ids)
        out = np.empty((arr.size, self.vocab_size), dtype=np.float32)
        if arr.size == 0:
            return out
        for ts, h in self._windows(arr, window, batch_size, None):
            out[ts] = self.logprobs_from_final(h).cpu().numpy()
        return out
