"""The samples page (one model's items on one task, as `harness samples` reads them) and the diff page (two models
on the same items, with `harness compare`'s paired test)."""

from __future__ import annotations


import pandas as pd

from harness.common.errors import HarnessError
from harness.view.html import esc, form, link, notes, num, page, page_number, pager, select, table, text_input
from harness.view.model import NotFound, unknown

ITEMS_PER_PAGE = 20
N_BOOT = 2_000
"""Paired-bootstrap resamples on the diff page (`harness compare` defaults to 10,000); the page says so."""


def _run(store, snap, model: str, task: str) -> dict:
    """The run the leaderboard compared for (model, task); where the store cannot be compared as a whole, the run
    `harness samples` reads (the leaderboard view's, covering the most items)."""
    found = snap.run_of(store, model, task)
    if found is not None:
        return {"run_id": found[0], "metric": snap.primary_metric(store, task), "n": found[1]}
    try:
        return store.sample_run(model, task)
    except HarnessError as exc:
        raise NotFound(str(exc)) from None


def _verdict(store, run: dict):
    """(the metric that says right or wrong per item, the run's per-item values of it and of the gold answer), as
    `harness samples` reads them."""
    from harness.cli.commands.samples import _verdict_metric

    metrics = store.sample_metrics(run["run_id"])
    verdict = _verdict_metric(store, run, metrics)
    return verdict, store.sample_values(run["run_id"], [m for m in (verdict, "gold_index", "logprob_gold")
                                                        if m in metrics])


def _page_of(docs: list[int], q: dict) -> tuple[list[int], int, int]:
    """The documents on the page `q` asks for (a bad or out-of-range page number shows the nearest), its number and
    the number of pages."""
    page_no, pages = page_number(q, len(docs), ITEMS_PER_PAGE)
    return docs[(page_no - 1) * ITEMS_PER_PAGE: page_no * ITEMS_PER_PAGE], page_no, pages


def _answers(store, run: dict, docs: list[int], verdict, values) -> list[dict]:
    """The items `docs` as `harness samples` builds them (prompt, choices, chosen, gold, right), reading only their
    own requests."""
    from harness.cli.commands.samples import _items

    if not docs:
        return []
    return _items(store.sample_requests(run["run_id"], list(docs)), values[values["doc_id"].isin(docs)], verdict)


def samples_page(store, snap, q: dict) -> str:
    model, task = q.get("model", ""), q.get("task", "")
    run = _run(store, snap, model, task)
    wrong, item = q.get("wrong") == "1", q.get("item", "")
    verdict, values = _verdict(store, run)
    docs = values["doc_id"].astype(int).tolist() if len(values) else \
        sorted(set(store.sample_requests(run["run_id"])["doc_id"].astype(int)))
    problems = []
    if wrong:
        if verdict is None:
            problems.append(f"task {task} has no right or wrong answer per item (metric {run['metric']}); "
                            "showing every item")
        else:
            docs = values.loc[values[verdict] == 0.0, "doc_id"].astype(int).tolist()
    if item != "":
        try:
            docs = [d for d in docs if d == int(item)]
        except ValueError:
            docs = []
    docs = sorted(docs)
    shown, page_no, pages = _page_of(docs, q)
    items = _answers(store, run, shown, verdict, values)
    controls = form("/samples", f'<input type="hidden" name="model" value="{esc(model)}">'
                    f'<input type="hidden" name="task" value="{esc(task)}">'
                    + select("wrong", [("", "every item"), ("1", "wrong answers only")], "1" if wrong else "", "show")
                    + text_input("item", item, "item"))
    head = (f'<p>{link(model, "/model", name=model)} on {link(task, "/task", name=task)} · run <code>'
            f'{esc(run["run_id"])}</code> · right or wrong by {esc(verdict or "nothing (no 0/1 metric)")} · '
            f'<span id="n-items">{len(docs)}</span> item{"s" * (len(docs) != 1)}{" answered wrong" if wrong and verdict else ""}</p>')
    body = controls + head + notes(problems) + "".join(_item(i) for i in items)
    body += pager("/samples", page_no, pages, model=model, task=task, wrong="1" if wrong else "", item=item)
    return page(f"Samples: {model} on {task}", body)


def _item(record: dict) -> str:
    verdict = {True: "right", False: "wrong", None: ""}[record["correct"]]
    parts = [f'<section class="item {verdict}" id="item-{int(record["item"])}"><h3>item {int(record["item"])}'
             f'{" — " + verdict if verdict else ""}</h3>']
    if record["prompt"] is not None:
        parts.append(f'<pre class="prompt">{esc_block(record["prompt"])}</pre>')
    if record["choices"]:
        rows = []
        for choice in record["choices"]:
            marks = [m for m in ("chosen", "gold") if record[m] == choice["choice"]]
            rows.append([str(choice["choice"]), f'<span class="cont">{esc(choice["continuation"])}</span>',
                         num(choice["loglikelihood"]), esc(", ".join(marks))])
        parts.append(table(["choice", "continuation", "log-likelihood", ""], rows, cls="choices"))
    if record["generation"] is not None:
        parts.append(f'<p>generation:</p><pre class="generation">{esc_block(record["generation"])}</pre>')
    return "".join(parts) + "</section>"


def esc_block(text: str) -> str:
    """Multi-line text (a prompt): each line escaped as `esc` does, line breaks kept."""
    return "\n".join(esc(line) for line in str(text).split("\n"))


def diff_page(store, snap, q: dict) -> str:
    from harness.cli.commands.compare import _better
    from harness.tables.scores import comparable
    from tournaments.stats import bootstrap_floor_note, compare_on_tasks

    a, b = q.get("a", ""), q.get("b", "")
    known = snap.kinds(store).index
    controls = form("/diff", text_input("a", a, "model A") + text_input("b", b, "model B"), "Compare")
    if not a or not b:
        return page("Diff", controls + "<p>name two models</p>")
    for name in (a, b):
        if name not in known:
            raise unknown("model", name, known)
    chosen = snap._memo(("pair", a, b), lambda: comparable(store, [a, b]))  # as `harness compare A B` chooses
    items = chosen.items
    wide = items.pivot_table(index=["task", "doc_id"], columns="model", values="value").reset_index()
    if a not in wide.columns or b not in wide.columns:
        return page("Diff", controls + "<p>the two models share no evaluated items</p>")
    shared = wide.dropna(subset=[a, b])
    pairs = {task: (g[a].to_numpy(), g[b].to_numpy()) for task, g in shared.groupby("task")}
    frame = snap._memo(("compare", a, b), lambda: compare_on_tasks(pairs, n_boot=N_BOOT, seed=0))
    lower = set(items.loc[~items["higher_is_better"].astype(bool), "task"])
    rows = []
    for row in frame.itertuples():
        disagree = int((shared.loc[shared["task"] == row.task, a] != shared.loc[shared["task"] == row.task, b]).sum())
        rows.append([link(row.task, "/diff", a=a, b=b, task=row.task), esc(row.test), str(row.n_items),
                     num(row.mean_a), num(row.mean_b), num(row.diff), f"{num(row.ci_low)} – {num(row.ci_high)}",
                     num(row.p_value), num(row.p_holm), esc(_better(row, a, b, row.task in lower)), str(disagree)])
    said = [*chosen.note_lines(), "p_holm: Holm-corrected across tasks; significant at 0.05",
            f"as `harness compare`: McNemar's exact test for 0/1 metrics, else a paired bootstrap ({N_BOOT:,} "
            "resamples here; the CLI's default is 10,000)"]
    floor = bootstrap_floor_note(frame, N_BOOT)
    if floor:
        said.append(floor)
    body = controls + f"<p>A = {link(a, '/model', name=a)}, B = {link(b, '/model', name=b)}; diff = A − B</p>"
    body += notes(said) + table(["task", "test", "items", "mean A", "mean B", "diff", "95% CI", "p", "p_holm",
                                 "better", "differ"], rows, cls="compare", ids={"id": "compare"})
    task = q.get("task") or (frame["task"].iloc[0] if len(frame) else "")
    if task in pairs:
        body += f"<h2>Items of {esc(task)} where they differ</h2>" + _disagreements(store, snap, a, b, task,
                                                                                     shared, q)
    return page(f"Diff: {a} vs {b}", body)


def _disagreements(store, snap, a: str, b: str, task: str, shared: pd.DataFrame, q: dict) -> str:
    mine = shared[shared["task"] == task]
    differ = mine[mine[a] != mine[b]]
    binary = bool(mine[[a, b]].isin([0.0, 1.0]).all().all())
    if binary:  # right against wrong: in item order
        docs = sorted(differ["doc_id"].astype(int))
    else:  # a continuous metric (bits per byte, ...): the largest gaps first
        gap = (differ[a] - differ[b]).abs()
        docs = differ.assign(gap=gap).sort_values(["gap", "doc_id"], ascending=[False, True])["doc_id"].astype(int).tolist()
    if not docs:
        return "<p>they agree on every shared item</p>"
    shown, page_no, pages = _page_of(docs, q)
    answers = {}
    for model in (a, b):
        try:
            run = _run(store, snap, model, task)
            answers[model] = {i["item"]: i for i in _answers(store, run, shown, *_verdict(store, run))}
        except HarnessError:
            answers[model] = {}
    values = mine.set_index("doc_id")
    rows = []
    for doc in shown:
        ia, ib = answers[a].get(doc), answers[b].get(doc)
        gold = _choice_text(ia or ib, "gold")
        rows.append([str(doc), esc(_prompt(ia or ib)), num(values.at[doc, a], 3), esc(_choice_text(ia, "chosen")),
                     num(values.at[doc, b], 3), esc(_choice_text(ib, "chosen")), esc(gold),
                     link("A", "/samples", model=a, task=task, item=doc) + " "
                     + link("B", "/samples", model=b, task=task, item=doc)])
    order = "in item order" if binary else "largest difference first"
    return (f'<p><span id="n-disagree">{len(docs)}</span> items, {order}</p>'
            + table(["item", "prompt", "A", "A answered", "B", "B answered", "gold", "samples"], rows, cls="disagree",
                    ids={"id": "disagree"})
            + pager("/diff", page_no, pages, a=a, b=b, task=task))


def _prompt(item: dict | None, width: int = 120) -> str:
    """The item's prompt, or for a scored document (perplexity tasks) the document, cut to `width`."""
    item = item or {}
    text = item.get("prompt") or next((c["continuation"] for c in item.get("choices", []) if c["continuation"]), "")
    return text if len(text) <= width else text[:width] + "…"


def _choice_text(item: dict | None, key: str) -> str:
    """The continuation of the item's chosen (or gold) choice, or its generation."""
    if not item:
        return ""
    if item.get("generation") is not None and key == "chosen":
        return item["generation"]
    index = item.get(key)
    for choice in item.get("choices", []):
        if choice["choice"] == index:
            return choice["continuation"] or ""
    return ""
