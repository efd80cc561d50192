"""Per-checkpoint result folders -> external-score rows (competitor = run, replicate = step).

`harness import checkpoints` stores training curves so `harness snr` can measure checkpoint noise.
Parsing is checkpoint_data's; this module names runs and benchmarks, sets directions, and turns any
reader failure into one line naming the file, line and column, before anything is stored.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pandas as pd
import pyarrow as pa
from pandas._libs.parsers import STR_NA_VALUES  # the cells pandas reads as missing

from harness.ingest.cells import parse_number
from harness.ingest.checkpoint_logs import (olmo_number_columns, read_olmo_ladder, read_olmo_log,
                                            read_pythia_evals, repeated_column)
from harness.ingest.parsers import MalformedFileError

LAYOUTS = ("olmo", "lm-eval")
CHECKPOINTS = "checkpoints"
"""The snapshot label of every per-checkpoint import: it tells SNR that replicates are steps."""
LOWER_IS_BETTER = {"bpb", "ce_loss", "ppl", "perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte",
                   "likelihood_difference", "pct_stereotype"}
_PLAIN_SETTINGS = {"zero-shot", "five-shot"}


def read_checkpoints(path: str | Path, layout: str) -> pa.Table:
    """Rows (competitor, benchmark, replicate, value, higher_is_better, snapshot) of every checkpoint.

    olmo: a ladder folder (../shared/data/olmo-ladder-peteish-moreeval) or one OLMo log CSV; the run
    is the file (seed runs prefixed by their folder), the benchmark `task_split_format_Nshot:metric`.
    lm-eval: a folder of per-checkpoint lm-eval JSON (the pythia-v1-evals layout); the run is the
    model folder (plus the setting for studies other than zero-/five-shot), the benchmark
    `task_Nshot:metric`. Missing values are left out; a step logged twice for a run is an error.
    """
    path = Path(path)
    if layout not in LAYOUTS:
        raise MalformedFileError(f"--layout '{layout}': choose one of {', '.join(LAYOUTS)}")
    if not path.exists():
        raise MalformedFileError(f"{path}: no such file or folder")
    frame = _olmo_rows(path) if layout == "olmo" else _lm_eval_rows(path)
    frame = frame[frame["value"].notna()]
    if frame.empty:
        raise MalformedFileError(f"{path}: no checkpoint scores found")
    infinite = frame[frame["value"].abs() == math.inf]
    if not infinite.empty:
        row = infinite.iloc[0]
        raise MalformedFileError(f"{path}: run {row.competitor!r} step {row.replicate}: {row.benchmark!r}: "
                                 f"infinite value")
    twice = frame.duplicated(["competitor", "benchmark", "replicate"])
    if twice.any():
        row = frame[twice].iloc[0]
        raise MalformedFileError(f"{path}: run {row.competitor!r} logs step {row.replicate} twice "
                                 f"for {row.benchmark!r}")
    return pa.Table.from_pandas(frame.assign(snapshot=CHECKPOINTS), preserve_index=False)


# --------------------------------------------------------------------------------------- OLMo logs
def _olmo_rows(path: Path) -> pd.DataFrame:
    files = [path] if path.is_file() else sorted(path.glob("*.csv")) + sorted(path.glob("seed-runs/*/*.csv"))
    try:
        long = read_olmo_log(path) if path.is_file() else read_olmo_ladder(path)
    except FileNotFoundError as err:
        raise MalformedFileError(f"{path}: {err}") from None
    except (ValueError, pd.errors.ParserError) as err:
        raise MalformedFileError(_locate_csv_problem(files) or f"{path}: {str(err).splitlines()[0]}") from None
    lm = long["format"] == "lm"
    name = long["task"] + "_" + long["split"] + "_" + long["format"] + "_" + long["shots"].astype(str) + "shot"
    return pd.DataFrame({
        "competitor": long["run"].astype(str),
        "benchmark": name.where(~lm, long["task"]) + ":" + long["metric"],
        "replicate": long["step"].astype(str),
        "value": long["value"].astype(float),
        "higher_is_better": ~long["metric"].isin(LOWER_IS_BETTER),
    })


def _locate_csv_problem(files: list[Path]) -> str | None:
    """The first ragged row or non-numeric score cell among `files`, as 'file:line: ...'."""
    for file in files:
        try:
            problem = _csv_problem(file)
        except UnicodeDecodeError as err:
            return f"{file}: not UTF-8 text ({err.reason} at byte {err.start})"
        except csv.Error as err:
            return f"{file}: {err}"
        if problem:
            return problem
    return None


def _csv_problem(file: Path) -> str | None:
    """The first repeated column, ragged row or cell read_olmo_log would refuse as a number, or None."""
    with open(file, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        twice = repeated_column(header)
        if twice is not None:
            return f"{file}:1: column {twice!r} appears more than once"
        wanted = set(olmo_number_columns(header))
        scored = [i for i, name in enumerate(header) if name in wanted]
        for fields in reader:
            line = reader.line_num
            if len(fields) != len(header):
                return f"{file}:{line}: expected {len(header)} fields, got {len(fields)}"
            for i in scored:
                cell = fields[i].strip()
                if cell not in STR_NA_VALUES and parse_number(cell) is None:
                    return f"{file}:{line}: column {header[i]!r}: non-numeric value {cell!r}"
    return None


# --------------------------------------------------------------------------- lm-eval per-checkpoint
def _lm_eval_rows(path: Path) -> pd.DataFrame:
    if not path.is_dir():
        raise MalformedFileError(f"{path}: not a folder of per-checkpoint lm-eval results")
    try:
        long = read_pythia_evals(path)
    except json.JSONDecodeError as err:
        raise MalformedFileError(_locate_json_problem(path) or f"{path}: invalid JSON ({err.msg})") from None
    except (KeyError, AttributeError, TypeError):
        raise MalformedFileError(_locate_json_problem(path) or f"{path}: unreadable results file") from None
    except (FileNotFoundError, ValueError, OverflowError) as err:
        raise MalformedFileError(f"{path}: {err}") from None
    except RecursionError:
        raise MalformedFileError(_locate_json_problem(path) or f"{path}: invalid JSON (nested too deeply)") from None
    scores = [_score(v) for v in long["value"]]
    bad = pd.Series([s is None for s in scores], index=long.index)
    values = pd.Series([math.nan if s is None else s for s in scores], index=long.index, dtype=float)
    if bad.any():
        row = long[bad].iloc[0]
        raise MalformedFileError(f"{path}: {row.model}/{row.setting} step {row.step}: task {row.task!r} "
                                 f"metric {row.metric!r}: non-numeric value {row.value!r}")
    plain = long["setting"].isin(_PLAIN_SETTINGS)
    return pd.DataFrame({
        "competitor": long["model"].where(plain, long["model"] + "/" + long["setting"]),
        "benchmark": long["task"] + "_" + long["shots"].astype(str) + "shot:" + long["metric"],
        "replicate": long["step"].astype(str),
        "value": values.astype(float),
        "higher_is_better": ~long["metric"].isin(LOWER_IS_BETTER),
    })


def _score(value: object) -> float | None:
    """A reported score as a float (NaN when absent), or None when it is not a number at all."""
    if value is None:
        return math.nan
    if isinstance(value, str):
        return parse_number(value)  # strict: float() would take '1_000' or '٣'
    if isinstance(value, (bool, int, float)):
        try:
            return float(value)
        except OverflowError:  # a JSON integer beyond float range
            return math.inf if value > 0 else -math.inf
    return None


def _locate_json_problem(path: Path) -> str | None:
    """The first results file that is not valid JSON or has no 'results' object, as 'file:line: ...'."""
    for file in sorted(path.glob("*/**/*.json")):
        try:
            doc = json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            return f"{file}:{err.lineno}: column {err.colno}: invalid JSON ({err.msg})"
        except UnicodeDecodeError as err:
            return f"{file}: not UTF-8 text ({err.reason} at byte {err.start})"
        except RecursionError:
            return f"{file}: invalid JSON (nested too deeply)"
        results = doc.get("results") if isinstance(doc, dict) else None
        if not isinstance(results, dict) or not all(isinstance(m, dict) for m in results.values()):
            return f"{file}:1: not an lm-eval results file (no 'results' object of per-task metrics)"
    return None
