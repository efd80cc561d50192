"""Every input parser, fed random and malformed files (hypothesis): the answer is a valid result or one
HarnessError line naming the file, never a traceback; through the CLI, a refused file exits non-zero with
one line on stderr and leaves every table of a seeded DuckDB store exactly as it was.

Covered: suite files, variant recipes, CSD rounds files (TOML and YAML), leaderboard CSVs (wide and long),
lm-eval output folders, per-checkpoint imports (OLMo CSV logs, Pythia lm-eval JSON) and HPO study files.
The profile (tests/conftest.py) is fixed: derandomized, no example database, so CI sees the same inputs every run.
Each fuzz test counts what its examples did (`examined`): a parser that refused everything, or a generator that
never produced an acceptable file, would otherwise pass while the checks on accepted results never ran.
"""

from __future__ import annotations

import copy
import csv
import functools
import io
import json
import math
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

import duckdb
import numpy as np
import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from harness.ingest.checkpoint_curves import read_checkpoints
from harness.cli import app
from harness.cli.commands._csd import load_rounds
from harness.evaluation.config import SuiteSpec, load_suite
from harness.common.errors import HarnessError
from harness.ingest.parsers import DUPLICATES, read_long_leaderboard, read_wide_csv, read_wide_leaderboard
from harness.ingest.lm_eval_runs import read_lm_eval_runs
from harness.common.spec_files import one_line
from harness.variants.recipe import NAME, load_recipe, parse_recipe
from hpo.config import load_study
from tournaments.rounds import parse_rounds
from tournaments.table import ScoreTable

# Parser tests run under the "harness" profile of conftest.py (derandomized, no example database, 40 examples);
# each CLI example opens a store, so those get fewer.
CLI = settings(max_examples=8)

# ----------------------------------------------------------------------------------------- values
WEIRD = st.sampled_from(["", " ", "a\nb", "x\r\ny", "tab\there", "../../etc/x", "名前", "\u2028", "\x85", "\ufeff",
                         "nan", "NaN", "inf", "-inf", "1e999", "-0", "null", "None", "12%", "\x00", "'", '"', ",",
                         "a" * 300, "core", "random", "bbob-f1-d2", "linear", "acc", "x"])
TEXT = st.text(max_size=10) | WEIRD
NUMBERS = (st.integers(-3, 3) | st.integers() | st.integers(min_value=2**31 - 2, max_value=2**80)
           | st.integers(max_value=-2**63) | st.floats() | st.sampled_from([math.nan, math.inf, -math.inf, 1e308]))
SCALARS = st.booleans() | NUMBERS | TEXT


def _nested(scalars):
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                        max_leaves=8)


TOML_VALUES = _nested(SCALARS)
JSON_VALUES = _nested(st.none() | SCALARS)


def _boxes(doc):
    """Every dict and list inside `doc` (itself included): the places a mutation can land."""
    yield doc
    children = doc.values() if isinstance(doc, dict) else doc
    for child in children:
        if isinstance(child, (dict, list)):
            yield from _boxes(child)


@st.composite
def mutated(draw, bases, values=TOML_VALUES, max_edits=3, min_edits=0):
    """A valid document with `min_edits` to `max_edits` fields dropped, replaced by any value, or added under any
    name."""
    doc = copy.deepcopy(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(min_edits, max_edits))):
        boxes = list(_boxes(doc))
        pick = st.integers(0, len(boxes) - 1)
        box = boxes[min(draw(pick), draw(pick))]  # favour the outer levels, where most fields live
        op = draw(st.sampled_from(["drop", "set", "add"]))
        if isinstance(box, dict):
            if op == "add" or not box:
                box[draw(TEXT)] = draw(values)
            else:
                key = draw(st.sampled_from(sorted(box)))
                if op == "drop":
                    del box[key]
                else:
                    box[key] = draw(values)
        elif op == "add" or not box:
            box.append(draw(values))
        else:
            index = draw(st.integers(0, len(box) - 1))
            if op == "drop":
                del box[index]
            else:
                box[index] = draw(values)
    return doc


@st.composite
def corrupted(draw, data: bytes):
    """`data` as written, or damaged the way files get damaged: cut short, BOM, a line twice, bytes spliced in."""
    how = draw(st.sampled_from(["keep", "keep", "cut", "bom", "twice", "splice", "latin1"]))
    if how == "cut":
        return data[:draw(st.integers(0, len(data)))]
    if how == "bom":
        return b"\xef\xbb\xbf" + data
    if how == "twice":
        lines = data.splitlines(keepends=True) or [b""]
        i = draw(st.integers(0, len(lines) - 1))
        return b"".join(lines[:i + 1] + lines[i:])
    if how == "splice":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    if how == "latin1":
        return data.replace(b"a", b"\xe9", 1)
    return data


def _toml_string(text: str) -> str:
    return '"' + "".join(c if c >= " " and c not in '"\\\x7f' else f"\\u{ord(c):04x}" for c in text) + '"'


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{_toml_string(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


def toml_bytes(doc) -> bytes:
    """A TOML file whose top level is `doc` (a non-table top level becomes the key `value`)."""
    doc = doc if isinstance(doc, dict) else {"value": doc}
    return "".join(f"{_toml_string(k)} = {_toml_value(v)}\n" for k, v in doc.items()).encode()


def toml_files(bases, valid=None):
    """Random bytes, or a mutated valid document as TOML, possibly damaged; or, given `valid` (a strategy of
    documents the parser must accept), one of those as written, so the checks on accepted files run too."""
    files = st.binary(max_size=64) | mutated(bases).map(toml_bytes).flatmap(corrupted)
    return files if valid is None else files | valid.map(toml_bytes)


# ------------------------------------------------------------------------------------- the contract
def refused(exc: BaseException, *names: object) -> str:
    """Check the error contract: the project's error, one non-empty line, naming the file (or folder)."""
    assert isinstance(exc, HarnessError), f"{type(exc).__name__} escaped: {exc!r}"
    message = str(exc)
    assert message and message.splitlines() == [message], f"not one line: {message!r}"
    for name in names:
        assert str(name) in message, f"{name} not named in: {message}"
    return message


# What the examples of the running fuzz test did ("accepted", "refused", ...), checked by `examined`.
EXAMINED: Counter[str] = Counter()


def examined(**at_least: int):
    """Decorate a @given test: after all its examples ran, each kind in `at_least` was seen that often.

    The floors are set well below what the derandomized profile produces at this commit (the counts are in
    each test's comment), so they fail only when a parser or a generator stops reaching a branch at all."""
    def decorate(test):
        @functools.wraps(test)
        def run(*args, **kwargs):
            EXAMINED.clear()
            test(*args, **kwargs)
            short = {kind: EXAMINED[kind] for kind, n in at_least.items() if EXAMINED[kind] < n}
            assert not short, f"too few examples of {short} (need {at_least}; saw {dict(EXAMINED)})"
        return run
    return decorate


def outcome(call, *names):
    """The result of `call`, or None after checking that its error keeps the contract (counted in EXAMINED)."""
    try:
        result = call()
    except HarnessError as exc:
        refused(exc, *names)
        EXAMINED["refused"] += 1
        return None
    EXAMINED["accepted"] += 1
    return result


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def fresh(scratch: Path, name: str) -> Path:
    """An empty folder for one example (examples of one test run one after another)."""
    folder = scratch / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def short(value) -> str:
    """A test id that stays readable for 400-digit integers."""
    return repr(value)[:16]


def finite(value: float) -> bool:
    return isinstance(value, float) and math.isfinite(value)


# ------------------------------------------------------------------------------------------- suites
SUITES = [
    {"models": [{"name": "tiny"}]},
    {"models": [{"name": "a", "path": "/tmp/a"}, {"name": "b"}], "tasks": ["core", "arc_easy"],
     "settings": {"backend": "hf", "batch_size": 4, "limit": 10, "dtype": "bfloat16", "device": "cpu",
                  "gpu_memory_utilization": 0.5, "max_model_len": 128, "enforce_eager": True}},
]


MODEL_NAMES = st.sampled_from(["tiny", "a", "b-2", "org_model", "名前", "x" * 40])
VALID_SUITES = st.fixed_dictionaries(
    {"models": st.lists(st.fixed_dictionaries({"name": MODEL_NAMES},
                                              optional={"path": st.sampled_from(["/tmp/a", "rel/dir"])}),
                        min_size=1, max_size=3, unique_by=lambda m: m["name"])},
    optional={"tasks": st.lists(st.sampled_from(["core", "arc_easy", "arith_add_2d"]), min_size=1, max_size=3),
              "settings": st.fixed_dictionaries({}, optional={
                  "backend": st.sampled_from(["hf", "vllm", "auto"]), "batch_size": st.integers(1, 2**31),
                  "limit": st.integers(1, 10**6), "dtype": st.sampled_from(["auto", "float32", "bfloat16"]),
                  "gpu_memory_utilization": st.floats(0.01, 1.0), "max_model_len": st.integers(2, 2**20),
                  "enforce_eager": st.booleans()})})


@examined(accepted=5, refused=10)  # 15 accepted, 25 refused at this commit
@given(data=toml_files(SUITES, VALID_SUITES))
def test_suite_files(scratch, data):
    path = write(scratch / "suite.toml", data)
    spec = outcome(lambda: load_suite(path), path)
    if spec is not None:
        assert isinstance(spec, SuiteSpec) and spec.models and spec.tasks
        assert len({m.name for m in spec.models}) == len(spec.models)
        assert finite(spec.settings.gpu_memory_utilization)


def test_suite_edge_files(scratch):
    """Hand-picked cases: a folder, a BOM, invalid UTF-8, a duplicate key, names with line breaks."""
    (scratch / "suite_dir.toml").mkdir(exist_ok=True)
    refused(pytest.raises(HarnessError, load_suite, scratch / "suite_dir.toml").value, "suite_dir.toml")
    refused(pytest.raises(HarnessError, load_suite, scratch / "missing.toml").value, "missing.toml")
    assert load_suite(write(scratch / "bom.toml", b'\xef\xbb\xbfmodels = [{name = "a"}]\n')).models[0].name == "a"
    for name, data in {"latin1.toml": b'models = [{name = "\xe9"}]\n',
                       "dup.toml": b'models = [{name = "a"}]\nmodels = [{name = "b"}]\n',
                       "nl.toml": b'models = [{name = "a\\nb"}, {name = "a\\nb"}]\n',
                       "nlkey.toml": b'"x\\ny" = 1\nmodels = [{name = "a"}]\n',
                       "nan.toml": b'models = [{name = "a"}]\nsettings = {gpu_memory_utilization = nan}\n',
                       "deep.toml": b"models = " + b"[" * 1000}.items():
        refused(pytest.raises(HarnessError, load_suite, write(scratch / name, data)).value, name)


# ------------------------------------------------------------------------------------------ recipes
RECIPES = [
    {"variant": [{"name": "soup", "method": "linear", "models": ["a", "b"], "weights": [0.5, 0.5]}]},
    {"variant": [{"name": "ties", "method": "ties", "base": "a", "models": ["b", "c"], "density": 0.3,
                  "lambda": 1.0},
                 {"name": "p24", "method": "magnitude", "parent": "ties", "pattern": "2:4"},
                 {"name": "w50", "method": "wanda", "parent": "a", "sparsity": 0.5, "n_samples": 4, "seqlen": 32}]},
    {"variant": [{"name": "drop", "method": "layer_drop", "parent": "a", "n_layers": 2},
                 {"name": "mlp", "method": "mlp_width", "parent": "a", "ratio": 0.25, "multiple": 8},
                 {"name": "pcb", "method": "pcb", "base": "a", "models": ["b"], "ratio": 0.1},
                 {"name": "dare", "method": "dare_ties", "base": "a", "models": ["b"], "seed": 3}]},
]


def _check_specs(specs) -> None:
    assert specs and len({s.name for s in specs}) == len(specs)
    for spec in specs:
        assert NAME.fullmatch(spec.name) and spec.parents
        json.dumps(spec.params(), allow_nan=False)  # the manifest records these: no NaN or inf
        assert 0 <= spec.seed < 2**32


@st.composite
def valid_recipes(draw):
    """Linear soups and magnitude prunings with plain unique names, parents among a, b, c and finite numbers."""
    names = draw(st.lists(st.from_regex(r"v[A-Za-z0-9._-]{0,30}", fullmatch=True), min_size=1, max_size=3,
                          unique=True))
    variants = []
    for name in names:
        if draw(st.booleans()):
            models = draw(st.lists(st.sampled_from("abc"), min_size=1, max_size=3, unique=True))
            entry = {"name": name, "method": "linear", "models": models}
            if draw(st.booleans()):
                entry["weights"] = draw(st.lists(st.floats(0.01, 10.0), min_size=len(models), max_size=len(models)))
        else:
            entry = {"name": name, "method": "magnitude", "parent": draw(st.sampled_from("abc")),
                     "sparsity": draw(st.floats(0.05, 0.95))}
        if draw(st.booleans()):
            entry["seed"] = draw(st.integers(0, 2**32 - 1))
        variants.append(entry)
    return {"variant": variants}


@examined(accepted=5, refused=10)  # 15 accepted, 25 refused at this commit
@given(data=toml_files(RECIPES, valid_recipes()))
def test_recipe_files(scratch, data):
    path = write(scratch / "recipe.toml", data)
    specs = outcome(lambda: load_recipe(path), path)
    if specs is not None:
        _check_specs(specs)


@examined(accepted=3, refused=10)  # 5 accepted, 35 refused at this commit
@given(raw=mutated(RECIPES, JSON_VALUES, max_edits=4))
def test_parse_recipe(raw):
    """The parser on already-loaded data (JSON-like, so also None and non-string keys never seen in TOML)."""
    specs = outcome(lambda: parse_recipe(raw, "fuzz.toml"), "fuzz.toml")
    if specs is not None:
        _check_specs(specs)


@pytest.mark.parametrize("entry", [
    {"name": "soup", "method": "linear", "models": ["a", "b"], "weights": [math.nan, 1.0]},
    {"name": "ta", "method": "task_arithmetic", "base": "a", "models": ["b"], "lambda": math.inf},
    {"name": "pcb", "method": "pcb", "base": "a", "models": ["b"],
     "search": {"tasks": ["arith_add_2d"], "sigma": math.inf}},
    {"name": "soup", "method": "linear", "models": ["a"], "seed": -1},
    {"name": "soup", "method": "linear", "models": ["a"], "seed": 2**64},
    {"name": "a\nb", "method": "linear", "models": ["a"]},
    {"name": "soup", "method": "lin\near", "models": ["a"]},
], ids=short)
def test_recipe_edge_values(entry):
    """NaN/inf parameters and out-of-range seeds are refused (they would reach the manifest and torch)."""
    refused(pytest.raises(HarnessError, parse_recipe, {"variant": [entry]}, "r.toml").value, "r.toml")


# ------------------------------------------------------------------------------------------- rounds
BENCHMARKS = ("a", "b", "c", "d")
ROUNDS = [
    {"rounds": [{"name": "first", "benchmarks": ["a", "b"]}, {"name": "second", "benchmarks": ["c"]}]},
    {"one": ["a"], "two": ["b", "c"], "three": "d"},
    {"rounds": [["a", "b"], "c", ["d"]]},
]
TABLE = ScoreTable(("m1", "m2", "m3"), BENCHMARKS, np.arange(12.0).reshape(3, 4))
ROUND_NAMES = st.sampled_from(BENCHMARKS) | TEXT


def _check_rounds(rounds) -> None:
    if rounds is None:
        return
    used = [b for r in rounds for b in r.benchmarks]
    assert rounds and len(set(used)) == len(used) and set(used) <= set(BENCHMARKS)
    assert len({r.name for r in rounds}) == len(rounds)


@examined(accepted=3, refused=10)  # 8 accepted, 32 refused at this commit
@given(spec=mutated(ROUNDS, _nested(st.none() | ROUND_NAMES | NUMBERS), max_edits=4) | _nested(ROUND_NAMES))
def test_parse_rounds(spec):
    """The library contract: a tuple of rounds, or ValueError/KeyError with one line."""
    try:
        rounds = parse_rounds(spec, TABLE)
    except (ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) else str(exc)
        assert message and message.splitlines() == [message], repr(message)
        EXAMINED["refused"] += 1
        return
    EXAMINED["accepted"] += 1
    _check_rounds(rounds)


def _yaml_bytes(doc) -> bytes:
    return yaml.safe_dump(doc, allow_unicode=True).encode()


@examined(accepted=3, refused=10)  # 5 accepted, 35 refused at this commit
@given(suffix=st.sampled_from([".toml", ".yaml"]), data=st.data())
def test_rounds_files(scratch, suffix, data):
    if suffix == ".toml":
        content = data.draw(toml_files(ROUNDS))
    else:
        content = data.draw(st.binary(max_size=64) | mutated(ROUNDS).map(_yaml_bytes).flatmap(corrupted)
                            | st.sampled_from([b"[[[[", b"a: &x [*x]", b"!!python/object:os.system {}", b"- ?",
                                               b"\t- a", b"{a: b, a: c}", b"---\n...\n---",
                                               b"[" * 600 + b"]" * 600]))
    path = write(scratch / f"rounds{suffix}", content)
    _check_rounds(outcome(lambda: load_rounds(str(path), TABLE), path))


# ----------------------------------------------------------------------------------- leaderboard CSV
CELLS = (st.sampled_from(["0.5", "71.2", "12%", "", "-", "n/a", "NaN", "inf", "-inf", "1e999", "1e308", "9" * 400,
                          "0x10", "1_000", " 3 ", "−1", "١٢"])
         | st.floats().map(repr) | TEXT)
HEADERS = st.sampled_from(["model", "Model", "benchmark", "task", "value", "score", "Average", "mmlu", "gsm8k",
                           "helm_lite", "name", "", " ", "a\nb", "model"]) | TEXT


SCORES = st.floats(0, 100).map(repr) | st.sampled_from(["", "0.5", "71.2", "12%"])
COMPETITORS = st.sampled_from(["m1", "m2", "org/model-7b", "名前", "a,b", "x" * 60])


@st.composite
def well_formed_tables(draw):
    """("wide" or "long", rows): a header and unique competitors (and benchmarks) with numbers or gaps."""
    competitors = draw(st.lists(COMPETITORS, min_size=1, max_size=4, unique=True))
    benchmarks = draw(st.lists(st.sampled_from(["mmlu", "gsm8k", "arc", "hellaswag", "Average"]), min_size=1,
                               max_size=4, unique=True))
    if draw(st.booleans()):
        return "wide", [["model", *benchmarks], *([c, *(draw(SCORES) for _ in benchmarks)] for c in competitors)]
    pairs = draw(st.lists(st.tuples(st.sampled_from(competitors), st.sampled_from(benchmarks)), min_size=1,
                          unique=True))
    return "long", [["model", "benchmark", "value"], *([c, b, draw(SCORES)] for c, b in pairs)]


@st.composite
def csv_files(draw, delimiter=","):
    """(content, header, layout): random cells under random headers (layout None), or a well-formed wide or
    long table written as is with `delimiter`, so the checks on accepted files run too."""
    if draw(st.integers(0, 2)) == 0:
        layout, rows = draw(well_formed_tables())
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=delimiter).writerows(rows)
        return buffer.getvalue().encode(), rows[0], layout
    width = draw(st.integers(1, 5))
    header = draw(st.lists(HEADERS, min_size=width, max_size=width))
    rows = draw(st.lists(st.lists(CELLS | HEADERS, min_size=max(1, width - 1), max_size=width + 1), max_size=6))
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *rows])
    return draw(corrupted(buffer.getvalue().encode()) | st.binary(max_size=64)), header, None


def _check_leaderboard(board) -> None:
    assert board.competitors and board.benchmarks
    assert all(map(math.isfinite, board.rows.column("value").to_pylist()))
    for row in board.rows.to_pylist():
        assert row["benchmark"] == board.aggregate if row["is_aggregate"] else (
            row["competitor"] in board.competitors and row["benchmark"] in board.benchmarks)


@examined(accepted=3, refused=10)  # 7 accepted, 33 refused at this commit
@given(wide=st.booleans(), suffix=st.sampled_from([".csv", ".tsv"]), data=st.data())
def test_csv_files(scratch, wide, suffix, data):
    content, header, layout = data.draw(csv_files("\t" if suffix == ".tsv" else ","))
    wide = wide if layout is None else layout == "wide"
    path = write(scratch / f"helm_lite_240829{suffix}", content)
    pick = st.sampled_from(header + ["nope"])
    lower = data.draw(st.lists(pick, max_size=2))
    aggregate = data.draw(st.none() | pick)
    if wide:
        ignore = data.draw(st.lists(pick, max_size=1))
        repeated = data.draw(st.sampled_from(DUPLICATES))
        options = dict(lower_is_better=lower, aggregate_col=aggregate, ignore_cols=ignore, on_duplicate=repeated)
        result = outcome(lambda: read_wide_leaderboard(path, **options), path)
        if result is not None:  # ranking the file unimported (`rank --from`) reads the same names
            table, _ = read_wide_csv(path, **options)
            assert (table.competitors, table.benchmarks) == (result.competitors, result.benchmarks)
    else:
        result = outcome(lambda: read_long_leaderboard(path, lower_is_better=lower, aggregate=aggregate), path)
    if result is not None:
        _check_leaderboard(result)


# ------------------------------------------------------------------------------------ lm-eval output
STAMP = "2024-10-29T00-00-00.000000"
LM_EVAL = {
    "results": {"arc_easy": {"alias": "arc_easy", "acc,none": 0.5, "acc_stderr,none": 0.1, "acc_norm,none": 0.25,
                             "acc_norm_stderr,none": "N/A"},
                "grp": {"alias": "grp", "acc,none": 0.5}},
    "group_subtasks": {"grp": ["arc_easy"], "arc_easy": []},
    "versions": {"arc_easy": 1.0}, "n-shot": {"arc_easy": 0},
    "higher_is_better": {"arc_easy": {"acc": True, "acc_norm": True}},
    "n-samples": {"arc_easy": {"original": 2, "effective": 2}},
    "config": {"model": "hf", "model_args": "pretrained=org/tiny,dtype=float32"},
    "model_name": "org/tiny", "lm_eval_version": "0.4.5", "date": 1730160000.0,
}
SAMPLES = [{"doc_id": 0, "filter": "none", "metrics": ["acc", "acc_norm"], "acc": 1.0, "acc_norm": 0.0},
           {"doc_id": 1, "filter": "none", "metrics": ["acc", "acc_norm"], "acc": 0.0, "acc_norm": 1.0}]


def _json_bytes(doc) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def lm_eval_folders(draw):
    """(results file, samples file) contents: each valid, mutated, damaged or random."""
    results = draw(mutated([LM_EVAL], JSON_VALUES, max_edits=3).map(_json_bytes).flatmap(corrupted)
                   | st.binary(max_size=32) | st.sampled_from([b"[]", b"null", b"{\"results\": []}", b"[" * 5000]))
    records = draw(mutated([SAMPLES], JSON_VALUES, max_edits=3))
    lines = b"\n".join(_json_bytes(r) for r in records)
    samples = draw(corrupted(lines) | st.binary(max_size=32))
    return results, samples


def _check_imported(imported) -> None:
    assert imported.models and imported.tasks and imported.runs.num_rows
    assert all(map(math.isfinite, imported.scores.column("value").to_pylist()))
    assert all(map(math.isfinite, imported.samples.column("value").to_pylist()))


def _lay_out_lm_eval(root: Path, results: bytes, samples: bytes) -> None:
    write(root / "org__tiny" / f"results_{STAMP}.json", results)
    write(root / "org__tiny" / f"samples_arc_easy_{STAMP}.jsonl", samples)


@examined(accepted=3, refused=10)  # 5 accepted, 35 refused at this commit
@given(files=lm_eval_folders(), name=st.none() | TEXT)
def test_lm_eval_folders(scratch, files, name):
    root = fresh(scratch, "lm_eval")
    _lay_out_lm_eval(root, *files)
    imported = outcome(lambda: read_lm_eval_runs(root, name), root)
    if imported is not None:
        _check_imported(imported)


def _edit(doc, path: str, value):
    """A copy of `doc` with the item at dotted `path` set to `value` (a new key where there was none)."""
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    box = doc
    for key in parents:
        box = box[int(key)] if isinstance(box, list) else box[key]
    box[int(last) if isinstance(box, list) else last] = value
    return doc


@pytest.mark.parametrize("where,path,value,ok", [
    ("results", "config", [1], True),
    ("results", "n-samples", [], False),
    ("results", "n-samples.arc_easy.effective", "abc", False),
    ("results", "higher_is_better.arc_easy", "yes", False),
    ("results", "results.arc_easy.acc,none", 10**400, False),
    ("results", "results.arc_easy.acc,none", math.inf, False),
    ("results", "results.arc_easy.acc,none", math.nan, True),
    ("results", "results.arc_easy.acc_stderr,none", math.inf, True),
    ("results", "group_subtasks", ["grp"], False),
    ("results", "results.a\x00b", {"acc,none": 0.5}, True),
    ("samples", "0.doc_id", "x", False),
    ("samples", "0.doc_id", 2**40, False),
    ("samples", "0.metrics", [["acc"]], False),
    ("samples", "0.acc", math.inf, False),
], ids=short)
def test_lm_eval_edge_values(scratch, where, path, value, ok):
    results, samples = (_edit(LM_EVAL, path, value), SAMPLES) if where == "results" else \
        (LM_EVAL, _edit(SAMPLES, path, value))
    root = fresh(scratch, "lm_eval_edge")
    _lay_out_lm_eval(root, _json_bytes(results), b"\n".join(_json_bytes(r) for r in samples))
    imported = outcome(lambda: read_lm_eval_runs(root), root)
    assert (imported is not None) == ok
    if ok:
        _check_imported(imported)


def test_lm_eval_bom_and_depth(scratch):
    root = fresh(scratch, "lm_eval_bom")
    _lay_out_lm_eval(root, b"\xef\xbb\xbf" + _json_bytes(LM_EVAL), b"")
    _check_imported(read_lm_eval_runs(root))
    _lay_out_lm_eval(root, b"[" * 5000, b"")
    refused(pytest.raises(HarnessError, read_lm_eval_runs, root).value, root)


# ------------------------------------------------------------------------------------- checkpoints
OLMO_COLUMNS = ["_step", "throughput/total_tokens", "eval/downstream/arc_easy_val_rc_5shot_acc",
                "eval/downstream_bpb/arc_easy_val_rc_5shot_bpb", "eval/c4_en-validation/CrossEntropyLoss"]
OLMO_CELLS = st.sampled_from(["100", "200", "0.5", "", "nan", "inf", "1e999", "-1", "9" * 30, "abc", "1.5"]) | CELLS


@st.composite
def olmo_logs(draw):
    """A log with mutated columns and random cells, possibly damaged; or one third of the time a well-formed
    log (whole steps, one at least, and finite scores) as written, so the checks on accepted logs run too."""
    if draw(st.integers(0, 2)) == 0:
        steps = draw(st.lists(st.integers(0, 10**9), min_size=1, max_size=4, unique=True))
        rows = [[step, step * 4096, *(draw(st.floats(0, 10).map(repr)) for _ in OLMO_COLUMNS[2:])]
                for step in sorted(steps)]
        buffer = io.StringIO()
        csv.writer(buffer).writerows([OLMO_COLUMNS, *rows])
        return buffer.getvalue().encode()
    header = draw(mutated([OLMO_COLUMNS], HEADERS, max_edits=2))
    rows = draw(st.lists(st.lists(OLMO_CELLS, min_size=len(header), max_size=len(header) + 1), max_size=4))
    buffer = io.StringIO()
    csv.writer(buffer).writerows([[str(h) for h in header], *rows])
    return draw(corrupted(buffer.getvalue().encode()) | st.binary(max_size=48))


PYTHIA = {"results": {"arc_easy": {"acc": 0.5, "acc_stderr": 0.01, "acc_norm": 0.4}},
          "config": {"model_args": "pretrained=EleutherAI/pythia-70m,revision=step1000", "num_fewshot": 0}}


@examined(accepted=5, refused=5)  # 26 accepted, 14 refused at this commit
@given(log=olmo_logs(), as_file=st.booleans())
def test_olmo_checkpoint_logs(scratch, log, as_file):
    folder = fresh(scratch, "olmo")
    file = write(folder / "190M-1xC.csv", log)
    path = file if as_file else folder
    rows = outcome(lambda: read_checkpoints(path, "olmo"), path)
    if rows is not None:
        assert rows.num_rows and all(map(math.isfinite, rows.column("value").to_pylist()))


@examined(accepted=2, refused=10)  # 3 accepted, 37 refused at this commit
@given(docs=st.lists(mutated([PYTHIA], JSON_VALUES).map(_json_bytes).flatmap(corrupted) | st.binary(max_size=32),
                     min_size=1, max_size=2))
def test_pythia_checkpoint_results(scratch, docs):
    root = fresh(scratch, "pythia")
    for step, doc in zip((1000, 2000), docs):
        write(root / "pythia-70m" / "zero-shot" / f"pythia-70m_arc_easy_step{step}.json", doc)
    rows = outcome(lambda: read_checkpoints(root, "lm-eval"), root)
    if rows is not None:
        assert rows.num_rows and all(map(math.isfinite, rows.column("value").to_pylist()))


@pytest.mark.parametrize("path,value", [("config.num_fewshot", math.inf), ("config.num_fewshot", "five"),
                                        ("results.arc_easy.acc", 10**400), ("results.arc_easy.acc", math.inf),
                                        ("results.arc_easy.acc", {"a": 1}), ("results", [1])], ids=short)
def test_pythia_edge_values(scratch, path, value):
    root = fresh(scratch, "pythia_edge")
    doc = _json_bytes(_edit(PYTHIA, path, value))
    write(root / "pythia-70m" / "zero-shot" / "pythia-70m_arc_easy_step1000.json", doc)
    refused(pytest.raises(HarnessError, read_checkpoints, root, "lm-eval").value, root)


@pytest.mark.parametrize("step,score", [("1.5", "0.5"), ("-1", "0.5"), ("1e30", "0.5"), ("inf", "0.5"), ("", "0.5"),
                                        ("100", "1e999")])
def test_olmo_edge_values(scratch, step, score):
    """A step that is not a whole number >= 0 would be silently truncated or wrap around; an inf score poisons means."""
    path = write(fresh(scratch, "olmo_edge") / "190M-1xC.csv",
                 f"_step,eval/downstream/arc_easy_val_rc_5shot_acc\n0,0.25\n{step},{score}\n".encode())
    refused(pytest.raises(HarnessError, read_checkpoints, path, "olmo").value, path)


# ------------------------------------------------------------------------------------- HPO studies
STUDIES = [
    {"study": "s", "optimizers": ["random"], "tasks": ["bbob-f1-d2"]},
    {"study": "t", "optimizers": ["random", "optuna-tpe"], "tasks": ["bbob-f1-d2", "bbob-f8-d5-i3"],
     "seeds": [0, 1, 2], "n_trials": 5},
]
STUDY_VALUES = TOML_VALUES | st.sampled_from(["bbob-f1-d2-i" + "9" * 30, "bbob-f99-d2", "bbob-f1-d400", "random",
                                             "sklearn-wine-gbm", "nevergrad-de"])


VALID_STUDIES = st.fixed_dictionaries(
    {"study": st.text(min_size=1, max_size=20),
     "optimizers": st.lists(st.sampled_from(["random", "optuna-tpe", "nevergrad-de"]), min_size=1, unique=True),
     "tasks": st.lists(st.sampled_from(["bbob-f1-d2", "bbob-f8-d5-i3", "bbob-f24-d40", "sklearn-wine-gbm"]),
                       min_size=1, unique=True)},
    optional={"seeds": st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=4, unique=True),
              "n_trials": st.integers(1, 10**6)})


@examined(accepted=3, refused=10)  # 8 accepted, 32 refused at this commit
@given(data=st.binary(max_size=64) | mutated(STUDIES, STUDY_VALUES).map(toml_bytes).flatmap(corrupted)
       | VALID_STUDIES.map(toml_bytes))
def test_study_files(scratch, data):
    path = write(scratch / "study.toml", data)
    spec = outcome(lambda: load_study(path), path)
    if spec is not None:
        assert spec.study and spec.optimizers and spec.tasks
        assert all(0 <= s < 2**31 for s in spec.seeds)  # stored as int32; numpy refuses negative seeds


def test_study_edge_files(scratch):
    (scratch / "study_dir.toml").mkdir(exist_ok=True)
    refused(pytest.raises(HarnessError, load_study, scratch / "study_dir.toml").value, "study_dir.toml")
    refused(pytest.raises(HarnessError, load_study, write(scratch / "l1.toml", b'study = "\xe9"\n')).value, "l1.toml")
    for seeds in ("[-1]", "[2147483648]", "[0, 0]"):
        bad = write(scratch / "seeds.toml", f'study = "s"\noptimizers = ["random"]\ntasks = ["bbob-f1-d2"]\n'
                                            f'seeds = {seeds}\n'.encode())
        assert "seeds" in refused(pytest.raises(HarnessError, load_study, bad).value, bad)
    ok = load_study(write(scratch / "bom_study.toml", b'\xef\xbb\xbfstudy = "s"\noptimizers = ["random"]\n'
                                                      b'tasks = ["bbob-f1-d2"]\n'))
    assert ok.study == "s"


@pytest.mark.parametrize("read,content", [
    (load_suite, b"models = 1\n"), (load_recipe, b"variant = 1\n"), (load_study, b"study = 1\n"),
    (lambda path: load_rounds(str(path), TABLE), b"rounds = 1\n"), (lambda path: read_wide_csv(path), b"model\n"),
    (lambda path: read_checkpoints(path, "olmo"), b"_step\nx\n"),
], ids=["suite", "recipe", "study", "rounds", "csv", "checkpoints"])
def test_a_file_name_with_line_breaks_stays_on_one_line(scratch, read, content):
    path = write(fresh(scratch, "names") / "we\nird\u2028 名.toml", content)
    refused(pytest.raises(HarnessError, read, path).value, one_line(str(path)))


# ---------------------------------------------------------------------------- the CLI on a real store
runner = CliRunner()


def dump(db: Path) -> dict[str, str]:
    """Every table's rows, sorted, as text (so NaN compares equal to NaN)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
        return {n: repr(sorted(map(repr, con.execute(f'SELECT * FROM "{n}"').fetchall()))) for n in names}
    finally:
        con.close()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A store holding an imported leaderboard and an lm-eval import, and the dump of every table."""
    root = tmp_path_factory.mktemp("seeded")
    db = root / "seed.duckdb"
    board = write(root / "board.csv", b"model,mmlu,gsm8k,Average\nm1,0.5,0.25,0.4\nm2,0.75,0.5,0.6\nm3,0.1,0.9,0.5\n")
    assert runner.invoke(app, ["import", "csv", str(board), "--wide", "--name", "lb", "--db", str(db)]).exit_code == 0
    _lay_out_lm_eval(root / "lm_eval", _json_bytes(LM_EVAL), b"\n".join(_json_bytes(r) for r in SAMPLES))
    result = runner.invoke(app, ["import", "lm-eval", str(root / "lm_eval"), "--db", str(db)])
    assert result.exit_code == 0, result.output
    before = dump(db)
    assert before["external_scores"].count("'lb'") == 9 and before["runs"] != "[]"
    return db, before


def cli_outcome(scratch: Path, seeded, args: list[str], named: Path) -> int:
    """Run `harness ARGS --db COPY`; a refusal is one stderr line naming `named`, and the copy is unchanged."""
    source, before = seeded
    db = scratch / "cli.duckdb"
    shutil.copyfile(source, db)
    result = runner.invoke(app, [*args, "--db", str(db)])
    EXAMINED["refused" if result.exit_code else "accepted"] += 1
    if named.suffix == ".toml":
        try:
            tomllib.loads(named.read_text("utf-8"))
            EXAMINED["toml"] += 1  # refused (or not) for what it says, not for its syntax
        except (UnicodeDecodeError, tomllib.TOMLDecodeError):
            pass
    if result.exit_code != 0:
        assert isinstance(result.exception, SystemExit), f"{type(result.exception).__name__}: {result.exception!r}"
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and str(named) in lines[0], result.stderr
        assert "Traceback" not in result.output
        assert dump(db) == before
    return result.exit_code


def cli_toml_files(bases):
    """What the CLI tests feed: mostly documents that are valid TOML with 1 to 3 edits (so the command gets past
    the syntax to the spec's checks), and random bytes; the parser tests cover damaged files in depth."""
    return mutated(bases, min_edits=1).map(toml_bytes) | st.binary(max_size=64)


@examined(accepted=1, refused=3)  # 3 accepted, 5 refused at this commit
@CLI
@given(file=csv_files(), wide=st.booleans())
def test_cli_import_csv(scratch, seeded, file, wide):
    content, _, layout = file
    wide = wide if layout is None else layout == "wide"
    path = write(scratch / "cli" / "board.csv", content)
    cli_outcome(scratch, seeded, ["import", "csv", str(path), "--wide" if wide else "--long", "--name", "lb"], path)


@examined(accepted=1, refused=3)  # 1 accepted, 7 refused at this commit
@CLI
@given(files=lm_eval_folders())
def test_cli_import_lm_eval(scratch, seeded, files):
    root = fresh(scratch, "cli_lm_eval")
    _lay_out_lm_eval(root, *files)
    cli_outcome(scratch, seeded, ["import", "lm-eval", str(root)], root)


@examined(accepted=1, refused=1)  # 5 accepted, 3 refused at this commit
@CLI
@given(log=olmo_logs())
def test_cli_import_checkpoints(scratch, seeded, log):
    path = write(fresh(scratch, "cli_olmo") / "190M-1xC.csv", log)
    cli_outcome(scratch, seeded, ["import", "checkpoints", str(path), "--layout", "olmo", "--name", "lb"], path)


def only_invalid(load, path: Path) -> None:
    """Drop the example if `load` accepts the file: a valid file would run real work (optimizers, variant
    builds, evaluations); the parser tests cover valid files. `examined` checks that enough were left."""
    try:
        load(path)
    except HarnessError:
        return
    assume(False)


@examined(refused=8, toml=2)  # every one of the 8 refused, 4 of them valid TOML, at this commit
@CLI
@given(data=cli_toml_files(STUDIES))
def test_cli_hpo_run(scratch, seeded, data):
    path = write(scratch / "cli" / "study.toml", data)
    only_invalid(load_study, path)
    assert cli_outcome(scratch, seeded, ["hpo", "run", str(path), "--quiet"], path) != 0


@examined(refused=3, toml=2)  # 8 refused, 3 of them valid TOML, at this commit
@CLI
@given(data=cli_toml_files(ROUNDS))
def test_cli_rank_rounds(scratch, seeded, data):
    path = write(scratch / "cli" / "rounds.toml", data)
    cli_outcome(scratch, seeded, ["rank", "--source", "lb", "--method", "csd", "--rounds", str(path), "--n-sims", "20"],
                path)


@examined(refused=8, toml=2)  # every one of the 8 refused, 5 of them valid TOML, at this commit
@CLI
@given(data=cli_toml_files(RECIPES))
def test_cli_variants_make(scratch, seeded, data):
    path = write(scratch / "cli" / "recipe.toml", data)
    only_invalid(load_recipe, path)
    assert cli_outcome(scratch, seeded, ["variants", "make", str(path), "--display", "plain"], path) != 0


@examined(refused=6, toml=2)  # every one of the 6 refused, 3 of them valid TOML, at this commit
@settings(max_examples=6)
@given(data=cli_toml_files(SUITES))
def test_cli_eval_suite(scratch, seeded, data):
    path = write(scratch / "cli" / "suite.toml", data)
    only_invalid(load_suite, path)
    assert cli_outcome(scratch, seeded, ["eval", "--suite", str(path), "--display", "none"], path) != 0


def test_cli_subprocess_bad_file(scratch, seeded):
    """The installed entry point, as users run it: no traceback, one stderr line, the store untouched."""
    source, before = seeded
    db = scratch / "sub.duckdb"
    shutil.copyfile(source, db)
    bad_csv = write(scratch / "sub" / "bad.csv", b"model,mmlu\nm1,\xff\xfe\n")
    done = subprocess.run([str(Path(sys.executable).parent / "harness"), "import", "csv", str(bad_csv), "--wide",
                           "--name", "lb", "--db", str(db)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(bad_csv) in lines[0] and "not UTF-8" in lines[0], done.stderr
    assert dump(db) == before
