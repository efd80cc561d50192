"""Parse results produced elsewhere: leaderboard CSVs (wide or long) and lm-eval output folders.

Leaderboards come out as the store's records (harness.ingest.leaderboards), lm-eval folders as frames;
storing is the store's job. Every malformed input raises MalformedFileError (a
ValueError) whose one-line message names the file, the line and the column, before anything is
returned, so a caller never stores half a file.
"""

from __future__ import annotations

import csv
import json
import math
import re
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, InvalidOperation
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from harness.common.errors import HarnessError
from harness.common.paths import sibling
from harness.common.spec_files import one_line
from harness.ingest.cells import parse_number
from harness.ingest.leaderboards import Leaderboard, leaderboard
from tournaments.table import ScoreTable

MISSING = {"", "-", "na", "n/a", "nan", "none", "null"}
AGGREGATE_NAMES = {"average", "avg", "mean", "overall", "aggregate", "mean_win_rate"}
AGGREGATE_WORDS = {"average", "avg", "mean", "mwr", "overall", "aggregate", "total"}
DUPLICATES = ("error", "number", "first")
_WIDE_DECIMAL = Context(prec=60, Emax=MAX_EMAX, Emin=MIN_EMIN)


class MalformedFileError(HarnessError, ValueError):
    """A results file that cannot be read as it claims to be; the message says where, on one line."""

    def __init__(self, message: str):
        super().__init__(one_line(message))


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _leaderboard_key(path: Path) -> str:
    """File stem up to its first all-digit token: 'helm_lite_240829' -> 'helm_lite'."""
    key = []
    for token in _norm(path.stem).split("_"):
        if token.isdigit():
            break
        key.append(token)
    return "_".join(key)


def _aggregate_rank(name: str, path: Path) -> int | None:
    """How surely a column (wide) or scenario (long) is the leaderboard's own aggregate; None = not.

    0: named after the leaderboard (`helm_lite` in helm_lite_240829.csv); 1: a generic name
    (Average, Mean win rate); 2: leaderboard-prefixed with an aggregate word (`livebench_average`,
    `helm_mwr`).
    """
    n, stem, key = _norm(name), _norm(path.stem), _leaderboard_key(path)
    tokens = n.split("_")
    if n and (stem.startswith(n + "_") or n == stem or n == key):
        return 0
    if n in AGGREGATE_NAMES:
        return 1
    if key and len(tokens) > 1 and tokens[0] == key.split("_")[0] and tokens[-1] in AGGREGATE_WORDS:
        return 2
    return None


def _detect_aggregate(names: Sequence[str], path: Path) -> str | None:
    """The most likely aggregate among `names`, never the only one left (a one-score leaderboard)."""
    ranked = [(r, i) for i, n in enumerate(names) if (r := _aggregate_rank(n, path)) is not None]
    if not ranked or len(names) < 2:
        return None
    return names[min(ranked)[1]]


def _percent(number: str) -> float:
    """`number` percent as a fraction, correctly rounded (71.2 / 100 in floats is 0.7120000000000001)."""
    try:
        return float(_WIDE_DECIMAL.scaleb(Decimal(number), -2))
    except InvalidOperation:  # an exponent beyond any float: inf or 0 either way
        return float(number) / 100


def _number(text: str, path: Path, line: int, column: str) -> tuple[float, bool | None]:
    """(value, whether it was written as a percentage) of one cell; NaN and None for a missing cell.

    A number is ASCII only (harness.ingest.cells): float() would also take `1_000` or `٣` and store a
    typo as a plausible score. `12%` reads as 0.12; whether a column may hold it is _Kinds's call.
    """
    cell = text.strip()
    if cell.lower() in MISSING:
        return math.nan, None
    percent = cell.endswith("%")
    number = cell[:-1].rstrip() if percent else cell
    value = parse_number(number)
    if value is None or (percent and math.isnan(value)):
        raise MalformedFileError(f"{path}:{line}: column {column!r}: non-numeric value {cell!r}")
    if math.isnan(value):
        return math.nan, None
    if percent and not math.isinf(value):
        value = _percent(number)
    if math.isinf(value):
        raise MalformedFileError(f"{path}:{line}: column {column!r}: infinite value {cell!r}")
    return value, percent


class _Kinds:
    """Per column, whether its numbers are written as percentages: a column must be all one or the other.

    A whole column of `12%` cells is read as fractions (0.12): that is what the sign means, and what a
    spreadsheet makes of it. A column mixing `50%` with `0.4` cannot be read either way without
    guessing (50 beside 0.4, or 0.5 beside a 0.4 that may have meant 0.4%), so it is refused on the
    first cell that breaks the column's pattern, naming the line of the first cell that set it.
    """

    def __init__(self, path: Path):
        self.path, self.first = path, {}

    def check(self, column: str, percent: bool | None, line: int, text: str) -> None:
        if percent is None:
            return
        first, line_one, text_one = self.first.setdefault(column, (percent, line, text))
        if first != percent:
            this, other = ("percentage", "plain numbers") if percent else ("plain number", "percentages")
            raise MalformedFileError(f"{self.path}:{line}: column {column!r}: {this} {text.strip()!r} in a column of "
                                     f"{other} ({text_one.strip()!r} at line {line_one}); write the whole column "
                                     f"one way")

    def percent_columns(self) -> list[str]:
        return [column for column, (percent, _, _) in self.first.items() if percent]


def _rows(path: Path) -> Iterable[tuple[int, list[str]]]:
    """(line number, fields) for every non-blank record; tab-separated when the name says .tsv."""
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            for fields in reader:
                if any(f.strip() for f in fields):
                    yield reader.line_num, fields
    except UnicodeDecodeError as err:
        raise MalformedFileError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except csv.Error as err:
        raise MalformedFileError(f"{path}: {err}") from None


def _header(path: Path) -> tuple[Iterable[tuple[int, list[str]]], list[str]]:
    """The remaining rows and the stripped header line; an empty file is malformed."""
    rows = iter(_rows(path))
    try:
        _, header = next(rows)
    except StopIteration:
        raise MalformedFileError(f"{path}: empty file") from None
    if len(header) == 1:  # one column: most likely another delimiter than the one the name says
        other = next((name for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars"), (",", "commas"))
                      if sep in header[0]), None)
        if other is not None:
            tabs = path.suffix.lower() in (".tsv", ".tab")
            raise MalformedFileError(f"{path}:1: one column whose header holds {other}; a .{path.suffix[1:]} file "
                                     f"must be separated by {'tabs' if tabs else 'commas'} (save it so"
                                     f"{', or name it .csv' if tabs else ', or save tabs as .tsv'})")
    return rows, [h.strip() for h in header]


def _check_columns(path: Path, header: Sequence[str], names: Iterable[str], what: str) -> None:
    for name in names:
        if name not in header:
            close = [h for h in header if _norm(h) == _norm(name)]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise MalformedFileError(f"{path}:1: unknown column {name!r} given as {what}{hint}")


def _numbered(names: Sequence[str]) -> list[str]:
    """`names` with every repeat after the first renamed NAME#k, k the smallest suffix from 2 that no
    competitor of the file (nor an earlier renaming) holds, so a real `A#2` keeps its name."""
    taken, first, out, next_copy = set(names), set(), [], {}
    for name in names:
        if name not in first:
            first.add(name)
            out.append(name)
            continue
        copy = next_copy.get(name, 2)
        while f"{name}#{copy}" in taken:
            copy += 1
        next_copy[name] = copy + 1
        taken.add(f"{name}#{copy}")
        out.append(f"{name}#{copy}")
    return out


def _repeated_column(path: Path, header: Sequence[str]) -> None:
    """Refuse a header naming one column twice (in one pass: wide files may have 100,000 columns)."""
    seen = set()
    for name in header:
        if name in seen:
            raise MalformedFileError(f"{path}:1: column {name!r} appears more than once")
        seen.add(name)


def _read_wide(path: Path, lower_is_better: Sequence[str], aggregate_col: str | None, competitor_col: str | None,
               ignore_cols: Sequence[str], on_duplicate: str
               ) -> tuple[list[str], list[str], list[bool], list[list[float]], str | None, list[float], list[str]]:
    """(competitors, benchmarks, higher_is_better, cells per competitor, aggregate column, its values, columns
    read as percentages) of a wide file, every check done, so storing it (read_wide_leaderboard) and ranking it
    (read_wide_csv) read alike. Linear in the cells: header lookups go through one dict."""
    if on_duplicate not in DUPLICATES:
        raise ValueError(f"on_duplicate must be one of {DUPLICATES}, got {on_duplicate!r}")
    rows, header = _header(path)
    blank = [i + 1 for i, h in enumerate(header) if not h]
    if blank:
        raise MalformedFileError(f"{path}:1: column {blank[0]} has no name")
    _repeated_column(path, header)
    given = [c for c in [competitor_col, aggregate_col] if c] + list(lower_is_better) + list(ignore_cols)
    _check_columns(path, header, given, "an option")
    index = {h: i for i, h in enumerate(header)}
    who = index[competitor_col] if competitor_col else 0
    skip = {who} | {index[c] for c in ignore_cols}
    if aggregate_col is None:
        candidates = [h for i, h in enumerate(header) if i not in skip]
        found = _detect_aggregate(candidates, path)
        aggregate = index[found] if found is not None else None
    else:
        aggregate = index[aggregate_col]
    lower = set(lower_is_better)
    if aggregate is not None and header[aggregate] in lower:
        raise MalformedFileError(f"{path}:1: column {header[aggregate]!r} is the aggregate, not a benchmark")
    bench_idx = [i for i in range(len(header)) if i not in skip and i != aggregate]
    if not bench_idx:
        raise MalformedFileError(f"{path}:1: no benchmark columns besides {header[who]!r}")
    names, values, published, seen, kinds = [], [], [], {}, _Kinds(path)
    for line, fields in rows:
        if len(fields) != len(header):
            raise MalformedFileError(f"{path}:{line}: expected {len(header)} fields, got {len(fields)}")
        name = fields[who].strip()
        if not name:
            raise MalformedFileError(f"{path}:{line}: column {header[who]!r}: empty competitor name")
        cells = []
        for i in bench_idx:
            value, percent = _number(fields[i], path, line, header[i])
            kinds.check(header[i], percent, line, fields[i])
            cells.append(value)
        total = math.nan
        if aggregate is not None:
            total, percent = _number(fields[aggregate], path, line, header[aggregate])
            kinds.check(header[aggregate], percent, line, fields[aggregate])
        if name in seen:
            if on_duplicate == "error":
                raise MalformedFileError(f"{path}:{line}: duplicate competitor {name!r} (first at line {seen[name]})")
            if on_duplicate == "first":
                continue
        seen.setdefault(name, line)
        names.append(name)
        values.append(cells)
        published.append(total)
    if not names:
        raise MalformedFileError(f"{path}: no data rows")
    benchmarks = [header[i] for i in bench_idx]
    hib = [b not in lower for b in benchmarks]
    return (_numbered(names), benchmarks, hib, values, (header[aggregate] if aggregate is not None else None),
            published, kinds.percent_columns())


def _percent_notes(columns: Sequence[str]) -> tuple[str, ...]:
    return tuple(f"column {c!r} is written in percentages: stored as fractions (12% -> 0.12)" for c in columns)


def read_wide_leaderboard(
    path: str | Path,
    lower_is_better: Sequence[str] = (),
    aggregate_col: str | None = None,
    competitor_col: str | None = None,
    ignore_cols: Sequence[str] = (),
    on_duplicate: str = "error",
) -> Leaderboard:
    """A leaderboard with one row per competitor and one column per benchmark, as store records.

    The competitor column is `competitor_col` or the first one. The leaderboard's own aggregate
    column (`aggregate_col`, or auto-detected: named like the file, e.g. `helm_lite` in
    helm_lite_240829.csv, or Average/Mean/Overall) is kept out of the benchmarks and stored as the
    published aggregate. Repeated competitors raise, unless on_duplicate is "number" (keep all,
    later ones renamed NAME#2, NAME#3, ..., skipping any name the file already uses) or "first".

    Cells are strict ASCII numbers; blank, -, n/a, nan, none, null are missing. A column written
    wholly in percentages (`71.2%`) is stored as fractions (0.712) and named in the result's notes;
    a column mixing `50%` with plain numbers is refused, naming the file, line and column.
    """
    path = Path(path)
    names, benchmarks, hib, values, aggregate, published, percent = _read_wide(
        path, lower_is_better, aggregate_col, competitor_col, ignore_cols, on_duplicate)
    scores = ((n, b, v) for n, cells in zip(names, values) for b, v in zip(benchmarks, cells))
    return leaderboard(path, names, dict(zip(benchmarks, hib)), scores, aggregate, zip(names, published),
                       _percent_notes(percent))


def read_wide_csv(
    path: str | Path,
    lower_is_better: Sequence[str] = (),
    aggregate_col: str | None = None,
    competitor_col: str | None = None,
    ignore_cols: Sequence[str] = (),
    on_duplicate: str = "error",
) -> tuple[ScoreTable, pd.Series | None]:
    """A wide leaderboard (read as read_wide_leaderboard reads it) as a ScoreTable and its published aggregate,
    for ranking a file without importing it (`harness rank --from`)."""
    names, benchmarks, hib, values, aggregate, published, _ = _read_wide(
        Path(path), lower_is_better, aggregate_col, competitor_col, ignore_cols, on_duplicate)
    table = ScoreTable(tuple(names), tuple(benchmarks), values, hib)
    series = pd.Series(published, index=names, name=aggregate, dtype=float) if aggregate is not None else None
    return table, series


LONG_ROLES = {
    "competitor": ("competitor", "model", "name", "system"),
    "benchmark": ("benchmark", "scenario", "task"),
    "value": ("value", "score", "result"),
}


def read_long_leaderboard(
    path: str | Path,
    competitor_col: str | None = None,
    benchmark_col: str | None = None,
    value_col: str | None = None,
    lower_is_better: Sequence[str] = (),
    aggregate: str | None = None,
) -> Leaderboard:
    """A leaderboard with one row per (competitor, benchmark), as store records.

    Columns are found by name (competitor/model, benchmark/scenario/task, value/score) unless
    given. The leaderboard's aggregate arrives as a pseudo-benchmark (e.g. `livebench_average`
    in livebench_240701.csv, `helm_lite_mwr`); it is auto-detected like the wide aggregate, or
    named with `aggregate`, and stored as the published aggregate. A repeated (competitor,
    benchmark) raises. Values follow the wide rules: strict numbers, and a value column wholly in
    percentages is stored as fractions (noted), one mixing them with plain numbers is refused.
    """
    path = Path(path)
    rows, header = _header(path)
    chosen = {}
    for role, explicit in (("competitor", competitor_col), ("benchmark", benchmark_col), ("value", value_col)):
        if explicit is not None:
            _check_columns(path, header, [explicit], f"the {role} column")
            chosen[role] = header.index(explicit)
            continue
        found = [i for i, h in enumerate(header) if _norm(h) in LONG_ROLES[role]]
        if not found:
            raise MalformedFileError(f"{path}:1: no {role} column (looked for {', '.join(LONG_ROLES[role])})")
        chosen[role] = found[0]
    records, seen, kinds = [], {}, _Kinds(path)
    for line, fields in rows:
        if len(fields) != len(header):
            raise MalformedFileError(f"{path}:{line}: expected {len(header)} fields, got {len(fields)}")
        who, what = fields[chosen["competitor"]].strip(), fields[chosen["benchmark"]].strip()
        if not who or not what:
            raise MalformedFileError(f"{path}:{line}: empty competitor or benchmark name")
        if (who, what) in seen:
            raise MalformedFileError(
                f"{path}:{line}: duplicate score for competitor {who!r} on {what!r} (first at line {seen[(who, what)]})"
            )
        seen[(who, what)] = line
        value, percent = _number(fields[chosen["value"]], path, line, header[chosen["value"]])
        kinds.check(header[chosen["value"]], percent, line, fields[chosen["value"]])
        records.append((who, what, value))
    if not records:
        raise MalformedFileError(f"{path}: no data rows")
    benchmarks = list(dict.fromkeys(what for _, what, _ in records))
    for name in list(lower_is_better) + ([aggregate] if aggregate else []):
        if name not in benchmarks:
            raise MalformedFileError(f"{path}: unknown benchmark {name!r} given as an option")
    if aggregate is None:
        aggregate = _detect_aggregate(benchmarks, path)
    scores = [r for r in records if r[1] != aggregate]
    if not scores:
        raise MalformedFileError(f"{path}: no benchmark rows besides the aggregate {aggregate!r}")
    competitors = list(dict.fromkeys(who for who, _, _ in scores))
    directions = {b: b not in set(lower_is_better) for b in benchmarks if b != aggregate}
    published = [(who, value) for who, what, value in records if what == aggregate]
    return leaderboard(path, competitors, directions, scores, aggregate, published,
                       _percent_notes(kinds.percent_columns()))


# --------------------------------------------------------------------------- lm-eval folders
RUN_COLUMNS = ["run", "model", "task", "metric", "filter", "value", "stderr", "n_samples", "higher_is_better",
               "version", "n_shot", "lm_eval_version", "model_args", "date"]
SAMPLE_COLUMNS = ["run", "model", "task", "doc_id", "filter", "metric", "value"]


def load_results_json(path: Path) -> dict:
    """An lm-eval results file as a dict with a 'results' object; anything else is one MalformedFileError."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as err:
        raise MalformedFileError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise MalformedFileError(f"{path}:{err.lineno}: column {err.colno}: invalid JSON ({err.msg})") from None
    except RecursionError:
        raise MalformedFileError(f"{path}: invalid JSON (nested too deeply)") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise MalformedFileError(f"{path}:1: not an lm-eval results file (no 'results' object)")
    return data


def _object(value: object, what: str, path: Path) -> dict:
    """`value` if it is a JSON object, {} when absent; anything else is a one-line error naming `what`."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedFileError(f"{path}:1: {what} is not an object")
    return value


def _per_task(data: dict, key: str, path: Path) -> dict:
    """data[key] (an object keyed by task, as lm-eval writes 'versions', 'n-shot', ...), {} when absent."""
    return _object(data.get(key), repr(key), path)


def _task_entry(table: dict, key: str, task: str, path: Path) -> dict:
    return _object(table.get(task), f"{key!r} entry for task {task!r}", path)


def _effective_count(value: object, task: str, path: Path) -> int | None:
    """n-samples.<task>.effective: a whole number of items (stored as a 32-bit count), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) \
            or not 0 <= value < 2**31:
        raise MalformedFileError(f"{path}:1: 'n-samples' of task {task!r}: 'effective' is not a count: {value!r:.40}")
    return int(value)


def _model_name(data: dict, folder: Path) -> str:
    name = data.get("model_name")
    if isinstance(name, str) and name:
        return name
    config = data.get("config")
    args = config.get("model_args") if isinstance(config, dict) else None
    if isinstance(args, dict) and args.get("pretrained"):
        return str(args["pretrained"])
    if isinstance(args, str):
        match = re.search(r"pretrained=([^,]+)", args)
        if match:
            return match.group(1)
    return folder.name


def _scalar(value: object) -> float | None:
    """A metric as a float, or None for values that are not one number (e.g. BLEU pairs) and for NaN."""
    if not isinstance(value, (bool, int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # a JSON integer beyond float range
        number = math.inf if value > 0 else -math.inf
    return None if math.isnan(number) else number


def _finite(value: object, where: str) -> float | None:
    """_scalar, with an infinite value refused (it would break every mean and ranking downstream)."""
    number = _scalar(value)
    if number is not None and math.isinf(number):
        raise MalformedFileError(f"{where}: infinite value {value!r:.40}")
    return number


def _doc_id(value: object, path: Path, line_no: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        raise MalformedFileError(f"{path}:{line_no}: 'doc_id' must be a whole number from 0 to 2**31 - 1, "
                                 f"got {value!r:.40}")
    return value


def _read_samples(path: Path, run: str, model: str, task: str) -> list[tuple]:
    out = []
    try:
        with open(path, encoding="utf-8-sig") as handle:
            lines = handle.read().splitlines()
    except UnicodeDecodeError as err:
        raise MalformedFileError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise MalformedFileError(f"{path}:{line_no}: column {err.colno}: invalid JSON ({err.msg})") from None
        except RecursionError:
            raise MalformedFileError(f"{path}:{line_no}: invalid JSON (nested too deeply)") from None
        if not isinstance(record, dict) or "doc_id" not in record:
            raise MalformedFileError(f"{path}:{line_no}: sample without 'doc_id'")
        doc_id = _doc_id(record["doc_id"], path, line_no)
        metrics = record.get("metrics")
        if not isinstance(metrics, list):
            raise MalformedFileError(f"{path}:{line_no}: sample without a 'metrics' list")
        for metric in metrics:
            if not isinstance(metric, str) or metric not in record:
                raise MalformedFileError(f"{path}:{line_no}: metric {metric!r:.40} listed but missing")
            value = _finite(record[metric], f"{path}:{line_no}: metric {metric!r}")
            if value is not None:
                out.append((run, model, task, doc_id, str(record.get("filter", "none")), metric, value))
    return out


def read_lm_eval_dir(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs, samples) from every results_*.json under `path` and its samples_<task>_*.jsonl.

    runs: one row per (results file, task, metric, filter) with value, stderr, n_samples and
    direction; `run` is the results file's path relative to `path`. samples: one row per
    (run, task, doc_id, filter, metric) for numeric per-item metrics; non-scalar metrics
    (corpus-level inputs such as BLEU pairs) are left out. Group entries (tasks that only
    aggregate subtasks) appear in runs; their subtasks carry the samples.
    """
    root = Path(path)
    if not root.is_dir():
        raise MalformedFileError(f"{root}: not a directory")
    results_files = sorted(root.rglob("results_*.json"))
    if not results_files:
        raise MalformedFileError(f"{root}: no lm-eval results_*.json files found")
    run_rows, sample_rows = [], []
    for file in results_files:
        data = load_results_json(file)
        run = file.relative_to(root).as_posix()
        model = _model_name(data, file.parent)
        stamp = file.stem[len("results_"):]
        directions = _per_task(data, "higher_is_better", file)
        versions = _per_task(data, "versions", file)
        shots = _per_task(data, "n-shot", file)
        n_samples = _per_task(data, "n-samples", file)
        config = data.get("config")
        args = config.get("model_args") if isinstance(config, dict) else None
        args_text = args if isinstance(args, str) else "" if args is None else json.dumps(args, sort_keys=True)
        for task, metrics in data["results"].items():
            if not isinstance(metrics, dict):
                raise MalformedFileError(f"{file}:1: results entry for task {task!r} is not an object")
            count = _effective_count(_task_entry(n_samples, "n-samples", task, file).get("effective"), task, file)
            direction = _task_entry(directions, "higher_is_better", task, file)
            for key, value in metrics.items():
                if "," not in key or "_stderr," in key:
                    continue
                metric, filt = key.split(",", 1)
                number = _finite(value, f"{file}:1: task {task!r} metric {key!r}")
                if number is None:
                    continue
                stderr = _scalar(metrics.get(f"{metric}_stderr,{filt}"))
                higher = direction.get(metric) if isinstance(direction.get(metric), bool) else None
                run_rows.append((run, model, task, metric, filt, number,
                                 stderr if stderr is None or math.isfinite(stderr) else None, count, higher,
                                 versions.get(task), shots.get(task), data.get("lm_eval_version"), args_text, stamp))
            # The task name comes from the file: it may only name a file beside it, never reach elsewhere.
            samples_file = sibling(file.parent, f"samples_{task}_{stamp}.jsonl")
            if samples_file is not None and samples_file.is_file():
                sample_rows.extend(_read_samples(samples_file, run, model, task))
    runs = pd.DataFrame(run_rows, columns=RUN_COLUMNS)
    samples = pd.DataFrame(sample_rows, columns=SAMPLE_COLUMNS)
    return runs, samples
