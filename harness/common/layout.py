"""Tables laid out for the width they are printed in (issue 17: an 80-column terminal squeezed a 16-column leaderboard
into 2-character cells, and rich's default ellipsis cut model names to `smollm2…`).

The rule: a cell is never cut and never squeezed. A table wider than the console is split by columns into several
tables that each fit, every part repeating the key columns that say which row is which (rank and competitor, model
and task); a table may also name where its columns change kind (the per-task scores after the summary), so a split
puts those in a table of their own. Only where the key and one more column alone are wider than the console are
cells folded onto several lines (whole, never cut). Not a terminal (a pipe, a log file) and no COLUMNS set: there is
no width to fit, and nothing is wrapped at 80 (see `unbounded`).
"""

from __future__ import annotations

import copy
import dataclasses
import os

from rich.console import Console
from rich.table import Table
from rich.text import Text

# The width given to a console that prints to no terminal: wide enough that no table or line is wrapped.
UNBOUNDED = 10_000


def unbounded(console: Console) -> bool:
    """True where output goes to no terminal and nobody set a width (Console(width=...) or COLUMNS), e.g. a pipe or
    a log file: rich would otherwise assume 80 columns and wrap or squeeze every wide table there."""
    columns = os.environ.get("COLUMNS", "")
    return console._width is None and not columns.isdigit() and not console.is_terminal and not console.is_jupyter


def mark(table: Table, key: int | None = None, breaks: tuple[int, ...] = ()) -> Table:
    """Say how `table` splits when it is too wide: its first `key` columns name a row and are repeated in every
    part; a part starts at each column index in `breaks` (e.g. where the per-task columns begin)."""
    table.harness_key = key
    table.harness_breaks = tuple(breaks)
    return table


def _width(console: Console, table: Table) -> int:
    return console.measure(table, options=console.options.update_width(UNBOUNDED)).maximum


def _part(table: Table, columns: list[int], title=None, caption=None) -> Table:
    part = copy.copy(table)
    part.columns = [dataclasses.replace(table.columns[i], _index=n) for n, i in enumerate(columns)]
    part.title, part.caption = title, caption
    return part


def _whole(table: Table) -> Table:
    """Cells that never end in an ellipsis: a column rich may narrow folds its text onto more lines instead."""
    whole = copy.copy(table)
    whole.columns = [dataclasses.replace(c, overflow="fold", no_wrap=False) if c.overflow in ("ellipsis", "crop")
                     else c for c in table.columns]
    return whole


def _keys(table: Table) -> range:
    """How many leading columns may name a row: as marked, else from the columns up to the first left-aligned one
    (a name) to every left-aligned column that follows it (a model and its task)."""
    n = len(table.columns)
    marked = getattr(table, "harness_key", None)
    if marked is not None:
        key = max(0, min(marked, n - 1))
        return range(key, key + 1)
    text = [c.justify in ("left", "default", "full") for c in table.columns]
    first = text.index(True) + 1 if True in text else 1
    last = first
    while last < n - 1 and text[last]:
        last += 1
    return range(min(first, n - 1), last + 1)


def _pack(console: Console, table: Table, key: list[int], width: int) -> list[list[int]]:
    """The other columns in order, in as few parts beside the key as fit the width (a part starts at a break)."""
    breaks = set(getattr(table, "harness_breaks", ()))
    parts: list[list[int]] = []
    current: list[int] = []
    for i in range(len(key), len(table.columns)):
        if current and (i in breaks or _width(console, _part(table, key + current + [i])) > width):
            parts.append(current)
            current = []
        current.append(i)
    return parts + [current]


def split(console: Console, table: Table) -> list[Table]:
    """`table` as one or more tables, each as wide as the console allows (see the module's rule): the key columns
    repeated in each, the others in order."""
    table = _whole(table)
    width = console.width
    if not table.columns or _width(console, table) <= width:
        return [table]
    # the key that needs the fewest parts; of those, the longest (every part says more about its rows)
    layouts = [(list(range(k)), _pack(console, table, list(range(k)), width)) for k in _keys(table)]
    key, parts = min(layouts, key=lambda layout: (len(layout[1]), -len(layout[0])))
    shown = []
    for n, columns in enumerate(parts):
        title = table.title
        if n and title is not None:
            title = Text.assemble(title if isinstance(title, Text) else Text(str(title)), f" ({n + 1}/{len(parts)})")
        part = _part(table, key + columns, title, table.caption if n == len(parts) - 1 else None)
        if title is not None:  # as wide as its title where the console allows, so the title stays on one line
            part.min_width = min(width, max(part.min_width or 0, Text(str(title)).cell_len))
        shown.append(part)
    return shown
