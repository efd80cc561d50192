"""Names are data from files and shared stores: whatever they hold, no output format lets them act. No control
character reaches the terminal (tables, Markdown, CSV, errors, progress), no name breaks out of a Markdown table or
turns into a live link or image, and no CSV cell starts a spreadsheet formula; JSON keeps every name exactly."""

from __future__ import annotations

import csv
import io
import json
import re

import duckdb
import pyarrow as pa
import pytest
from rich.console import Console
from typer.testing import CliRunner

from harness.cli import app
from harness.cli.commands._common import SafeConsole
from harness.common.display import Display
from harness.report.formats import escape_markdown
from harness.store import Store
from tests.test_cli import fill_store, one_line_error

runner = CliRunner()

ESC_RED, OSC_TITLE = "\x1b[31mred", "\x1b]0;pwned\x07title"
FORMULAS = ['=HYPERLINK("http://evil.example/x","click")', "+1+2", "-3+4", "@SUM(A1)", "\tTAB", "\rCR"]
MARKDOWN = ["a|b", "line\nbreak", "![img](http://evil.example/t.png)", "[click](javascript:alert(1))", "`tick`",
            "<img src=x>"]
NAMES = [ESC_RED, OSC_TITLE, "\u202eevil\x9b31m", *FORMULAS, *MARKDOWN, "plain"]
BENCHMARKS = ["=cmd|' /C calc'!A0", "\x1b[2Jwipe", "b|2"]
# Raw bytes that would act on a terminal: C0 controls but newline, DEL, C1 controls, bidi overrides.
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


@pytest.fixture()
def board_db(tmp_path):
    """An import whose competitor and benchmark names are hostile; benchmark 2 has negative scores."""
    db = tmp_path / "h.duckdb"
    rows = [(name, bench, (i + 1) * (-0.5 if j == 1 else 0.1) + 0.01 * j)
            for i, name in enumerate(NAMES) for j, bench in enumerate(BENCHMARKS)]
    with Store.open(db) as store:
        store.replace_external("board", pa.table({"competitor": [r[0] for r in rows],
                                                  "benchmark": [r[1] for r in rows],
                                                  "value": [r[2] for r in rows]}))
    return db


def rank(db, fmt: str, *extra: str):
    result = runner.invoke(app, ["rank", "--source", "board", "--db", str(db), "--method", "mean", "-f", fmt, *extra])
    assert result.exit_code == 0, result.output
    return result


def assert_inert(text: str) -> None:
    found = RAW.search(text)
    assert found is None, f"raw {found.group()!r} in output near {text[max(0, found.start() - 40):found.end() + 40]!r}"


@pytest.mark.parametrize("fmt", ["table", "md", "csv", "json"])
def test_no_control_character_reaches_the_terminal(board_db, fmt):
    result = rank(board_db, fmt)
    assert_inert(result.stdout)
    assert_inert(result.stderr)
    if fmt == "csv":  # shown escaped, so a person still sees what the name holds
        assert "\\x1b[31mred" in result.stdout and "\\x1b]0;pwned\\x07title" in result.stdout
    elif fmt == "md":  # the same, with Markdown's own escapes on top
        assert "\\\\x1b\\[31mred" in result.stdout and "\\\\x1b\\]0;pwned\\\\x07title" in result.stdout
    elif fmt == "table":  # folded into a narrow column, but escaped all the same
        assert "\\x1b" in result.stdout and "\\x07" in result.stdout


def test_json_keeps_every_name_exactly(board_db):
    rows = json.loads(rank(board_db, "json").stdout)["rows"]
    assert {row["competitor"] for row in rows} == set(NAMES)
    assert set(BENCHMARKS) <= set(rows[0])


def markdown_table(text: str) -> list[list[str]]:
    """Cells of each table line (a separator pipe is never preceded by a backslash)."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    return [re.split(r"(?<!\\)\|", line)[1:-1] for line in lines]


def assert_markdown_is_inert(text: str, n_rows: int) -> None:
    table = markdown_table(text)
    assert len(table) == n_rows + 2 and len({len(cells) for cells in table}) == 1, text
    assert "](" not in text and "<img" not in text
    for live in ("![img](http", "[click](javascript", "`tick`"):
        assert live not in text
    assert "\\!\\[img\\]\\(http://evil.example/t.png)" in text and "line\\\\nbreak" in text


def test_markdown_names_stay_text_inside_their_cells(board_db):
    text = rank(board_db, "md").stdout
    assert_markdown_is_inert(text, len(NAMES))
    assert_inert(text)


def test_markdown_report_tables_and_footer_stay_inert(tmp_path):
    db = tmp_path / "h.duckdb"
    fill_store(db)
    with duckdb.connect(str(db)) as con:  # hostile model names and a hostile command in the runs' provenance
        for old, new in zip("ABC", ("![img](http://evil.example/t.png)", "a|b\nc", "\x1b]0;pwned\x07")):
            con.execute("UPDATE models SET name = ? WHERE name = ?", [new, old])
        con.execute("UPDATE runs SET environment = ?",
                    [json.dumps({"command": "harness eval `` ![x](http://evil.example/c.png) ``"})])
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", "--db", str(db), "--out", str(out), "--md", "--n-boot", "20"])
    assert result.exit_code == 0, result.output
    text = out.with_suffix(".md").read_text()
    assert_inert(text)
    assert "![img](" not in text and "\\!\\[img\\]\\(http://evil.example/t.png)" in text
    assert "a\\|b\\\\nc" in text
    footer = [line for line in text.splitlines() if line.startswith("- **command**")]
    assert footer == ["- **command**: ``` harness eval `` ![x](http://evil.example/c.png) `` ```"]


def test_escape_markdown_by_hand():
    assert escape_markdown("[x](javascript:alert(1))") == "\\[x\\]\\(javascript:alert(1))"
    assert escape_markdown("![i](u) a|b `c` <d> \\") == "\\!\\[i\\]\\(u) a\\|b \\`c\\` &lt;d&gt; \\\\"
    assert escape_markdown("two\nlines\r") == "two\\\\nlines\\\\r"
    assert escape_markdown("size (M)") == "size (M)"  # parentheses stay as they are unless they follow a ]


def test_csv_cells_never_start_a_formula(board_db):
    for result in (rank(board_db, "csv"),
                   runner.invoke(app, ["query", "SELECT competitor, benchmark, value FROM external_scores",
                                       "--db", str(board_db), "--csv"])):
        assert result.exit_code == 0, result.output
        assert_inert(result.stdout)
        rows = list(csv.reader(io.StringIO(result.stdout)))
        text_cells = [cell for row in rows for cell in row if not re.fullmatch(r"-?[\d.]+(e-?\d+)?", cell)]
        assert text_cells and not [cell for cell in text_cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
        assert "'" + FORMULAS[0] in text_cells and "'+1+2" in text_cells and "'-3+4" in text_cells
        assert "'@SUM(A1)" in text_cells and "'\\tTAB" in text_cells and "'\\rCR" in text_cells  # shown escaped
        numbers = [cell for row in rows[1:] for cell in row if re.fullmatch(r"-[\d.]+", cell)]
        assert numbers  # negative scores are written as numbers, not text
    header = list(csv.reader(io.StringIO(rank(board_db, "csv").stdout)))[0]
    assert "'=cmd|' /C calc'!A0" in header


def test_error_messages_escape_names(board_db):
    result = runner.invoke(app, ["compare", ESC_RED, OSC_TITLE, "--db", str(board_db)])
    one_line_error(result, "\\x1b[31mred")
    assert_inert(result.stderr)
    with duckdb.connect(str(board_db)) as con:  # the known imports are listed in the error: one is hostile
        con.execute("UPDATE external_scores SET source = ?", ["\x1b]0;pwned\x07"])
    missing = runner.invoke(app, ["rank", "--source", "nope", "--db", str(board_db)])
    one_line_error(missing, "no such import", "\\x1b]0;pwned\\x07")
    assert_inert(missing.stderr)


def test_progress_labels_are_escaped(capsys):
    job = Display("plain").job(f"{ESC_RED} · {OSC_TITLE}")
    job.add_total(1)
    job.advance(1)
    job.failed()
    err = capsys.readouterr().err
    assert_inert(err)
    assert err.count("\n") == 2 and "\\x1b[31mred" in err
    display = Display("rich", console=Console(file=io.StringIO(), force_terminal=False))
    with display.session():
        display.job(f"[bold]{ESC_RED}")
        assert_inert(display._progress.tasks[0].description)


def test_consoles_escape_whatever_a_verb_prints():
    buffer = io.StringIO()
    console = SafeConsole(file=buffer, force_terminal=False, width=200)
    console.print(f"study '{OSC_TITLE}' done\nnext line")
    console.out(f"{ESC_RED}\t|")
    printed = buffer.getvalue()
    assert_inert(printed)
    assert printed.splitlines() == ["study '\\x1b]0;pwned\\x07title' done", "next line", "\\x1b[31mred\\t|"]
