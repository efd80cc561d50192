"""A store file is untrusted input (stores are shared): a view or macro planted in one must not read local files
through any verb. Every verb opens stores with DuckDB's external access and extension loading off, and refuses in
one line a store whose views or macros are not the schema's; `harness query` names them and runs nothing outside
the store, with or without --write."""

from __future__ import annotations

import duckdb
import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.store import Store
from tests.test_cli import digest, fill_store, one_line_error

runner = CliRunner()
SECRET = "s3cr3t-7f41c0de"

# The schema's leaderboard rows plus one task per model named after the first line of a file.
_ROWS = """SELECT m.name AS model, t.name AS task, s.metric, s.value, s.stderr, s.n, t.higher_is_better, r.run_id,
                  r.item_limit
           FROM scores s JOIN runs r USING (run_id) JOIN models m USING (model_id) JOIN tasks t USING (task_id)"""
_LEAK = """SELECT m.name, {line}, s.metric, s.value, s.stderr, s.n, true, s.run_id, NULL
           FROM {source} f, scores s JOIN runs r USING (run_id) JOIN models m USING (model_id)
           WHERE r.task_id = 'tid-t1'"""
PLANTS = {
    "leaderboard reads a file": [
        f"CREATE OR REPLACE VIEW leaderboard AS {_ROWS} UNION ALL "
        + _LEAK.format(line="trim(f.content)", source="read_text('{secret}')")],
    "leaderboard reads a csv": [
        f"CREATE OR REPLACE VIEW leaderboard AS {_ROWS} UNION ALL "
        + _LEAK.format(line="f.line", source="read_csv('{secret}', header = false, columns = {{'line': 'VARCHAR'}})")],
    "models table swapped for a view": [
        "ALTER TABLE models RENAME TO models_kept",
        "CREATE VIEW models AS SELECT model_id, name || (SELECT trim(content) FROM read_text('{secret}')) AS name, "
        "kind, origin, fingerprint, n_params, parents, recipe, created_at FROM models_kept"],
    "macro replaces a built-in": [
        """CREATE MACRO "left"(s, n) AS (SELECT trim(content) FROM read_text('{secret}'))"""],
}
LABELS = {"leaderboard reads a file": "view 'leaderboard' (not the schema's definition)",
          "leaderboard reads a csv": "view 'leaderboard' (not the schema's definition)",
          "models table swapped for a view": "view 'models'",
          "macro replaces a built-in": "macro 'left'"}
VERBS = {"rank": ["rank"], "rank json": ["rank", "-f", "json"], "report": ["report", "--md", "--n-boot", "20"],
         "compare": ["compare", "A", "B"], "snr": ["snr"], "models list": ["models", "list"]}


@pytest.fixture()
def secret(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_text(SECRET + "\n")
    return path


def planted(tmp_path, secret, plant: str):
    """A filled store, then changed by hand the way a hostile sharer would (any DuckDB client can)."""
    db = tmp_path / "shared.duckdb"
    fill_store(db)
    with duckdb.connect(str(db)) as con:
        for statement in PLANTS[plant]:
            con.execute(statement.format(secret=secret))
    return db


def assert_no_leak(result, *files) -> None:
    for text in (result.stdout, result.stderr, *(f.read_text() for f in files if f.exists())):
        assert SECRET not in text


@pytest.mark.parametrize("plant", PLANTS)
@pytest.mark.parametrize("verb", VERBS)
def test_planted_sql_never_leaks_a_file(tmp_path, secret, plant, verb):
    db = planted(tmp_path, secret, plant)
    before = digest(db)
    out = tmp_path / "report.html"
    args = [*VERBS[verb], "--db", str(db)] + (["--out", str(out)] if verb == "report" else [])
    result = runner.invoke(app, args)
    assert_no_leak(result, out, out.with_suffix(".md"))
    one_line_error(result, str(db), "refused", LABELS[plant])
    assert not out.exists() and digest(db) == before


@pytest.mark.parametrize("write", [False, True])
@pytest.mark.parametrize("plant,sql", [("leaderboard reads a file", "SELECT * FROM leaderboard"),
                                       ("leaderboard reads a csv", "SELECT task FROM leaderboard"),
                                       ("models table swapped for a view", "SELECT name FROM models"),
                                       ("macro replaces a built-in", "SELECT left('abc', 1)")])
def test_query_names_planted_sql_and_reaches_no_file(tmp_path, secret, plant, sql, write):
    db = planted(tmp_path, secret, plant)
    result = runner.invoke(app, ["query", sql, "--db", str(db), *(["--write"] if write else [])])
    assert_no_leak(result)
    assert result.exit_code == 2
    warning, error = result.stderr.strip().splitlines()
    assert warning.startswith("warning: ") and LABELS[plant] in warning
    assert error.startswith("error: query failed") and "disabled by configuration" in error
    assert "reaches no file but the store" in error


def test_no_file_or_extension_even_if_a_view_is_let_through(tmp_path, secret):
    """The sandbox holds by itself: opened with the view check waived, the planted view still reads nothing."""
    db = planted(tmp_path, secret, "leaderboard reads a file")
    for read_only in (True, False):
        with Store.open(db, read_only=read_only, allow_foreign_sql=True) as store:
            settings = store.con.execute(
                "SELECT current_setting('enable_external_access'), current_setting('autoload_known_extensions'), "
                "current_setting('autoinstall_known_extensions')").fetchone()
            assert settings == (False, False, False)
            with pytest.raises(duckdb.Error, match="disabled by configuration"):
                store.leaderboard_rows()
            with pytest.raises(duckdb.Error, match="external access"):
                store.con.execute("SET enable_external_access = true")


def test_views_of_ones_own_are_refused_until_dropped(tmp_path):
    db = tmp_path / "h.duckdb"
    fill_store(db)
    for sql in ("CREATE VIEW best AS SELECT model, max(value) AS top FROM leaderboard GROUP BY ALL",
                "CREATE SCHEMA mine", "CREATE MACRO mine.twice(x) AS 2 * x"):
        made = runner.invoke(app, ["query", sql, "--db", str(db), "--write"])
        assert made.exit_code == 0, made.output
    refused = runner.invoke(app, ["rank", "--db", str(db)])
    one_line_error(refused, "refused", "view 'best'", "macro 'mine.twice'", "harness query")
    looked = runner.invoke(app, ["query", "SELECT top FROM best ORDER BY top", "--db", str(db), "--csv"])
    assert looked.exit_code == 0 and looked.stdout.splitlines() == ["top", "0.5", "1.0", "2.0"]
    assert "view 'best'" in looked.stderr
    for sql in ("DROP VIEW best", "DROP SCHEMA mine CASCADE"):
        dropped = runner.invoke(app, ["query", sql, "--db", str(db), "--write"])
        assert dropped.exit_code == 0, dropped.output
    ranked = runner.invoke(app, ["rank", "--db", str(db)])
    assert ranked.exit_code == 0 and not ranked.stderr, ranked.output


@pytest.mark.parametrize("damage, culprit", [
    ("DROP VIEW leaderboard", "the schema's view 'leaderboard' is missing"),
    ("DROP TABLE irt_abilities", "the schema's table 'irt_abilities' is missing"),
    ("UPDATE meta SET value = 'abc' WHERE key = 'schema_version'", "meta.schema_version is 'abc', not a version"),
    ("UPDATE meta SET value = '٤' WHERE key = 'schema_version'", "meta.schema_version is '٤', not a version"),
])
def test_a_store_damaged_by_hand_is_refused_in_one_line_and_query_still_opens_it(tmp_path, damage, culprit):
    """Issue 17: after `query --write` drops a view or garbles the schema version, verbs raised a DuckDB
    CatalogException or int()'s ValueError; now every verb says what is damaged, and `query` opens it for repair."""
    db = tmp_path / "h.duckdb"
    fill_store(db)
    damaged = runner.invoke(app, ["query", damage, "--db", str(db), "--write"])
    assert damaged.exit_code == 0, damaged.output
    board = tmp_path / "board.csv"
    board.write_text("model,b1\nx,0.1\ny,0.3\n")
    before = digest(db)
    for verb in (["rank"], ["models", "list"], ["report", "--out", str(tmp_path / "r.html")], ["snr"],
                 ["import", "csv", str(board), "--wide", "--name", "x"]):
        refused = runner.invoke(app, [*verb, "--db", str(db)])
        assert refused.exit_code == 2, (verb, refused.output)
        one_line_error(refused, f"--db {db}: damaged", culprit)
        assert digest(db) == before, verb
    looked = runner.invoke(app, ["query", "SELECT count(*) AS n FROM models", "--db", str(db), "--csv"])
    assert looked.exit_code == 0 and looked.stdout.splitlines() == ["n", "3"], looked.output


def test_writing_verbs_work_without_external_access(tmp_path):
    """Arrow ingest goes through a registered Python object, not a file: import and eval's writers need no file."""
    board = tmp_path / "board.csv"
    board.write_text("model,b1,b2\nx,0.1,0.2\ny,0.3,0.1\n")
    db = tmp_path / "h.duckdb"
    imported = runner.invoke(app, ["import", "csv", str(board), "--wide", "--name", "b", "--db", str(db)])
    assert imported.exit_code == 0, imported.output
    fill_store(db)
    with Store.open(db) as store:
        assert store.con.execute("SELECT current_setting('enable_external_access')").fetchone() == (False,)
        assert store.count("external_scores") == 4 and store.count("scores") == 8
