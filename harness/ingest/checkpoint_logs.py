"""Readers for published per-checkpoint evaluation logs, turned into tidy (long) DataFrames.

Pure parsing: each reader takes a folder laid out as in ../shared/data and returns one row per
observed number, so the signal/noise analysis (and later `harness import`) can pivot as it needs.
Nothing here computes a statistic.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from harness.ingest.cells import parse_number

# Non-embedding parameter counts of the OLMo ladder sizes and the OLMo 2 targets (dataset README and
# signal-and-noise `snr/constants/ladder.py`); the two-step scaling law needs N per run.
OLMO_PARAMS = {
    "190M": 190_354_176,
    "370M": 371_262_464,
    "760M": 758_220_288,
    "1B": 1_279_395_840,
    "3B": 3_169_537_280,
    "peteish7": 6_887_575_552,
    "peteish13": 13_202_396_160,
}

_LADDER_FILE = re.compile(r"^(?P<size>\d+[MB])-(?P<mult>[\d.]+)xC(?P<rerun>-rerun)?$")
_DOWNSTREAM = re.compile(
    r"^eval/(?P<family>downstream|downstream_bpb|downstream_soft|downstream_soft_log)/"
    r"(?P<task>.+?)_(?P<split>val|test)_(?P<format>rc|mc)_(?P<shots>\d+)shot_(?P<metric>[a-z_]+)$"
)
_LM_LOSS = re.compile(r"^eval/(?P<task>.+)-validation/CrossEntropyLoss$")
_PYTHIA_STEP = re.compile(r"_step(\d+)\.json$")


def _olmo_metric_columns(columns) -> pd.DataFrame:
    """Describe each score column of an OLMo log: task, split, format, shots and metric name."""
    rows = []
    for col in columns:
        if m := _DOWNSTREAM.match(col):
            metric = m["metric"]
            if m["family"] == "downstream_bpb":
                metric = "bpb"
            elif m["family"] == "downstream_soft_log":
                metric = "soft_log"
            rows.append(
                dict(column=col, task=m["task"], split=m["split"], format=m["format"],
                     shots=int(m["shots"]), metric=metric)
            )
        elif m := _LM_LOSS.match(col):
            rows.append(dict(column=col, task=m["task"], split="validation", format="lm", shots=0, metric="ce_loss"))
    return pd.DataFrame(rows, columns=["column", "task", "split", "format", "shots", "metric"])


def olmo_number_columns(header) -> list[str]:
    """The columns of an OLMo log that read_olmo_log reads as numbers: `_step`, the tokens column it
    uses, and every score column, so a locator of bad cells checks exactly these."""
    names = set(header)
    tokens = [c for c in ("throughput/total_tokens", "batch_size_in_tokens") if c in names][:1]
    return [c for c in ["_step", *tokens] if c in names] + list(_olmo_metric_columns(header)["column"])


def repeated_column(header) -> str | None:
    """The first named column a header lists twice (pandas would rename the second `NAME.1` and the
    score under it would vanish from the import); None when every name is unique."""
    seen = set()
    for name in header:
        if name in seen and name.strip():
            return name
        seen.add(name)
    return None


def _floats(frame: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    """`column` as floats; a column pandas could not parse is checked cell by cell with the strict syntax
    (pandas would otherwise hand `1_000`, `٣` or `True` to float() and get a number)."""
    series = frame[column]
    if series.dtype.kind in "iuf":
        return series.to_numpy(dtype=float)
    out = np.empty(len(series))
    for row, value in enumerate(series):
        if value is pd.NA or value is None:
            value = np.nan
        number = value if isinstance(value, float) else parse_number(value) if isinstance(value, str) else None
        if number is None:
            raise ValueError(f"{path.name}: column {column!r}: non-numeric value {value!r}")
        out[row] = number
    return out


def read_olmo_log(path: str | Path, run: str | None = None) -> pd.DataFrame:
    """One OLMo in-loop evaluation CSV -> rows (run, step, tokens, task, split, format, shots, metric, value).

    `tokens` is `throughput/total_tokens` where the log has it (ladder runs), else step x
    `batch_size_in_tokens` (OLMo 2 target logs), else NaN. Files without
    a `_step` column (the one-row anneal log) are refused rather than given an invented step, and so are
    a column named twice and a number pandas could only read through float() (`1_000`, `٣`).
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            twice = repeated_column(next(csv.reader(handle), []))
    except csv.Error as err:
        raise ValueError(f"{path.name}: {err}") from None
    if twice is not None:
        raise ValueError(f"{path.name}: column {twice!r} appears more than once")
    frame = pd.read_csv(path)
    if "_step" not in frame.columns:
        raise ValueError(f"{path.name}: no `_step` column; not a per-checkpoint log")
    steps = _floats(frame, "_step", path)
    if not np.all((steps >= 0) & (steps < 2**53) & (steps == np.floor(steps))):  # NaN and inf fail too
        raise ValueError(f"{path.name}: `_step` must hold whole numbers >= 0")
    described = _olmo_metric_columns(frame.columns)
    columns = [_floats(frame, c, path) for c in described["column"]]
    values = np.column_stack(columns) if columns else np.empty((len(frame), 0))
    n_rows, n_cols = values.shape
    if "throughput/total_tokens" in frame:
        tokens = _floats(frame, "throughput/total_tokens", path)
    elif "batch_size_in_tokens" in frame:  # OLMo 2 target logs: constant batch, so tokens = step x batch
        tokens = steps * _floats(frame, "batch_size_in_tokens", path)
    else:
        tokens = np.full(n_rows, np.nan)
    long = pd.DataFrame(
        {
            "step": np.repeat(steps.astype(np.int64), n_cols),
            "tokens": np.repeat(tokens, n_cols),
            **{key: np.tile(described[key].to_numpy(), n_rows)
               for key in ("task", "split", "format", "shots", "metric")},
            "value": values.ravel(),
        }
    )
    long = long[~np.isnan(long["value"].to_numpy())]
    long.insert(0, "run", run or path.stem)
    return long.reset_index(drop=True)


def read_olmo_ladder(folder: str | Path) -> pd.DataFrame:
    """All ladder, target and seed runs of `olmo-ladder-peteish-moreeval` as one long frame.

    Adds run metadata: `size` (190M..3B, or peteish7 / peteish13), `chinchilla` (token multiplier,
    NaN for targets), `rerun` (the `-rerun` 1xC file), `seed` ("default" or the seed-run folder) and
    `params` (N). The `_full` target logs are used for the OLMo 2 runs; the partial windows repeat them.
    """
    folder = Path(folder)
    frames = []
    for path in sorted(folder.glob("*.csv")) + sorted(folder.glob("seed-runs/*/*.csv")):
        stem = path.stem
        seed = path.parent.name if path.parent.parent.name == "seed-runs" else "default"
        if m := _LADDER_FILE.match(stem):
            meta = dict(size=m["size"], chinchilla=float(m["mult"]), rerun=bool(m["rerun"]))
        elif stem in ("peteish7_eval_full", "peteish13_eval_full"):
            meta = dict(size=stem.split("_")[0], chinchilla=float("nan"), rerun=False)
        else:
            continue
        run = stem if seed == "default" else f"{seed}/{stem}"
        long = read_olmo_log(path, run=run)
        frames.append(long.assign(seed=seed, params=OLMO_PARAMS[meta["size"]], **meta))
    if not frames:
        raise FileNotFoundError(f"no OLMo ladder CSV files under {folder}")
    return pd.concat(frames, ignore_index=True)


def read_pythia_evals(folder: str | Path) -> pd.DataFrame:
    """lm-eval JSON results per Pythia checkpoint -> rows (model, setting, shots, step, task, metric, value, stderr).

    `setting` is the sub-folder (zero-shot, five-shot, baseline, intervention, plus `-long` for the
    intervention study's longer series); batch-size variants
    whose files sit directly under the model folder get the setting their `num_fewshot` implies.
    The step comes from the file name (it matches the `revision=step<N>` in every file's config).
    """
    folder = Path(folder)
    rows = []
    for path in sorted(folder.glob("pythia-*/**/*.json")):
        step = _PYTHIA_STEP.search(path.name)
        if step is None:
            raise ValueError(f"{path}: no _step<N> in file name")
        doc = json.loads(path.read_text())
        shots = int(doc.get("config", {}).get("num_fewshot", 0))
        model = path.relative_to(folder).parts[0]
        setting = path.parent.name if path.parent.name != model else ("five-shot" if shots == 5 else "zero-shot")
        if path.name[: step.start()].endswith("-long"):
            setting += "-long"  # the intervention study's second, longer series over the same steps
        for task, metrics in doc["results"].items():
            for metric, value in metrics.items():
                if metric.endswith("_stderr"):
                    continue
                rows.append((model, setting, shots, int(step.group(1)), task, metric, value,
                             metrics.get(f"{metric}_stderr", float("nan"))))
    if not rows:
        raise FileNotFoundError(f"no Pythia result JSON files under {folder}")
    return pd.DataFrame(rows, columns=["model", "setting", "shots", "step", "task", "metric", "value", "stderr"])
