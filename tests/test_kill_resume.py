"""kill -9 at random points of every long command, again and again, then the same command once more:
the database must equal the one an uninterrupted run produced (same rows, same values), and no variant
folder is ever registered before it is complete.

Each test runs its command once uninterrupted (the reference, timed), then from scratch in the same
folder: start, SIGKILL after a seeded random delay spread over the reference's duration, start again,
... then a final uninterrupted run, and compares every table row by row. The delays are seeded so CI
replays the same schedule; they are printed (pytest -s) with whether each kill landed or the run
finished first. A run that finishes before its kill must succeed; a landed kill counts toward the
per-command target (21 kill points in all; the issue asks for at least 20).
"""

from __future__ import annotations

import json
import math
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest

from harness.models import fingerprint

REPO = Path(__file__).resolve().parents[1]
SEED = 20250610
# Kill delays are drawn uniformly from this fraction of the reference run's wall time: not 0, where
# nothing but the interpreter has started, and not past the end, where no work is left to interrupt.
DELAY_RANGE = (0.1, 1.0)
# A sequence gives up (and the test fails) after this many starts without reaching its kill target,
# and after this many seconds: both bound the test's time whatever the machine's speed.
MAX_STARTS_PER_KILL = 3
BUDGET_S = 240.0

# Columns whose values differ between two correct runs, so they are left out of the comparison. Every
# other column of every table is compared exactly (floats bit for bit, NaN equal to NaN).
IGNORED = {
    "models": {"created_at": "wall-clock time the model was first registered"},
    "runs": {
        "started_at": "wall-clock time the (last) attempt started",
        "finished_at": "wall-clock time the run finished (or the import happened)",
        "n_cached": "answers a resumed run found already stored: > 0 after a kill, 0 otherwise, by design",
        "n_computed": "answers a run computed itself: the complement of n_cached",
    },
    "hpo_trials": {"wall_time": "measured seconds per trial"},
}
# Keys inside JSON columns: when and how fast a variant was made (its manifest is models.recipe), and
# the checkout's commit in the run environment and the manifest's library versions, which moves when
# anyone commits while the test runs (the code under test is the same; CI never commits mid-run).
IGNORED_JSON_KEYS = {
    ("models", "recipe"): {"created_at": "wall-clock time the variant was made",
                           "wall_time_s": "measured seconds it took",
                           "library_versions.harness_git_commit": "commit of the checkout at that moment"},
    ("runs", "environment"): {"git_commit": "commit of the checkout at that moment"},
}


# ------------------------------------------------------------------------------------------ driving
@dataclass
class Sequence:
    """What one kill sequence did, for the printout and the assertions."""

    name: str
    reference_s: float
    reference_files: list[str]
    delays: list[tuple[float, str]] = field(default_factory=list)  # (seconds, 'killed' | 'finished')
    cpu_s: float = 0.0  # CPU time of all its processes: the cost on an idle machine, whatever the load

    @property
    def kills(self) -> int:
        return sum(outcome == "killed" for _, outcome in self.delays)

    def report(self) -> str:
        shown = ", ".join(f"{d:.2f}s {'kill' if o == 'killed' else 'done'}" for d, o in self.delays)
        return (f"{self.name}: reference {self.reference_s:.1f}s; {self.kills} kills landed; "
                f"{self.cpu_s:.0f} CPU-s in all; delays: {shown}")


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness.cli", *args]


def environment(root: Path) -> dict[str, str]:
    return os.environ | {"HARNESS_RESULTS": str(root / "results"), "HARNESS_DB": str(root / "results" / "h.duckdb"),
                         "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def run_through(args: list[str], env: dict, log: Path) -> float:
    """Run to the end; it must succeed. Returns its wall time."""
    started = time.perf_counter()
    with log.open("w") as handle:
        done = subprocess.run(args, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT, timeout=600)
    assert done.returncode == 0, f"{' '.join(args[2:])} failed:\n{log.read_text()[-3000:]}"
    return time.perf_counter() - started


def kill_sequence(name: str, args: list[str], env: dict, root: Path, kills: int, check=None) -> Sequence:
    """Reference run, then kill-and-restart until `kills` kills landed, then one run to the end.

    The reference database is left at root/reference.duckdb, the killed-and-resumed one at its usual
    place; both runs use the same folders, so stored paths agree.
    """
    results = root / "results"
    cpu_before = _children_cpu()
    reference_s = run_through(args, env, root / "reference.log")
    shutil.copyfile(results / "h.duckdb", root / "reference.duckdb")
    sequence = Sequence(name, reference_s, listing(results))
    shutil.rmtree(results)
    rng = random.Random(f"{SEED}:{name}")
    deadline = time.perf_counter() + BUDGET_S
    starts = 0
    while sequence.kills < kills:
        starts += 1
        assert starts <= MAX_STARTS_PER_KILL * kills and time.perf_counter() < deadline, \
            f"only {sequence.kills} of {kills} kills landed: {sequence.report()}"
        delay = rng.uniform(*DELAY_RANGE) * reference_s
        log = root / f"attempt-{starts}.log"
        with log.open("w") as handle:
            proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT)
            try:
                code = proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=60)
                sequence.delays.append((delay, "killed"))
            else:
                assert code == 0, f"{name}: a restarted run failed:\n{log.read_text()[-3000:]}"
                sequence.delays.append((delay, "finished"))
        if check is not None:
            check()
    run_through(args, env, root / "final.log")
    sequence.cpu_s = _children_cpu() - cpu_before
    print(sequence.report())
    return sequence


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def listing(folder: Path) -> list[str]:
    """Every file and folder under `folder` (relative), for comparing what two runs left on disk."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ---------------------------------------------------------------------------------------- comparing
def _plain(value):
    """A value two equal databases give equally: NaN made comparable, JSON parsed, manifests trimmed."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def snapshot(db: Path) -> dict[str, list[tuple]]:
    """Every row of every table (views are derived, so left out), less the IGNORED columns, sorted."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [t for (t,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' ORDER BY 1").fetchall()]
        out = {}
        for table in tables:
            columns = [c for (c, kind) in con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
                "ORDER BY ordinal_position", [table]).fetchall() if c not in IGNORED.get(table, {})]
            quoted = ", ".join(f'"{c}"' for c in columns)
            rows = con.execute(f"SELECT {quoted} FROM {table}").fetchall()
            out[table] = sorted((tuple(_cell(table, c, v) for c, v in zip(columns, row)) for row in rows), key=repr)
        return out
    finally:
        con.close()


def _cell(table: str, column: str, value):
    ignored = IGNORED_JSON_KEYS.get((table, column))
    if ignored is None or value is None:
        return _plain(value)
    document = json.loads(value)
    for dotted in ignored:
        *outer, key = dotted.split(".")
        inner = document
        for part in outer:
            inner = inner.get(part, {})
        inner.pop(key, None)
    return json.dumps(document, sort_keys=True)


def assert_same_database(reference: Path, resumed: Path) -> dict[str, int]:
    """Table by table, row by row; on a difference, name the table and show the first rows that differ."""
    want, got = snapshot(reference), snapshot(resumed)
    assert sorted(want) == sorted(got), f"tables differ: {sorted(want)} vs {sorted(got)}"
    for table in want:
        missing = [row for row in want[table] if row not in got[table]]
        extra = [row for row in got[table] if row not in want[table]]
        assert want[table] == got[table], (
            f"table {table}: {len(want[table])} rows in the reference, {len(got[table])} after kills; "
            f"missing {missing[:2]}, extra {extra[:2]}")
    return {table: len(rows) for table, rows in want.items()}


# -------------------------------------------------------------------------------------------- tests
EVAL_TASKS = "arith_add_2d,english_flores"


def test_eval_killed_and_resumed_equals_one_run(tiny_model, tmp_path):
    env = environment(tmp_path)
    args = command("eval", "--models", str(tiny_model), "--tasks", EVAL_TASKS, "--limit", "16",
                   "--batch-size", "4", "--chunk-size", "4", "--display", "none")
    sequence = kill_sequence("eval", args, env, tmp_path, kills=4)
    counts = assert_same_database(tmp_path / "reference.duckdb", tmp_path / "results" / "h.duckdb")
    assert counts["runs"] == 2 and counts["requests"] == 16 * 4 + 16 and counts["scores"] > 0, counts
    con = duckdb.connect(str(tmp_path / "results" / "h.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM runs WHERE status <> 'done'").fetchone()[0] == 0
    con.close()
    assert sequence.kills >= 4


VARIANT_RECIPE = """
[[variant]]
name = "mag"
parent = "{tiny}"
method = "magnitude"
sparsity = 0.5

[[variant]]
name = "wanda"
parent = "{tiny}"
method = "wanda"
sparsity = 0.5
n_samples = 2
seqlen = 32

[[variant]]
name = "drop"
parent = "{tiny}"
method = "layer_drop"
n_layers = 1
n_samples = 2
seqlen = 32

[[variant]]
name = "soup"
method = "linear"
models = ["mag", "wanda"]
"""


def registered_variants_are_complete(db: Path, variants: Path) -> int:
    """Every variant in the store points at a finished folder: manifest present and naming it, weights
    hashing to the manifest's output hash (= the stored fingerprint), never a hidden staging folder."""
    if not db.exists():
        return 0
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT name, source, fingerprint FROM models WHERE kind = 'variant'").fetchall()
    finally:
        con.close()
    for name, source, stored in rows:
        folder = Path(source)
        assert folder.parent == variants.resolve() and not folder.name.startswith("."), (name, source)
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["name"] == name and (folder / "config.json").is_file(), name
        assert fingerprint(folder) == manifest["output_sha256"] == stored, f"{name}: weights do not match manifest"
    return len(rows)


def test_variants_make_killed_and_resumed_equals_one_run(tiny_model, tmp_path):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(VARIANT_RECIPE.format(tiny=tiny_model))
    env = environment(tmp_path)
    db, variants = tmp_path / "results" / "h.duckdb", tmp_path / "results" / "variants"
    args = command("variants", "make", str(recipe), "--display", "none")

    def check() -> None:
        registered_variants_are_complete(db, variants)

    sequence = kill_sequence("variants", args, env, tmp_path, kills=4, check=check)
    counts = assert_same_database(tmp_path / "reference.duckdb", db)
    assert counts["models"] == 5, counts  # the tiny parent and four variants
    assert registered_variants_are_complete(db, variants) == 4
    # Nothing half-made is left behind either: the variants folder holds what one run leaves.
    after = [p for p in listing(db.parent) if p.startswith("variants")]
    assert after == [p for p in sequence.reference_files if p.startswith("variants")]


HPO_STUDY = """
study = "kill"
optimizers = ["random", "optuna-tpe"]
tasks = ["bbob-f1-d2", "bbob-f6-d3"]
seeds = [0, 1]
n_trials = 40
"""


def test_hpo_run_killed_and_resumed_equals_one_run(tmp_path):
    study = tmp_path / "study.toml"
    study.write_text(HPO_STUDY)
    args = command("hpo", "run", str(study), "--quiet")
    kill_sequence("hpo", args, environment(tmp_path), tmp_path, kills=5)
    counts = assert_same_database(tmp_path / "reference.duckdb", tmp_path / "results" / "h.duckdb")
    assert counts["hpo_trials"] == 2 * 2 * 2 * 40, counts


# ------------------------------------------------------------------------------------------ imports
def write_wide_csv(path: Path, rng: random.Random) -> None:
    benchmarks = [f"bench{j}" for j in range(40)]
    lines = ["model," + ",".join(benchmarks) + ",Average"]
    for i in range(300):
        values = [rng.random() for _ in benchmarks]
        lines.append(f"model-{i}," + ",".join(f"{v:.6f}" for v in values) + f",{sum(values) / len(values):.6f}")
    path.write_text("\n".join(lines) + "\n")


def write_olmo_log(path: Path, rng: random.Random) -> None:
    columns = [f"eval/downstream/task{j}_val_rc_0shot_acc" for j in range(30)]
    columns += [f"eval/task{j}-validation/CrossEntropyLoss" for j in range(10)]
    lines = ["_step,throughput/total_tokens," + ",".join(columns)]
    for step in range(0, 300 * 1000, 1000):
        lines.append(f"{step},{step * 4096}," + ",".join(f"{rng.random():.6f}" for _ in columns))
    path.write_text("\n".join(lines) + "\n")


def write_lm_eval_folder(root: Path, rng: random.Random) -> None:
    import pandas as pd

    from tests.test_import_cli import write_lm_eval_output

    rows = [{"model": f"model-{m}", "benchmark_id": bench, "example_id": f"{bench}/{i}", "pass1": float(rng.random() < 0.5)}
            for m in range(4) for bench in ("humaneval", "mbpp") for i in range(300)]
    write_lm_eval_output(root, pd.DataFrame(rows))


IMPORTS = {
    "import-csv": (write_wide_csv, "board.csv", ("csv", "{file}", "--name", "board", "--wide")),
    "import-checkpoints": (write_olmo_log, "190M-1xC.csv",
                           ("checkpoints", "{file}", "--name", "curves", "--layout", "olmo")),
    "import-lm-eval": (write_lm_eval_folder, "lm-eval-output", ("lm-eval", "{file}")),
}


@pytest.mark.parametrize("name", sorted(IMPORTS))
def test_import_killed_and_resumed_equals_one_run(name, tmp_path):
    write, file_name, verb = IMPORTS[name]
    source = tmp_path / "input" / file_name
    source.parent.mkdir()
    write(source, random.Random(f"{SEED}:{name}:data"))
    args = command("import", *(part.format(file=source) for part in verb))
    kill_sequence(name, args, environment(tmp_path), tmp_path, kills=2)
    counts = assert_same_database(tmp_path / "reference.duckdb", tmp_path / "results" / "h.duckdb")
    assert counts["external_scores"] + counts["samples"] > 1000, counts


def test_a_killed_builds_staging_folder_is_removed_by_the_next_build(tmp_path):
    """What a kill -9 mid-build leaves (the staging folder, as big as the model) goes at the next build
    of that variant; folders of live builders, other hosts and other variants stay."""
    import socket

    from harness.variants.checkpoint import staging

    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    folders = {name: tmp_path / name for name in (
        f".mag-{dead.pid}@{host}-abc123", f".mag-{os.getpid()}@{host}-def456", f".mag-{dead.pid}@elsewhere-ghi789",
        f".mag-2-{dead.pid}@{host}-jkl012", "mag-old")}
    for folder in folders.values():
        folder.mkdir()
    with staging(tmp_path / "mag") as tmp:
        (tmp / "config.json").write_text("{}")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([*list(folders)[1:], "mag"]), left
