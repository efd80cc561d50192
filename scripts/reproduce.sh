#!/usr/bin/env bash
# The whole embedded-default pipeline, offline and on embedded data only (the embedded SmolLM2-135M,
# the built-in task suite, hpo/data, scikit-learn's bundled datasets; never ../shared):
#   evaluation of the base model and every variant in the store -> SNR -> ranking
#   -> optimizer comparison -> the HTML/Markdown report.
# `make reproduce` runs the variant targets (reproduce-pruning, reproduce-merging) first, so their
# variants are in the store when this starts. Every step resumes: a rerun skips what is stored.
# Outputs go to $HARNESS_RESULTS (default results/), the store to $HARNESS_DB. For a quick smoke run:
# REPRODUCE_EVAL_ARGS="--limit 20" HPO_CONFIG=<a smaller study file> scripts/reproduce.sh
set -euo pipefail
cd "$(dirname "$0")/.."

HARNESS=${HARNESS:-.venv/bin/harness}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
RESULTS=${HARNESS_RESULTS:-results}
export HARNESS_DB=${HARNESS_DB:-$RESULTS/harness.duckdb}
HPO_CONFIG=${HPO_CONFIG:-examples/hpo.toml}
study=$(sed -n 's/^study *= *"\(.*\)".*/\1/p' "$HPO_CONFIG")
mkdir -p "$RESULTS"

step() { printf '\n== %s\n' "$*" >&2; }

variants=""
if [ -f "$HARNESS_DB" ]; then
    variants=$("$HARNESS" query --csv "SELECT name FROM models WHERE kind = 'variant' ORDER BY name" | tail -n +2 |
               paste -sd, -)
fi

step "evaluate smollm2-135m${variants:+ and variants $variants} on the core suite"
# shellcheck disable=SC2086  # REPRODUCE_EVAL_ARGS is a list of options
"$HARNESS" eval --models "smollm2-135m${variants:+,$variants}" --tasks core ${REPRODUCE_EVAL_ARGS:-}

step "signal and noise per benchmark (item-bootstrap noise from the stored per-item results)"
"$HARNESS" snr --format md --plot "$RESULTS/snr.png" > "$RESULTS/snr.md"

step "rank under every method"
"$HARNESS" rank --method all --format md > "$RESULTS/leaderboard.md"
"$HARNESS" rank --method mean --variants --format md > "$RESULTS/variants.md"

step "optimizer comparison ($HPO_CONFIG, study $study)"
"$HARNESS" hpo run "$HPO_CONFIG" --quiet
"$HARNESS" hpo report --study "$study" --format md > "$RESULTS/hpo.md"

step "report"
"$HARNESS" report --out "$RESULTS/report.html" --md
