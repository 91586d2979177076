# make demo: install into .venv and run the embedded end-to-end demo (offline, CPU).
# make test: install into .venv, lint with ruff, build the docs strictly, and run the whole test suite in one process.
# The fast loop: .venv/bin/python -m pytest -m "not slow" -n 2
# make docs: build the documentation site into site/; make cards: re-render model_cards/ from the templates.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_VERSION ?= 2.13.0
TORCH_INDEX_URL ?= https://download.pytorch.org/whl/cpu
OUT ?= outputs/demo

.PHONY: install demo test docs cards bench gpu-check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first, so that the package's torch>=2.4 is already met and pip pulls no other build: the CPU-only build from
# PyTorch's index (on Linux, PyPI's torch is the CUDA build), or the configured index's torch when that one is out of reach.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install "torch==$(TORCH_VERSION)" \
		--index-url $(TORCH_INDEX_URL) --retries 1 || $(BIN)/python -m pip install "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/geokd demo --out $(OUT)

test: install
	$(BIN)/ruff check .
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
	$(BIN)/python -m pytest tests

docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

cards: install
	$(BIN)/python model_cards/render.py

bench: install
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

# every GPU claim once on one CUDA device, into benchmarks/results/*_gpu.txt; ARGS=--dry-run: tiny sizes on the CPU
gpu-check: install
	$(BIN)/python benchmarks/gpu_check.py $(ARGS)

clean:
	rm -rf $(VENV) outputs site
