#!/usr/bin/env bash
# GPU check (scripts/gpu_check.py): the harness HF backend's log-likelihood path on random 0.5B and 1.5B
# Llama models, tokens/s and MFU against a bf16 matmul peak measured in the same run, JSON + table.
#
# For a GPU machine without network that has torch, transformers, triton, pandas and pyarrow. What the
# harness path needs beyond that (lm-eval, duckdb, accelerate and four small pure-python packages, 34 MB)
# is installed from wheels handed over in $GPU_CHECK_WHEELS (default results/gpu-wheels, git-ignored).
# Make them on a networked machine with the GPU machine's Python version:
#   scripts/gpu_check.sh --fetch-wheels [python version, e.g. 3.11]
# The project runs from the checkout (PYTHONPATH); nothing else is installed.
# Usage: scripts/gpu_check.sh [--out DIR] [--cpu-smoke] [--batch-sizes 8,32,64] [--questions N]
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS="${GPU_CHECK_WHEELS:-results/gpu-wheels}"
NEEDED=(lm-eval==0.4.13 duckdb==2.0.1 accelerate==1.15.0 psutil requests urllib3 certifi charset-normalizer)

if [[ "${1:-}" == "--fetch-wheels" ]]; then
    version=(); [[ -n "${2:-}" ]] && version=(--python-version "$2" --only-binary=:all:)
    python -m pip download --no-deps "${version[@]}" -d "$WHEELS" "${NEEDED[@]}"
    du -sh "$WHEELS"
    exit 0
fi

if ! python -c "import lm_eval.models.huggingface, duckdb" 2>/dev/null; then
    compgen -G "$WHEELS/*.whl" >/dev/null || {
        echo "lm-eval or duckdb is missing and $WHEELS holds no wheels: see the header of $0" >&2; exit 2; }
    python -m pip install -q --no-index --no-deps "$WHEELS"/*.whl
fi
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false TQDM_DISABLE=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec timeout 450 python scripts/gpu_check.py "$@"
