"""Per-sample and aggregate rows from lm-eval's output plus the stored per-choice requests.

lm-eval's own metrics (acc, acc_norm, acc_bytes, perplexities) are kept exactly as it computed
them; the normalisations it lacks (per-token, bits-per-byte of the gold answer) come from the
stored requests, so any of them can be recomputed later without the model.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa

from harness.tasks.task import metric_key

SAMPLE_SCHEMA = pa.schema([("run_id", pa.string()), ("doc_id", pa.int32()), ("metric", pa.string()),
                           ("value", pa.float64())])
SCORE_SCHEMA = pa.schema([("run_id", pa.string()), ("metric", pa.string()), ("value", pa.float64()),
                          ("stderr", pa.float64()), ("n", pa.int32())])
LN2 = math.log(2)


def sample_rows(run_id: str, logged: list[dict], requests: pd.DataFrame) -> pd.DataFrame:
    """Long rows (doc_id, metric, value): every metric lm-eval logged under every filter (keyed as `metric_key`
    says), plus our MC normalisations. A list-valued metric (IFEval's inst_level_*) is kept as its per-sample mean
    and its length (`metric:n`), which is what lm-eval's flattening mean needs."""
    rows: list[tuple[int, str, float]] = []
    by_doc = {doc: group.sort_values("idx") for doc, group in requests.groupby("doc_id")} if len(requests) else {}
    normalised: set[int] = set()
    for sample in logged:
        doc_id = int(sample["doc_id"])
        for metric in sample["metrics"]:
            rows.extend((doc_id, key, value) for key, value in
                        _metric_values(metric_key(metric, sample.get("filter", "none")), metric, sample[metric]))
        choices = by_doc.get(doc_id)
        if choices is not None and doc_id not in normalised and isinstance(sample.get("target"), (int, np.integer)):
            normalised.add(doc_id)
            rows.extend((doc_id, m, v) for m, v in _choice_metrics(choices, int(sample["target"])))
    frame = pd.DataFrame(rows, columns=["doc_id", "metric", "value"]).drop_duplicates(["doc_id", "metric"])
    frame.insert(0, "run_id", run_id)
    return frame


# Per-item values that are no score of their own: inputs to a perplexity, and which choice is gold.
_NOT_SCORES = ("loglikelihood", "gold_index")
_WEIGHTS = {"word_perplexity": "n_words", "byte_perplexity": "n_bytes", "bits_per_byte": "n_bytes"}


def _metric_values(key: str, metric: str, value) -> list[tuple[str, float]]:
    if metric in _WEIGHTS:  # perplexity metrics log (loglikelihood, weight)
        loglik, weight = (float(v) for v in value)
        values = [("loglikelihood", loglik), (_WEIGHTS[metric], weight)]
        return values + ([(key, -loglik / (weight * LN2))] if metric == "bits_per_byte" else [])
    if isinstance(value, (list, tuple)):
        numbers = [float(v) for v in value if isinstance(v, (bool, int, float, np.number))]
        if len(numbers) != len(value) or not numbers:
            return []  # e.g. BLEU's (reference, prediction) pairs: only the aggregate is a number
        return [(key, float(np.mean(numbers))), (f"{key}:n", float(len(numbers)))]
    if isinstance(value, (bool, int, float, np.number)):
        return [(key, float(value))]
    return []


def _choice_metrics(choices: pd.DataFrame, target: int) -> list[tuple[str, float]]:
    lls = choices["logprob"].to_numpy(dtype=float)
    tokens = np.maximum(choices["n_tokens"].to_numpy(dtype=float), 1.0)
    gold = choices["n_bytes"].to_numpy(dtype=float)[target]
    return [
        ("gold_index", float(target)),  # which choice is right, for `harness samples`; not a score
        ("acc_per_token", float(np.argmax(lls / tokens) == target)),
        ("logprob_gold", float(lls[target])),
        ("bits_per_byte_gold", -float(lls[target]) / (max(gold, 1.0) * LN2)),
    ]


def score_rows(run_id: str, task_results: dict, samples: pd.DataFrame, n_docs: int) -> pd.DataFrame:
    """Aggregates: lm-eval's (with its stderr), then means of the sample metrics it does not report."""
    rows: dict[str, tuple[float, float]] = {}
    for key, value in task_results.items():
        if "," not in key or "_stderr," in key or not isinstance(value, (int, float)):
            continue
        metric, filter_name = key.split(",", 1)
        stderr = task_results.get(key.replace(",", "_stderr,", 1))
        rows[metric_key(metric, filter_name)] = (float(value), float(stderr) if isinstance(stderr, (int, float))
                                                 else np.nan)
    for metric, values in samples.groupby("metric")["value"]:
        if metric in rows or metric.startswith("n_") or metric.endswith(":n") or metric in _NOT_SCORES:
            continue
        v = values.to_numpy(dtype=float)
        stderr = float(np.std(v, ddof=1) / np.sqrt(len(v))) if len(v) > 1 else np.nan
        rows[metric] = (float(np.mean(v)), stderr)
    frame = pd.DataFrame([(run_id, m, v, s, n_docs) for m, (v, s) in rows.items()],
                         columns=["run_id", "metric", "value", "stderr", "n"])
    return frame


def to_arrow(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
