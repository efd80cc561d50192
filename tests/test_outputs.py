"""What the verbs write (issue 17): report never writes over a store or its own other output, machine-readable
formats are one document, and the small refusals (unknown --models, blank --name, several SQL statements, CSD
flags in CLI words, --busy-timeout on every verb that opens the store)."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from harness.cli import app
from tests.test_cli import digest, fill_store, one_line_error, store_items

runner = CliRunner()


@pytest.fixture()
def db(tmp_path):
    path = tmp_path / "h.duckdb"
    fill_store(path)
    return path


def _files(folder) -> set[str]:
    return {p.name for p in folder.iterdir()}


# ---------------------------------------------------------------- A: report --out never destroys data

def test_report_out_the_store_is_refused(db):
    before = digest(db)
    result = runner.invoke(app, ["report", "--db", str(db), "--out", str(db), "--n-boot", "20"])
    one_line_error(result, f"--out {db}", "is the store")
    assert digest(db) == before and _files(db.parent) == {"h.duckdb"}


def test_report_out_any_duckdb_file_is_refused_by_its_bytes(db, tmp_path):
    other = tmp_path / "backup.bin"  # a store under a name that does not say so
    fill_store(tmp_path / "other.duckdb")
    (tmp_path / "other.duckdb").rename(other)
    before = digest(other)
    result = runner.invoke(app, ["report", "--db", str(db), "--out", str(other), "--n-boot", "20"])
    one_line_error(result, str(other), "DuckDB database")
    assert digest(other) == before


def test_report_out_the_store_wal_is_refused(db):
    result = runner.invoke(app, ["report", "--db", str(db), "--out", f"{db}.wal", "--n-boot", "20"])
    one_line_error(result, "write-ahead log")
    assert not (db.parent / "h.duckdb.wal").exists()


def test_report_md_over_its_own_html_is_refused(db, tmp_path):
    out = tmp_path / "r.md"
    result = runner.invoke(app, ["report", "--db", str(db), "--out", str(out), "--md", "--n-boot", "20"])
    one_line_error(result, f"--out {out} with --md", ".html")
    assert not out.exists()


def test_report_md_beside_the_html_still_works(db, tmp_path):
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", "--db", str(db), "--out", str(out), "--md", "--n-boot", "20"])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("<!DOCTYPE html>") and out.with_suffix(".md").read_text().startswith("# ")


def test_report_out_a_folder_or_under_a_file_is_one_line(db, tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    result = runner.invoke(app, ["report", "--db", str(db), "--out", str(folder), "--n-boot", "20"])
    one_line_error(result, f"--out {folder}", "is a folder")
    assert _files(folder) == set()
    blocker = tmp_path / "notes.txt"
    blocker.write_text("keep me")
    result = runner.invoke(app, ["report", "--db", str(db), "--out", str(blocker / "r.html"), "--n-boot", "20"])
    one_line_error(result, str(blocker), "is a file, not a folder")
    assert blocker.read_text() == "keep me"


def test_report_write_failure_leaves_no_temporary_file(db, tmp_path):
    """A real write failure after the temporary file exists: a file-size limit just under the report's size (EFBIG;
    the figures drawn on the way are each smaller than the page that holds them all) stops the write."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    def report(limit: int | None) -> subprocess.CompletedProcess:
        """The same command line both times (the report's footer records it, so its size depends on it)."""
        cap = (f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); " if limit is not None else "")
        script = f"import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); {cap}from harness.cli import app; app()"
        command = [sys.executable, "-c", script, "report", "--db", str(db), "--out", str(out_dir / "r.html"),
                   "--n-boot", "20"]
        return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)

    assert report(None).returncode == 0
    limit = (out_dir / "r.html").stat().st_size - 1
    (out_dir / "r.html").unlink()
    result = report(limit)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--out" in lines[0] and "could not write the report" in lines[0], result.stderr
    assert _files(out_dir) == set()


# ---------------------------------------------------------------- B: one document for scripts

def test_json_with_several_tables_is_one_document(db):
    result = runner.invoke(app, ["rank", "--db", str(db), "--method", "all", "--missing", "coin", "--n-sims", "200",
                                 "--robustness", "-f", "json"])
    assert result.exit_code == 0, result.output
    tables = json.loads(result.stdout)["tables"]
    assert list(tables) == ["ranks", "kendall_tau", "robustness_iia", "robustness_rescaling", "robustness_order",
                            "robustness_perturbation", "robustness_csd_round_order"]
    assert all(set(t) == {"title", "notes", "rows"} for t in tables.values())
    assert {row["competitor"] for row in tables["ranks"]["rows"]} == {"A", "B", "C"}
    # A leads on the mean; its strongest benchmark (t1, 0.9) drops to the worst there (0.5): second on the mean
    perturbed = {row["method"]: row for row in tables["robustness_perturbation"]["rows"]}
    assert set(perturbed) == {row["method"] for row in tables["robustness_order"]["rows"]}
    assert {(row["competitor"], row["zeroed"]) for row in perturbed.values()} == {("A", "t1")}
    assert (perturbed["mean"]["rank_before"], perturbed["mean"]["rank_after"]) == (1, 2)
    assert all(row["drop"] == row["rank_after"] - row["rank_before"] for row in perturbed.values())
    orders = tables["robustness_csd_round_order"]["rows"]
    assert sorted(row["competitor"] for row in orders) == ["A", "B", "C"]
    for row in orders:
        assert row["E min"] <= row["E[given order]"] <= row["E max"]
        assert row["spread"] == pytest.approx(row["E max"] - row["E min"])


def test_json_with_one_table_keeps_its_shape(db):
    result = runner.invoke(app, ["rank", "--db", str(db), "--method", "mean", "-f", "json"])
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)) == {"title", "notes", "rows"}


@pytest.mark.parametrize("flags,culprit", [
    (["--method", "all"], "--method all"),
    (["--robustness"], "--robustness"),
    (["--method", "csd", "--eliminate", "0,1", "--missing", "coin"], "--eliminate 0,1"),
])
def test_csv_with_several_tables_is_refused(db, flags, culprit):
    result = runner.invoke(app, ["rank", "--db", str(db), *flags, "-f", "csv"])
    one_line_error(result, "--format csv", culprit, "--format json")
    assert result.stdout == ""


def test_csv_with_snr_filter_is_the_leaderboard_alone(tmp_path):
    rng = np.random.default_rng(1)
    clear = {m: (rng.random(300) < p).astype(float) for m, p in (("A", 0.9), ("B", 0.55), ("C", 0.2))}
    noisy = {m: (rng.random(300) < 0.5).astype(float) for m in "ABC"}
    path = tmp_path / "h.duckdb"
    store_items(path, {m: {"clear": clear[m], "noisy": noisy[m]} for m in "ABC"})
    result = runner.invoke(app, ["rank", "--db", str(path), "--snr-filter", "1", "--method", "mean", "-f", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["rank", "competitor", "mean", "mwr", "clear"] and len(rows) == 4
    assert {len(row) for row in rows} == {5}
    assert "dropped noisy" in result.stderr
    both = runner.invoke(app, ["rank", "--db", str(path), "--snr-filter", "1", "--method", "mean", "-f", "json"])
    assert list(json.loads(both.stdout)["tables"]) == ["snr_filter", "leaderboard"]


# ---------------------------------------------------------------- C: small refusals

def test_rank_unknown_models_are_refused_with_a_suggestion(db):
    result = runner.invoke(app, ["rank", "--db", str(db), "--models", "A,Bx", "--models", "Zed"])
    one_line_error(result, "--models", "'Bx' (did you mean 'B'?)", "'Zed'")
    assert result.stdout == ""
    chosen = runner.invoke(app, ["rank", "--db", str(db), "--models", "A,B", "-f", "json"])
    assert {row["competitor"] for row in json.loads(chosen.stdout)["rows"]} == {"A", "B"}


def test_rank_models_apply_to_a_csv_and_an_import(db, tmp_path):
    board = tmp_path / "board.csv"
    board.write_text("model,x,y\nalpha,1,2\nbeta,2,1\ngamma,3,3\n")
    picked = runner.invoke(app, ["rank", "--from", str(board), "--models", "alpha,gamma", "-f", "json"])
    assert {row["competitor"] for row in json.loads(picked.stdout)["rows"]} == {"alpha", "gamma"}
    one_line_error(runner.invoke(app, ["rank", "--from", str(board), "--models", "alpah"]),
                   "'alpah' (did you mean 'alpha'?)", f"--from {board}")
    assert runner.invoke(app, ["import", "csv", str(board), "--wide", "--name", "b", "--db", str(db)]).exit_code == 0
    one_line_error(runner.invoke(app, ["rank", "--db", str(db), "--source", "b", "--models", "delta"]),
                   "'delta'", "--source b")


@pytest.mark.parametrize("name", ["", "  "])
def test_import_blank_name_is_refused(db, tmp_path, name):
    board = tmp_path / "board.csv"
    board.write_text("model,x,y\nalpha,1,2\nbeta,2,1\n")
    before = digest(db)
    one_line_error(runner.invoke(app, ["import", "csv", str(board), "--wide", "--name", name, "--db", str(db)]),
                   f"--name {name!r}")
    assert digest(db) == before


def test_query_several_statements_are_refused(db):
    result = runner.invoke(app, ["query", "SELECT 1; SELECT 2", "--db", str(db)])
    one_line_error(result, "2 SQL statements")
    before = digest(db)
    written = runner.invoke(app, ["query", "DELETE FROM scores; SELECT 1", "--db", str(db), "--write"])
    one_line_error(written, "2 SQL statements")
    assert digest(db) == before
    assert runner.invoke(app, ["query", "SELECT 1;", "--db", str(db)]).exit_code == 0  # one statement, one ';'


def test_query_format(db):
    result = runner.invoke(app, ["query", "SELECT name FROM models ORDER BY name", "--db", str(db), "-f", "json"])
    assert result.exit_code == 0, result.output
    assert [row["name"] for row in json.loads(result.stdout)["rows"]] == ["A", "B", "C"]
    md = runner.invoke(app, ["query", "SELECT 1 AS one", "--db", str(db), "--format", "md"])
    assert "| one |" in md.stdout
    one_line_error(runner.invoke(app, ["query", "SELECT 1", "--db", str(db), "--csv", "-f", "md"]), "--csv")
    one_line_error(runner.invoke(app, ["query", "SELECT 1", "--db", str(db), "-f", "xml"]), "--format 'xml'")


@pytest.mark.parametrize("method", ["csd", "all"])
def test_csd_missing_strength_names_the_flag(db, method):
    result = runner.invoke(app, ["rank", "--db", str(db), "--method", method, "--n-sims", "100"])
    one_line_error(result, "--missing coin", "--missing loss")
    assert "missing=" not in result.stderr


@pytest.fixture()
def held(db):
    """Another process holding the store, as a second writer would."""
    code = f"import duckdb,time; c=duckdb.connect({str(db)!r}); print('ok', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ok"
        yield db
    finally:
        holder.kill()
        holder.wait()


def test_busy_timeout_reaches_every_verb_that_opens_the_store(held, tmp_path):
    from tests.test_hpo_cli import STUDY

    board = tmp_path / "board.csv"
    board.write_text("model,x\nalpha,1\nbeta,2\n")
    study = tmp_path / "tiny.toml"
    study.write_text(STUDY)
    verbs = [["rank"], ["report", "--out", str(tmp_path / "r.html")], ["query", "SELECT 1"], ["compare", "A", "B"],
             ["snr"], ["models", "list"], ["import", "csv", str(board), "--wide", "--name", "b"],
             ["hpo", "run", str(study)], ["hpo", "report", "--study", "tiny"], ["hpo", "subset", "--study", "tiny"],
             ["samples", "A", "t1"]]
    for verb in verbs:
        result = runner.invoke(app, [*verb, "--db", str(held), "--busy-timeout", "0.2"])
        one_line_error(result, "database is busy", "waited 0.2 s")
    for verb in (["import", "lm-eval"], ["import", "checkpoints"], ["variants", "make"]):
        assert "--busy-timeout" in runner.invoke(app, [*verb, "--help"], terminal_width=200).stdout


def test_import_says_which_columns_were_percentages(tmp_path):
    board = tmp_path / "board.csv"
    board.write_text("model,arc,mmlu\na,71.2%,0.5\nb,12%,0.25\n")
    result = runner.invoke(app, ["import", "csv", str(board), "--wide", "--name", "b", "--db", str(tmp_path / "h.db")],
                           terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "note: column 'arc' is written in percentages: stored as fractions" in result.stdout


@pytest.mark.parametrize("verb", [["rank", "--method", "csd", "--eliminate", "0,1", "--n-sims", "200"], ["snr"]])
def test_plots_are_never_written_over_a_store(db, tmp_path, verb):
    """rank --plot and snr --plot take report --out's checks: never the store, never any DuckDB file."""
    other = tmp_path / "other.png"  # a store under a picture's name
    fill_store(other)
    before = {path: digest(path) for path in (db, other)}
    for target, says in ((db, "is the store") if verb[0] == "rank" else (other, "DuckDB database"), (other, "DuckDB")):
        result = runner.invoke(app, [*verb, "--db", str(db), "--plot", str(target)])
        one_line_error(result, f"--plot {target}", says)
    assert {path: digest(path) for path in (db, other)} == before


def test_a_variant_named_after_its_parent_is_not_called_a_cycle(tmp_path, results_env):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text('[[variant]]\nname = "smollm2-135m"\nparent = "smollm2-135m"\nmethod = "magnitude"\n'
                      'sparsity = 0.3\n')
    result = runner.invoke(app, ["variants", "make", str(recipe), "--db", str(tmp_path / "h.duckdb")])
    one_line_error(result, "'smollm2-135m' names itself as its parent")
    assert not (tmp_path / "h.duckdb").exists()


def test_a_folder_whose_name_holds_a_comma_can_be_given(tmp_path):
    from harness.cli.options import split_list

    folder = tmp_path / "run-3,seed-1"
    folder.mkdir()
    assert split_list([str(folder)]) == [str(folder)]
    assert split_list(["a,b", str(folder)]) == ["a", "b", str(folder)]
    # a list longer than a file name may be (255 bytes) is a list, not an error (reproduce-pruning's 13 names)
    names = [f"smollm2-domain{p}-arith-add-2d" for p in range(10, 100, 10)]
    assert split_list([",".join(names)]) == names


# ---------------------------------------------------------------- C: tables that fit the width they are printed in

WIDE_MODELS = ["smollm2-135m", "smollm2-magnitude30", "smollm2-magnitude50", "smollm2-wanda30", "smollm2-wanda50",
               "smollm2-wanda-2of4", "smollm2-drop4", "smollm2-mlp80"]
WIDE_TASKS = ["arith_add_2d", "arith_mixed_3d", "compare_numbers", "compare_yes_no", "english_flores",
              "facts_capitals", "facts_elements", "seq_next", "words_antonyms", "words_forms"]


def wide_store(path) -> dict[tuple[str, str], float]:
    """make demo's shape: 8 models (7 variants of the first) on 10 tasks, with known scores."""
    from harness.store import ModelRecord, Store, TaskRecord

    rng = np.random.default_rng(0)
    cells = {}
    with Store.open(path) as store:
        for i, name in enumerate(WIDE_MODELS):
            store.register_model(ModelRecord(f"id-{i}", name, "base" if i == 0 else "variant", "test", f"fp{i}" * 16,
                                             10, parents=() if i == 0 else ("id-0",)))
        for task in WIDE_TASKS:
            store.register_task(TaskRecord(f"tid-{task}", task, "1", "builtin", f"h-{task}", "acc", True, 20, {}))
        for i, name in enumerate(WIDE_MODELS):
            for task in WIDE_TASKS:
                value = cells[name, task] = round(float(rng.integers(0, 21)) / 20, 4)
                run_id = f"{i}-{task}"
                store.start_run(run_id, f"id-{i}", f"tid-{task}", "hf", {}, None, {})
                samples = pa.table({"run_id": [run_id], "doc_id": pa.array([0], pa.int32()), "metric": ["acc"],
                                    "value": [value]})
                scores = pa.table({"run_id": [run_id], "metric": ["acc"], "value": [value], "stderr": [0.01],
                                   "n": pa.array([20], pa.int32())})
                store.finish_run(run_id, samples, scores, {"requests": 1, "cached": 0, "computed": 1})
    return cells


@pytest.fixture(scope="module")
def wide_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("wide") / "h.duckdb"
    return path, wide_store(path)


def _tables(text: str) -> list[list[list[str]]]:
    """Each box-drawn table in `text` as its rows of stripped cells (header row first)."""
    tables, current = [], None
    for line in text.splitlines():
        if line.lstrip().startswith("┏"):
            current = []
            tables.append(current)
        elif current is not None and line.lstrip()[:1] in ("┃", "│"):
            current.append([cell.strip() for cell in re.split("[┃│]", line.strip())[1:-1]])
        elif line.lstrip().startswith("└"):
            current = None
    return tables


def _cells_whole(text: str, cells: dict[tuple[str, str], float]) -> None:
    """Every model name, task name and score is printed whole in one cell, in the right row; nothing is cut."""
    assert "…" not in text
    seen = {}
    for table in _tables(text):
        header, *rows = table
        assert all(len(row) == len(header) for row in rows), table  # one line per row: no cell folded
        for row in rows:
            record = dict(zip(header, row))
            for task in WIDE_TASKS:
                if task in record:
                    seen[record["competitor"], task] = float(record[task])
    assert seen == cells


@pytest.mark.parametrize("width", [80, 200, 300])
def test_a_wide_leaderboard_fits_the_console_without_cutting_a_name(wide_db, width, monkeypatch):
    """make demo's final leaderboard (rank --variants, 10 per-task columns, 225 characters wide) in a rich Console of
    80, 200 and 300 columns: every line fits; where the table does not (80, 200), its columns are split over several
    tables that each repeat rank and competitor, and no name or score is cut or squeezed (at 80 it was 2-character
    cells)."""
    from harness.cli.commands._common import SafeConsole

    db, cells = wide_db
    stream = io.StringIO()
    monkeypatch.setattr("harness.cli.commands.rank.out", SafeConsole(width=width, file=stream))
    result = runner.invoke(app, ["rank", "--db", str(db), "--variants", "--models", ",".join(WIDE_MODELS)])
    assert result.exit_code == 0, result.output
    text = stream.getvalue()
    assert max(map(len, text.splitlines())) <= width
    _cells_whole(text, cells)
    tables = _tables(text)
    assert all(t[0][:2] == ["rank", "competitor"] for t in tables)
    assert "parent" in tables[0][0]  # the summary first, the per-task scores after it
    if width == 80:
        assert len(tables) > 2
    if width == 200:
        assert len(tables) == 2
    if width == 300:
        assert len(tables) == 1


def test_a_leaderboard_in_a_pipe_is_never_wrapped_at_80(wide_db):
    """Output to a file or pipe (no terminal, no COLUMNS): one table at its full width (rich assumed 80 columns)."""
    import os

    db, cells = wide_db
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    result = subprocess.run([sys.executable, "-m", "harness.cli", "rank", "--db", str(db), "--variants", "--models",
                             ",".join(WIDE_MODELS)], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert len(_tables(result.stdout)) == 1 and max(map(len, result.stdout.splitlines())) > 150
    _cells_whole(result.stdout, cells)


def test_columns_sets_the_width_of_redirected_output(wide_db):
    """COLUMNS=80 with output captured (CliRunner): the width is honoured, nothing is cut."""
    db, cells = wide_db
    result = runner.invoke(app, ["rank", "--db", str(db), "--variants", "--models", ",".join(WIDE_MODELS)],
                           env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert max(map(len, result.stdout.splitlines())) <= 80 and len(_tables(result.stdout)) > 1
    _cells_whole(result.stdout, cells)
