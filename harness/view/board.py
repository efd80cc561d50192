"""The leaderboard page: every model under any ranking method, sorted, filtered and paged on the server."""

from __future__ import annotations

from urllib.parse import quote_plus

import numpy as np

from harness.common.errors import HarnessError
from harness.view.html import (
    esc, form, href, interval_bar, notes, num, page, page_number, pager, select, table, text_input,
)
from harness.view.snapshot import CSD_SIMS, RANK_BOOT

PAGE_SIZE = 50
KINDS = (("", "any kind"), ("base", "base"), ("variant", "variant"), ("imported", "imported"))


def parse_tasks(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


def leaderboard(store, snap, q: dict) -> str:
    from tournaments.methods import METHODS

    method = q.get("method", "mwr")
    source, level = q.get("source", ""), q.get("level", "group")
    tasks_text, kind, name = q.get("tasks", ""), q.get("kind", ""), q.get("q", "")
    tasks = parse_tasks(tasks_text)
    sources = store.imported_sources()
    controls = form("/", "".join([
        select("source", [("", "evaluated models"), *((s, f"import: {s}") for s in sources)], source, "data"),
        select("method", [(m, m) for m in METHODS], method, "method"),
        text_input("tasks", tasks_text, "tasks or groups"),
        select("level", [("group", "group"), ("leaf", "leaf")], level, "level"),
        select("kind", KINDS, kind, "kind"),
        text_input("q", name, "name contains"),
        select("ri", [("", "score intervals only"), ("1", f"also rank intervals ({RANK_BOOT} bootstraps)")],
               q.get("ri", ""), "intervals"),
    ]))
    try:
        if source and tasks:
            raise HarnessError("tasks: picks evaluated tasks; it does not apply to an import")
        board = snap.board(store, method, source, tasks, level)
    except HarnessError as exc:
        return page("Leaderboard", controls + f'<p class="refused" id="refused">not ranked: {esc(exc)}</p>')
    frame = board.frame.copy()
    intervals, resampled = None, ""
    if q.get("ri") == "1":
        try:
            intervals, resampled = snap.rank_intervals(store, method, source, tasks, level)
        except HarnessError as exc:
            resampled = f"no rank intervals: {exc}"
    if source:
        frame["kind"] = "imported"
    else:
        kinds = snap.kinds(store)["shown_kind"]
        frame["kind"] = frame["competitor"].map(kinds).fillna("")
    if kind:
        frame = frame[frame["kind"] == kind]
    if name:
        frame = frame[frame["competitor"].str.contains(name, case=False, regex=False)]
    sort, order = q.get("sort", "rank"), q.get("order", "")
    frame = _sorted(frame, board, sort, order)
    total = len(frame)
    page_no, pages = page_number(q, total, PAGE_SIZE)
    shown = frame.iloc[(page_no - 1) * PAGE_SIZE: page_no * PAGE_SIZE]
    state = {"source": source, "method": method, "tasks": tasks_text, "level": level if tasks else "",
             "kind": kind, "q": name, "ri": "1" if intervals is not None else ""}
    has_ci = "ci_low" in frame.columns
    lo = float(np.nanmin(board.frame["ci_low"])) if has_ci else 0.0
    hi = float(np.nanmax(board.frame["ci_high"])) if has_ci else 0.0
    benchmarks = list(board.table.benchmarks)
    directions = dict(zip(benchmarks, board.table.higher_is_better))
    headers = [_sort_head("rank", "rank", sort, order, state, board),
               _sort_head("model", "model", sort, order, state, board), "kind",
               _sort_head(f"{method} score", "score", sort, order, state, board)]
    if has_ci:
        headers.append("95% interval")
    if intervals is not None:
        headers.append("rank interval")
    for task in benchmarks:
        arrow = "↑" if directions[task] else "↓"
        task_link = "" if source else f' <a class="task" title="task page" href="{href("/task", name=task)}">→</a>'
        headers.append(_sort_head(f"{task} {arrow}", f"task:{task}", sort, order, state, board) + task_link)
    rows = []
    quoted = {task: quote_plus(task) for task in benchmarks}  # one encoding per column, not one per cell
    for rec in shown.itertuples(index=False):
        model = rec.competitor
        model_q = quote_plus(model)
        cells = [str(int(rec.rank)), f'<span class="model">{esc(model)}</span>' if source else
                 f'<a class="model" href="{href("/model", name=model)}">{esc(model)}</a>', esc(rec.kind),
                 f'<span class="score">{num(rec.score)}</span>']
        if has_ci:
            cells.append(f"{interval_bar(rec.ci_low, rec.ci_high, rec.score, lo, hi)}"
                         f'<span class="ci-text">{num(rec.ci_low, 3)}–{num(rec.ci_high, 3)}</span>')
        if intervals is not None:
            low, high = (int(v) for v in intervals.loc[model, ["rank_low", "rank_high"]])
            cells.append(f"{interval_bar(low, high, rec.rank, 0.5, len(board.frame) + 0.5)}"
                         f'<span class="rank-ci">{low}–{high}</span>')
        for task, value in zip(benchmarks, board.values.loc[model].to_numpy()):
            text = num(value)
            if text and not source:  # quote_plus leaves no character that HTML would read
                text = f'<a class="cell" href="/samples?model={model_q}&amp;task={quoted[task]}">{text}</a>'
            cells.append(text)
        rows.append(cells)
    params = ", ".join(f"{k}={v}" for k, v in board.ranking.params.items() if k != "rounds") or "defaults"
    about = [f"compared: {line}" for line in board.compared]
    about.append(f"method {method} ({params}); rank 1 is best; ranks are among all {len(board.frame)} ranked "
                 "competitors (kind and name filters only choose the rows shown)")
    if method == "csd":
        about.append(f"CSD here runs {CSD_SIMS:,} simulated tournaments (seed 0); `harness rank --method csd` runs "
                     "100,000 by default; the interval is the 95% interval of E[S_m]")
    about.extend(board.ranking.notes)
    if resampled:
        about.append(f"rank interval: 95% of ranks over {resampled} (as `harness report`); the bar spans ranks "
                     f"1–{len(board.frame)}" if intervals is not None else resampled)
    summary = (f'<p class="count" id="count">{total} of {len(board.frame)} competitors'
               f'{" match" if (kind or name) else ""}</p>')
    body = (controls + notes(about) + summary + table(headers, rows, cls="board", ids={"id": "board"})
            + pager("/", page_no, pages, **state, sort=sort, order=order))
    return page("Leaderboard", body)


def _first_order(sort: str, board) -> str:
    """The order a column sorts in until it is clicked again: best first (ranks and names ascending, scores
    descending, a task's values by its direction); an unknown column sorts by rank."""
    if sort.startswith("task:") and sort[5:] in board.values.columns:
        return "desc" if dict(zip(board.table.benchmarks, board.table.higher_is_better))[sort[5:]] else "asc"
    return "desc" if sort == "score" else "asc"


def _sorted(frame, board, sort: str, order: str):
    """Rows by rank (default), model name, score or one task's value; missing values last either way."""
    descending = (order or _first_order(sort, board)) == "desc"
    if sort.startswith("task:") and sort[5:] in board.values.columns:
        key = frame["competitor"].map(board.values[sort[5:]])
    elif sort == "model":
        key = frame["competitor"]
    elif sort == "score":
        key = frame["score"]
    else:
        key = frame["rank"]
    ordered = frame.assign(_key=key.values).sort_values(["_key", "competitor"], ascending=[not descending, True],
                                                        na_position="last", kind="stable")
    return ordered.drop(columns="_key")


def _sort_head(label: str, key: str, sort: str, order: str, state: dict, board) -> str:
    """A column header that sorts by `key` (best first); clicking the sorted column again reverses it."""
    if sort == key:
        current = order or _first_order(key, board)
        flip = "asc" if current == "desc" else "desc"
        mark = " ▾" if current == "desc" else " ▴"
    else:
        flip, mark = "", ""
    return f'<a class="sort" data-key="{esc(key)}" href="{href("/", **state, sort=key, order=flip)}">{esc(label)}{mark}</a>'
