"""HTML building for `harness view`: every piece of text goes through `esc`, every link through `href`.

Names come from files and shared stores: `esc` makes each one inert text (HTML-escaped, and each control character
or bidi override shown as its escape, as the terminal outputs do), and `href` only ever builds a path on this server
with the name percent-encoded in its query string, so no name can become markup, a script or another URL.
"""

from __future__ import annotations

import math
from html import escape
from typing import Iterable, Mapping
from urllib.parse import urlencode

from harness.common.spec_files import one_line

PAGES = (("/", "Leaderboard"), ("/tasks", "Tasks"), ("/optimizers", "Optimizers"))


def esc(value) -> str:
    """Any value as inert HTML text."""
    return escape(one_line("" if value is None else str(value)), quote=True)


def cell(value) -> str:
    """`esc`, with a missing value (None, NaN, NaT) as an empty cell."""
    try:
        import pandas as pd

        if value is None or pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return esc(value)


def href(path: str, **params) -> str:
    """A link on this server: `path` (one of ours, never data) and query parameters (None and '' left out)."""
    assert path.startswith("/") and not path.startswith("//"), path
    query = urlencode({k: v for k, v in params.items() if v is not None and v != ""}, doseq=True)
    return esc(f"{path}?{query}" if query else path)


def link(text, path: str, **params) -> str:
    return f'<a href="{href(path, **params)}">{esc(text)}</a>'


def num(value, digits: int = 4) -> str:
    """A number for a table cell ('' for missing)."""
    if value is None:
        return ""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return esc(value)
    if math.isnan(value):
        return ""
    if value == int(value) and abs(value) < 1e15 and digits == 0:
        return f"{int(value)}"
    return f"{value:.{digits}f}"


def page(title: str, body: str, note: str = "") -> str:
    """A whole page: our stylesheet only, no script, no URL off this server."""
    nav = " · ".join(f'<a href="{path}">{name}</a>' for path, name in PAGES)
    banner = f'<p class="banner">{esc(note)}</p>' if note else ""
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)} · harness view</title><link rel=\"icon\" href=\"data:,\">"
            "<link rel=\"stylesheet\" href=\"/static/view.css\"></head><body>"
            f"<nav>{nav}</nav>{banner}<h1>{esc(title)}</h1>{body}</body></html>")


def table(headers: Iterable[str], rows: Iterable[Iterable[str]], caption: str = "", cls: str = "",
          ids: Mapping[str, str] | None = None) -> str:
    """A table from already-escaped cells; `headers` are escaped here unless they start with '<' (made by us)."""
    head = "".join(f"<th>{h if h.startswith('<') else esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    extra = "".join(f' {k}="{esc(v)}"' for k, v in (ids or {}).items())
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f'<table class="{esc(cls)}"{extra}>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def page_number(q: dict, total: int, per_page: int) -> tuple[int, int]:
    """(the page `q` asks for, kept within the pages there are (not a number: the first), the number of pages)."""
    pages = max(1, math.ceil(total / per_page))
    try:
        asked = int(q.get("page", 1))
    except (TypeError, ValueError):
        asked = 1
    return min(max(1, asked), pages), pages


def pager(path: str, page_no: int, pages: int, **params) -> str:
    """Previous / next links over LIMIT/OFFSET pages."""
    if pages <= 1:
        return ""
    parts = []
    if page_no > 1:
        parts.append(f'<a rel="prev" href="{href(path, **params, page=page_no - 1)}">← previous</a>')
    parts.append(f"page {page_no} of {pages}")
    if page_no < pages:
        parts.append(f'<a rel="next" href="{href(path, **params, page=page_no + 1)}">next →</a>')
    return f'<p class="pager">{" · ".join(parts)}</p>'


def interval_bar(low, high, value, lo: float, hi: float) -> str:
    """An interval [low, high] around `value` drawn on the scale [lo, hi] as a CSS bar (no script, no image)."""
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in (low, high, value)) or hi <= lo:
        return ""
    span = hi - lo
    left = 100 * (float(low) - lo) / span
    width = max(0.5, 100 * (float(high) - float(low)) / span)
    mark = 100 * (float(value) - lo) / span
    return (f'<span class="bar" title="{num(low)} – {num(high)}"><span class="ci" style="left:{left:.2f}%;'
            f'width:{width:.2f}%"></span><span class="pt" style="left:{mark:.2f}%"></span></span>')


def histogram(values, bins: int = 20) -> str:
    """The distribution of `values` as CSS columns, with the range below."""
    import numpy as np

    values = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if not len(values):
        return "<p>no values</p>"
    counts, edges = np.histogram(values, bins=bins)
    top = counts.max() or 1
    cols = "".join(f'<span class="col" style="height:{100 * c / top:.1f}%" title="{edges[i]:.3f}–{edges[i + 1]:.3f}: '
                   f'{c}"></span>' for i, c in enumerate(counts))
    return (f'<div class="hist">{cols}</div><p class="axis">{edges[0]:.3f} … {edges[-1]:.3f} '
            f"({len(values)} values)</p>")


def form(path: str, fields: str, submit: str = "Apply") -> str:
    return f'<form method="get" action="{esc(path)}">{fields}<button type="submit">{esc(submit)}</button></form>'


def select(name: str, options: Iterable[tuple[str, str]], chosen: str, label: str) -> str:
    opts = "".join(f'<option value="{esc(v)}"{" selected" if v == chosen else ""}>{esc(t)}</option>'
                   for v, t in options)
    return f'<label>{esc(label)} <select name="{esc(name)}">{opts}</select></label> '


def text_input(name: str, value: str, label: str) -> str:
    return f'<label>{esc(label)} <input type="text" name="{esc(name)}" value="{esc(value)}"></label> '


def notes(lines: Iterable[str]) -> str:
    items = "".join(f"<li>{esc(line)}</li>" for line in lines)
    return f'<ul class="notes">{items}</ul>' if items else ""
