"""The task pages: every task; one task's SNR, score distribution, item difficulty and the items that separate the
top models. SNR is `harness snr`'s (item_inputs + snr_table on the comparable items); nothing is re-derived here."""

from __future__ import annotations

import math

import numpy as np

from harness.common.errors import HarnessError
from harness.view.html import cell, esc, histogram, href, link, notes, num, page, pager, table
from harness.view.model import unknown

ITEMS_PER_PAGE = 50
TOP_MODELS = 10
SEPARATING = 10


def tasks_page(store, snap, q: dict) -> str:
    frame = store.task_names()
    try:
        compared = snap.comparable(store).rows.groupby("task").size()
        said = ""
    except HarnessError as exc:
        compared, said = {}, f'<p class="refused">not compared: {esc(exc)}</p>'
    rows = [[link(r["name"], "/task", name=r["name"]), cell(r["versions"]), cell(r["origin"]), cell(r["metric"]),
             cell(compared.get(r["name"], 0))] for r in frame.to_dict("records")]
    groups = store.group_members()
    body = said + table(["task", "versions", "origin", "primary metric", "models compared"], rows, cls="tasks",
                        ids={"id": "tasks"})
    if len(groups):
        edges = [[esc(g), esc(m)] for g, m in zip(groups["group_name"], groups["member"])]
        body += "<h2>Task groups</h2>" + table(["group", "member"], edges, cls="groups")
    return page("Tasks", body)


def task_page(store, snap, q: dict) -> str:
    name = q.get("name", "")
    versions = store.task_versions(name)
    if versions.empty:
        raise unknown("task", name, store.task_names()["name"])
    body = table(["task_id", "version", "origin", "config", "primary metric", "higher is better", "items",
                  "finished runs"], [[cell(v) for v in rec] for rec in versions.itertuples(index=False)],
                 caption="stored versions")
    try:
        chosen = snap.comparable(store)
    except HarnessError as exc:
        return page(f"Task {name}", body + f'<p class="refused">not compared: {esc(exc)}</p>')
    rows = chosen.rows[chosen.rows["task"] == name]
    if rows.empty:
        return page(f"Task {name}", body + "<p>no finished runs of this task are compared</p>")
    higher = bool(rows["higher_is_better"].iloc[0])
    body += notes([f"task {name}: {chosen.notes[name]}"] if name in chosen.notes else [])
    body += "<h2>Signal and noise</h2>" + _snr(store, snap, chosen, name)
    body += f"<h2>Scores across {len(rows)} models</h2>" + histogram(rows["value"].to_numpy())
    items = snap.items_by_task(store).get(name)
    if items is None or items.empty:
        return page(f"Task {name}", body + "<p>no per-item values stored for this task</p>")
    body += "<h2>Items that best separate the top models</h2>" + _separating(name, rows, items, higher)
    body += "<h2>Item difficulty</h2>" + _difficulty(name, items, higher, q)
    return page(f"Task {name}", body)


def _snr(store, snap, chosen, name: str) -> str:
    from harness.tables.snr import N_BOOT, item_inputs
    from tournaments.signal_noise import snr_table

    def compute():
        if chosen.items.empty or name not in set(snap.items_by_task(store)):
            raise HarnessError("no per-item values: SNR needs item-bootstrap noise")
        scores = snap.table(store)[0]  # score_table(chosen.rows), as `harness snr` builds it
        items = snap.items_by_task(store)[name].assign(task=name)
        final, noise, note = item_inputs(scores, items, name)
        return snr_table(final, noise, source="items", n_boot=N_BOOT).assign(note_shared=note)

    try:
        frame = snap._memo(("snr", name), compute)
    except HarnessError as exc:
        return f"<p>{esc(exc)}</p>"
    rec = frame.iloc[0]
    rows = [[esc(k), num(rec[k]) if k in ("signal", "noise", "snr") else cell(rec[k])] for k in frame.columns]
    return table(["", ""], rows, cls="facts", ids={"id": "snr"})


def _separating(name: str, rows, items, higher: bool) -> str:
    """Among the TOP_MODELS best models on this task, the items whose values vary most between them."""
    top = rows.sort_values("value", ascending=not higher, kind="stable").head(TOP_MODELS)["model"].tolist()
    mine = items[items["model"].isin(top)]
    wide = mine.pivot_table(index="doc_id", columns="model", values="value", aggfunc="first").reindex(columns=top)
    spread = wide.var(axis=1, ddof=0).sort_values(ascending=False, kind="stable")
    picked = [doc for doc in spread.index[:SEPARATING] if spread[doc] > 0]
    if not picked:
        return f"<p>the top {len(top)} models agree on every item</p>"
    headers = ["item", "spread"] + [f'<a href="{href("/model", name=m)}">{esc(m)}</a>' for m in top]
    out = []
    for doc in picked:
        cells = [str(int(doc)), num(spread[doc], 3)]
        for model in top:
            value = wide.at[doc, model]
            cells.append("" if np.isnan(value) else
                         f'<a href="{href("/samples", model=model, task=name, item=int(doc))}">{num(value, 2)}</a>')
        out.append(cells)
    return table(headers, out, cls="separating", ids={"id": "separating"})


def _difficulty(name: str, items, higher: bool, q: dict) -> str:
    """Per item: the mean value across models (for 0/1 metrics the share that got it right), hardest first."""
    per_item = items.groupby("doc_id")["value"].agg(["mean", "count"])
    per_item = per_item.sort_values("mean", ascending=higher, kind="stable")
    total = len(per_item)
    pages = max(1, math.ceil(total / ITEMS_PER_PAGE))
    try:
        page_no = min(max(1, int(q.get("page", 1))), pages)
    except ValueError:
        page_no = 1
    shown = per_item.iloc[(page_no - 1) * ITEMS_PER_PAGE: page_no * ITEMS_PER_PAGE]
    binary = bool(items["value"].isin([0.0, 1.0]).all())
    label = "share of models right" if binary else "mean value across models"
    out = [[str(int(doc)), num(rec["mean"], 3), str(int(rec["count"])),
            f'<span class="bar"><span class="ci" style="left:0;width:{100 * float(rec["mean"]) if binary else 0:.1f}%">'
            "</span></span>" if binary else ""] for doc, rec in shown.iterrows()]
    return (f"<p>{total} items, hardest first</p>"
            + table(["item", label, "models", ""], out, cls="difficulty", ids={"id": "difficulty"})
            + pager("/task", page_no, pages, name=name))
