"""The model page: per-task scores with intervals, the variant tree around the model, its runs."""

from __future__ import annotations

import difflib
import math

from harness.common.errors import HarnessError
from harness.view.html import cell, esc, href, interval_bar, link, notes, num, page, pager, table

RUNS_PER_PAGE = 25
Z95 = 1.959963984540054


class NotFound(HarnessError):
    """A page asked for a model, task or study the store does not hold (answered 404)."""


def unknown(kind: str, name: str, known) -> NotFound:
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return NotFound(f"{kind} {name!r}: not in this store{hint}")


def model_page(store, snap, q: dict) -> str:
    name = q.get("name", "")
    record = store.model_record(name)
    if record is None:
        raise unknown("model", name, snap.kinds(store).index)
    facts = [("kind", record["kind"] + (f" (imported, namespace {record['namespace']})" if record["namespace"] else "")),
             ("origin", record["origin"]), ("fingerprint", record["fingerprint"]),
             ("parameters", f"{int(record['n_params']):,}" if _present(record["n_params"]) else ""),
             ("recipe", record["recipe"] or ""), ("registered", record["created_at"])]
    body = table(["", ""], [[esc(k), f"<code>{cell(v)}</code>"] for k, v in facts], cls="facts")
    body += "<h2>Scores</h2>" + _scores(store, snap, name)
    body += "<h2>Parents and variants</h2>" + _family(store, snap, record)
    body += "<h2>Runs</h2>" + _runs(store, record, q)
    body += (f'<p>Compare with another model: <a href="{href("/diff", a=name)}">diff</a> (pick the other on the '
             "leaderboard)</p>")
    return page(f"Model {name}", body)


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _scores(store, snap, name: str) -> str:
    """Each task's score as the leaderboard compares it, with its 95% interval (score ± 1.96 standard errors)."""
    try:
        chosen = snap.comparable(store)
        rows = chosen.rows[chosen.rows["model"] == name]
        said = notes(line for line in chosen.note_lines() if any(f"task {t}:" in line for t in rows["task"]))
    except HarnessError as exc:  # the store cannot be ranked as a whole: show the model's own runs, and say so
        rows = store.leaderboard_rows([name]).drop_duplicates("task")
        said = notes([f"the stored models cannot all be compared ({exc}); these are this model's own runs"])
    if rows.empty:
        return "<p>no finished runs</p>"
    lows = rows["value"] - Z95 * rows["stderr"].fillna(0)
    highs = rows["value"] + Z95 * rows["stderr"].fillna(0)
    lo, hi = min(0.0, float(lows.min())), max(1.0, float(highs.max()))
    out = []
    for rec, low, high in zip(rows.itertuples(index=False), lows, highs):
        out.append([link(rec.task, "/task", name=rec.task), num(rec.value), num(rec.stderr),
                    interval_bar(low, high, rec.value, lo, hi) + f'<span class="ci-text">{num(low, 3)}–{num(high, 3)}</span>',
                    esc(int(rec.n) if _present(rec.n) else ""), "higher" if rec.higher_is_better else "lower",
                    link("samples", "/samples", model=name, task=rec.task)])
    return said + table(["task", "score", "stderr", "95% interval", "items", "better", ""], out, cls="scores",
                        ids={"id": "scores"})


def _family(store, snap, record: dict) -> str:
    """Ancestors above, descendants below as a nested list; each variant with its method, sparsity and the change of
    its MWR score against the model it was made from (as `harness rank --variants` shows it)."""
    family = store.model_family(record["model_id"])
    if family.empty:
        return "<p>no parents or variants stored</p>"
    try:
        board = snap.board(store, "mwr")
        score = dict(zip(board.frame["competitor"], board.frame["score"]))
    except HarnessError:
        score = {}

    def label(rec, parent: str | None) -> str:
        parts = [link(rec["label"], "/model", name=rec["label"]), esc(rec["kind"])]
        if rec["method"]:
            parts.append(f"method {esc(rec['method'])}")
        if _present(rec["sparsity"]):
            parts.append(f"sparsity {rec['sparsity']:.1%}")
        if parent is not None and rec["label"] in score and parent in score:
            parts.append(f'<span class="delta">Δ mwr {score[rec["label"]] - score[parent]:+.4f}</span>')
        if parent is not None:
            parts.append(f'<a class="diff" href="{href("/diff", a=rec["label"], b=parent)}">diff against {esc(parent)}</a>')
        return " · ".join(parts)

    ancestors = family[family["depth"] < 0].sort_values("depth")
    up = "".join(f"<li>{label(rec, None)} (generation {-int(rec['depth'])} up)</li>"
                 for rec in ancestors.to_dict("records"))
    children: dict[str, list[dict]] = {}
    for rec in family[family["depth"] > 0].to_dict("records"):
        children.setdefault(rec["via"], []).append(rec)

    def tree(parent: str, seen: set) -> str:
        kids = [rec for rec in children.get(parent, []) if rec["label"] not in seen]
        if not kids:
            return ""
        return "<ul>" + "".join(f"<li>{label(rec, parent)}{tree(rec['label'], seen | {rec['label']})}</li>"
                                for rec in kids) + "</ul>"

    me = f'<li><strong>{esc(record["label"])}</strong>{tree(record["label"], {record["label"]})}</li>'
    parents = f'<p>made from:</p><ul class="tree">{up}</ul>' if up else ""
    return parents + f'<ul class="tree" id="family">{me}</ul>'


def _runs(store, record: dict, q: dict) -> str:
    try:
        page_no = max(1, int(q.get("page", 1)))
    except ValueError:
        page_no = 1
    frame, total = store.model_runs(record["model_id"], RUNS_PER_PAGE, (page_no - 1) * RUNS_PER_PAGE)
    if not total:
        return "<p>no runs</p>"
    columns = ["task", "task_version", "status", "backend", "device", "dtype", "item_limit", "settings", "started_at",
               "seconds", "n_requests", "n_cached", "n_computed", "error"]
    rows = [[link(r["task"], "/task", name=r["task"])] + [cell(r[c]) if c != "seconds" else num(r[c], 2)
                                                        for c in columns[1:]] for r in frame.to_dict("records")]
    pages = max(1, math.ceil(total / RUNS_PER_PAGE))
    return (f"<p>{total} runs</p>" + table(columns, rows, cls="runs")
            + pager("/model", page_no, pages, name=record["label"]))
