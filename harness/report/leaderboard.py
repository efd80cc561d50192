"""Render a leaderboard frame for people (rich table, Markdown) or programs (JSON, CSV)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.errors import HarnessError

FORMATS = ("table", "md", "json", "csv")


def check_format(fmt: str) -> None:
    """Refuse an unknown --format before any work is done."""
    if fmt not in FORMATS:
        raise HarnessError(f"--format '{fmt}': choose one of {', '.join(FORMATS)}")


def render(frame: pd.DataFrame, fmt: str, console: Console, title: str = "", notes: tuple[str, ...] = ()) -> None:
    if fmt == "json":
        records = [{k: _json_value(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]
        console.print_json(json.dumps({"title": title, "notes": list(notes), "rows": records}))
    elif fmt == "csv":
        console.out(frame.to_csv(index=False), end="", highlight=False)
    elif fmt == "md":
        console.out(to_markdown(frame, title, notes), highlight=False)
    else:
        console.print(to_rich(frame, title))
        for note in notes:
            console.print(Text(f"note: {note}", style="dim"))


def to_rich(frame: pd.DataFrame, title: str = "") -> Table:
    table = Table(title=title or None, header_style="bold")
    for column in frame.columns:
        table.add_column(str(column), justify="right" if _is_numeric(frame[column]) else "left", overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*(Text(_cell(v)) for v in row))  # names are data, never markup
    return table


def escape_markdown(text: str) -> str:
    """Data as Markdown text: table pipes and HTML tags cannot take effect."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


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
