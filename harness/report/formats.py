"""Output formats: a frame for people (rich table, Markdown) or programs (JSON, CSV), one document per command."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.common.errors import HarnessError
from harness.common.spec_files import one_line

FORMATS = ("table", "md", "json", "csv")


def check_format(fmt: str) -> None:
    """Refuse an unknown --format before any work is done."""
    if fmt not in FORMATS:
        raise HarnessError(f"--format '{fmt}': choose one of {', '.join(FORMATS)}")


def render(frame: pd.DataFrame, fmt: str, console: Console, title: str = "", notes: tuple[str, ...] = ()) -> None:
    if fmt == "json":
        # exact data for programs: every string escape is JSON's own, and ASCII-only output keeps C1 controls
        # and bidi overrides from reaching the terminal raw
        console.print_json(json.dumps(_json_table(frame, title, notes)), ensure_ascii=True)
    elif fmt == "csv":
        console.out(to_csv(frame), end="", highlight=False)
    elif fmt == "md":
        console.out(to_markdown(frame, title, notes), highlight=False)
    else:
        console.print(to_rich(frame, title))
        for note in notes:
            console.print(Text(f"note: {one_line(note)}", style="dim"))


def _json_table(frame: pd.DataFrame, title: str, notes: tuple[str, ...]) -> dict:
    records = [{k: _json_value(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]
    return {"title": title, "notes": list(notes), "rows": records}


class Tables:
    """Where a verb that may print several tables sends them. table and md print each as it comes; json holds
    them and close() prints one document, {"title", "notes", "rows"} for one table and {"tables": {name: ...}} for
    several, so a script always reads one valid JSON value; csv has no way to hold two tables in one stream, so
    the verb refuses such a combination up front (see refuse_csv)."""

    def __init__(self, fmt: str, console: Console) -> None:
        check_format(fmt)
        self.fmt, self.console, self._held = fmt, console, {}

    def add(self, name: str, frame: pd.DataFrame, title: str = "", notes: tuple[str, ...] = ()) -> None:
        if name in self._held or (self.fmt == "csv" and self._held):  # programming errors: refuse_csv comes first
            raise ValueError(f"table {name!r}: a second table with that name, or in one csv output")
        self._held[name] = _json_table(frame, title, notes) if self.fmt == "json" else None
        if self.fmt != "json":
            render(frame, self.fmt, self.console, title, notes)

    def close(self) -> None:
        """Print the held JSON; called only when the verb finished, so a failure never leaves half a document."""
        if self.fmt == "json" and self._held:
            document = next(iter(self._held.values())) if len(self._held) == 1 else {"tables": self._held}
            self.console.print_json(json.dumps(document), ensure_ascii=True)


def refuse_csv(fmt: str, flags: dict[str, str]) -> None:
    """-f csv where the flags given print several tables: one line naming those flags, and per flag what gives one
    table instead (`flags` maps each flag as typed to that alternative)."""
    if fmt == "csv" and flags:
        several = " with ".join(flags)
        raise HarnessError(f"--format csv holds one table, but {several} prints several: use --format json (one "
                           f"document, a table per name), or {', and '.join(flags.values())}")


def to_rich(frame: pd.DataFrame, title: str = "") -> Table:
    """Names are data: as Text they are never markup, and their control characters show escaped."""
    table = Table(title=Text(one_line(title)) if title else None, header_style="bold")
    for column in frame.columns:
        table.add_column(Text(one_line(str(column))), justify="right" if _is_numeric(frame[column]) else "left",
                         overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*(Text(one_line(_cell(v))) for v in row))
    return table


# A spreadsheet runs a text cell that starts with one of these as a formula (OWASP "CSV injection"); the full-width
# forms are read as the same by some.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_text(text: str) -> str:
    """One CSV text cell: a leading ' where a spreadsheet would see a formula, and control characters escaped."""
    return ("'" if text.startswith(_FORMULA_START) else "") + one_line(text)


def to_csv(frame: pd.DataFrame) -> str:
    """CSV whose text cells (and headers) are safe to open in a spreadsheet; numbers stay numbers, so -0.05 in a
    numeric column is written as it is. JSON is the format that keeps every name exactly."""
    safe = frame.copy()
    safe.columns = [csv_text(str(c)) for c in frame.columns]
    for i in range(safe.shape[1]):
        column = safe.iloc[:, i]
        if not _is_numeric(column):
            safe.isetitem(i, column.map(lambda v: csv_text(v) if isinstance(v, str) else v))
    return safe.to_csv(index=False)


# Markdown that data could turn live: table pipes, code spans, links and images (`[`, `]`, `](`, `!`), raw HTML.
_MARKDOWN_SPECIAL = re.compile(r"[\\|`\[\]!]|(?<=\])\(")


def escape_markdown(text: str) -> str:
    """Data as Markdown text: it stays inside its table cell and line, and no link, image, code span or HTML tag
    in it takes effect (a line break shows as \\n)."""
    escaped = _MARKDOWN_SPECIAL.sub(lambda m: "\\" + m.group(), one_line(text))
    return escaped.replace("<", "&lt;").replace(">", "&gt;")


def to_markdown(frame: pd.DataFrame, title: str = "", notes: tuple[str, ...] = ()) -> str:
    esc = escape_markdown
    lines = [f"## {esc(title)}", ""] if title else []
    lines.append("| " + " | ".join(esc(str(c)) for c in frame.columns) + " |")
    lines.append("|" + "|".join("---:" if _is_numeric(frame[c]) else "---" for c in frame.columns) + "|")
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(esc(_cell(v)) for v in row) + " |")
    lines.extend(f"\n_{esc(note)}_" for note in notes)
    return "\n".join(lines) + "\n"


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series)


def _cell(value) -> str:
    if isinstance(value, (float, np.floating)):
        return "–" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def _json_value(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    return value
