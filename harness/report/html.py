"""One self-contained HTML page (inline CSS, PNGs as data URIs, no script) and its Markdown twin.

Every name that reaches the page came from a file or a user, so all text goes through `escape`;
nothing here builds markup from data without it.
"""

from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass, field
from html import escape

import numpy as np
import pandas as pd

from harness.report.formats import escape_markdown as esc, to_markdown
from harness.common.spec_files import one_line

_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 1320px; margin: 2em auto; padding: 0 1em; color: #222; }
p, figure, h1, h2 { max-width: 1100px; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
p.what { color: #555; margin-top: 0; }
div.table { max-width: 100%; overflow-x: auto; margin: 0.8em 0; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; } div.table > table { margin: 0; }
th, td { border: 1px solid #ddd; padding: 3px 6px; } th { background: #f4f4f4; text-align: left; }
th { vertical-align: bottom; }
div.table td { white-space: nowrap; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 0.8em 0; } img { max-width: 100%; height: auto; display: block; }
figcaption { color: #555; font-size: 0.9em; }
footer { margin-top: 3em; font-size: 0.85em; color: #555; border-top: 1px solid #ddd; }
code { background: #f4f4f4; padding: 0 3px; }
"""


@dataclass
class Section:
    """A titled part of the report: one sentence on what it shows, tables and PNG figures.

    Table and figure captions are shown on the page, so a caption can explain its own item.
    """

    key: str
    title: str
    what: str
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    figures: list[tuple[str, bytes]] = field(default_factory=list)


def render_html(title: str, sections: list[Section], footer: list[tuple[str, str]]) -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>", f"<h1>{escape(title)}</h1>"]
    for section in sections:
        parts.append(f'<section id="{escape(section.key)}"><h2>{escape(section.title)}</h2>')
        parts.append(f'<p class="what">{escape(section.what)}</p>')
        for caption, frame in section.tables:
            parts.append(_table_html(caption, frame))
        for caption, png in section.figures:
            data = base64.b64encode(png).decode("ascii")
            parts.append(f'<figure><img alt="{escape(caption)}" src="data:image/png;base64,{data}">'
                         f"<figcaption>{escape(caption)}</figcaption></figure>")
        parts.append("</section>")
    parts.append('<footer><h2>Reproducibility</h2><table>')
    parts.extend(f"<tr><th>{escape(k)}</th><td><code>{escape(v)}</code></td></tr>" for k, v in footer)
    parts.append("</table></footer></body></html>")
    return "\n".join(parts)


def render_markdown(title: str, sections: list[Section], footer: list[tuple[str, str]]) -> str:
    lines = [f"# {esc(title)}", ""]
    for section in sections:
        lines += [f"## {esc(section.title)}", "", esc(section.what), ""]
        for caption, frame in section.tables:
            lines.append(to_markdown(frame, caption))
        lines += [f"_Figure (in the HTML report): {esc(caption)}_\n" for caption, _ in section.figures]
    lines += ["## Reproducibility", ""] + [f"- **{esc(k)}**: {_code_span(v)}" for k, v in footer]
    return "\n".join(lines) + "\n"


def _code_span(text: str) -> str:
    """`text` as one Markdown code span: its fence is longer than any run of backticks inside, so a stored command
    cannot close it early and go on as live Markdown (a link, an image)."""
    text = one_line(text)
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}"


def _header(name: str) -> str:
    """A column name that may wrap after each underscore (arith_<wbr>mixed_<wbr>3d), so ten per-task columns fit
    the page; the name itself is whole, and copies as it is (<wbr> adds no character)."""
    return "_<wbr>".join(escape(part) for part in str(name).split("_"))


def _table_html(caption: str, frame: pd.DataFrame) -> str:
    """A table in a box of the page's width: its column names wrap where they may (see _header), and a table still
    too wide (many tasks, long names) scrolls inside its box rather than running off the page."""
    head = "".join(f"<th>{_header(c)}</th>" for c in frame.columns)
    rows = []
    for row in frame.itertuples(index=False):
        cells = []
        for value in row:
            numeric = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
            cells.append(f'<td class="num">{_format(value)}</td>' if numeric else f"<td>{escape(str(value))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="table"><table><caption>{escape(caption)}</caption><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _format(value) -> str:
    if isinstance(value, (float, np.floating)):
        return "–" if math.isnan(value) else f"{value:.4g}"
    return str(value)
