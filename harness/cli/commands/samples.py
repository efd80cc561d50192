"""`harness samples`: how a model answered each item of a task, read back from the store (prompts included)."""

from __future__ import annotations

import json
import math
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from harness.cli.commands._common import out, printable
from harness.cli.options import (
    BusyTimeoutOption, DbOption, ItemOption, SampleLimitOption, SamplesFormatOption, WrongOption,
)
from harness.common.errors import HarnessError
from harness.common.paths import default_db
from harness.common.spec_files import one_line

NO_TEXT = "prompt text not stored (run predates schema v3)"


def samples(
    model: Annotated[str, typer.Argument(help="A model as `harness rank` names it.")],
    task: Annotated[str, typer.Argument(help="A task the model finished.")],
    item: ItemOption = None,
    wrong: WrongOption = False,
    limit: SampleLimitOption = None,
    db: DbOption = default_db(),
    fmt: SamplesFormatOption = "table",
    busy_timeout: BusyTimeoutOption = 0.0,
) -> None:
    """How a model answered each item of a task: prompt, choices, chosen, gold, right or wrong.

    Per item of the run `leaderboard` picks (the one covering most items): the prompt, each choice's continuation
    and log-likelihood (or the generation), the chosen choice (lm-eval's acc: the first argmax), the gold one,
    and whether it was right. Read from the store alone; no model is loaded.
    """
    from harness.store import Store

    if fmt not in ("table", "json"):
        raise HarnessError(f"--format '{fmt}': choose table or json")
    with Store.open(db, read_only=True, busy_timeout=busy_timeout) as store:
        run = store.sample_run(model, task)
        requests = store.sample_requests(run["run_id"])
        metrics = store.sample_metrics(run["run_id"])
        verdict = _verdict_metric(store, run, metrics)
        values = store.sample_values(run["run_id"], [m for m in (verdict, "gold_index", "logprob_gold")
                                                    if m in metrics])
    items = _items(requests, values, verdict)
    if item is not None:
        if item not in {i["item"] for i in items}:
            shown = f"{items[0]['item']}–{items[-1]['item']}" if items else "none"
            raise HarnessError(f"--item {item}: not an item of this run (items {shown})")
        items = [i for i in items if i["item"] == item]
    if wrong:
        if verdict is None:
            raise HarnessError(f"--wrong: task {task!r} has no right or wrong answer per item (metric {run['metric']})")
        items = [i for i in items if i["correct"] is False]
    if limit is not None:
        items = items[:limit]
    texts_stored = bool(requests["texts_stored"].any())
    notes = [] if texts_stored else [NO_TEXT]
    if "gold_index" not in metrics and any(i["chosen"] is not None for i in items):
        notes.append("gold found by the stored gold log-likelihood (the run predates the stored gold index)")
    header = {"model": model, "task": task, "run_id": run["run_id"], "correct_by": verdict,
              "texts_stored": texts_stored, "notes": notes}
    if fmt == "json":
        out.print_json(json.dumps(header | {"items": items}), ensure_ascii=True)
    else:
        _print(header, items)


def _verdict_metric(store, run: dict, metrics: list[str]) -> str | None:
    """What says right or wrong per item: lm-eval's acc where stored, else the primary metric if it is 0/1."""
    if "acc" in metrics:
        return "acc"
    if run["metric"] in metrics:
        values = store.sample_values(run["run_id"], [run["metric"]])[run["metric"]].dropna()
        if len(values) and values.isin([0.0, 1.0]).all():
            return run["metric"]
    return None


def _number(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _items(requests, values, verdict: str | None) -> list[dict]:
    """One record per item: the prompt, the choices (or generation, or scored document), chosen, gold, correct."""
    by_doc = {int(doc): group for doc, group in requests.groupby("doc_id")}
    per_item = {int(row["doc_id"]): row for row in values.to_dict(orient="records")}
    docs = sorted(per_item) if per_item else sorted(by_doc)
    items = []
    for doc in docs:
        rows = by_doc.get(doc)
        extra = per_item.get(doc, {})
        record: dict = {"item": doc, "prompt": None, "choices": [], "generation": None, "chosen": None,
                        "gold": None, "correct": None}
        if verdict is not None and _number(extra.get(verdict)) is not None:
            record["correct"] = _number(extra.get(verdict)) == 1.0
        if rows is not None:
            _fill(record, rows, extra)
        items.append(record)
    return items


def _fill(record: dict, rows, extra: dict) -> None:
    """The item's texts and answers from its request rows."""
    record["prompt"] = rows.iloc[0]["context"]
    choices = rows[rows["request_type"] != "generate_until"]
    record["choices"] = [{"choice": int(r["idx"]), "continuation": r["continuation"],
                          "loglikelihood": _number(r["logprob"])} for r in choices.to_dict(orient="records")]
    generated = rows[rows["request_type"] == "generate_until"]
    if len(generated):
        record["generation"] = generated.iloc[0]["generation"]
    if (rows["request_type"] == "loglikelihood").all() and len(rows) > 1:
        lls = [c["loglikelihood"] for c in record["choices"]]
        record["chosen"] = record["choices"][max(range(len(lls)), key=lambda i: (lls[i], -i))]["choice"]
        record["gold"] = _gold(record["choices"], extra)


def _gold(choices: list[dict], extra: dict) -> int | None:
    """The gold choice: its stored index, else (older runs) the one choice whose log-likelihood is the gold's."""
    index = _number(extra.get("gold_index"))
    if index is not None:
        return int(index)
    gold_ll = _number(extra.get("logprob_gold"))
    matches = [c["choice"] for c in choices if gold_ll is not None and c["loglikelihood"] == gold_ll]
    return matches[0] if len(matches) == 1 else None


def _print(header: dict, items: list[dict]) -> None:
    out.print(Text(one_line(f"{header['model']} · {header['task']} · run {header['run_id']} · "
                            f"{len(items)} item{'s' * (len(items) != 1)}"), style="bold"))
    for item in items:
        verdict = {True: "right", False: "wrong", None: ""}[item["correct"]]
        out.print(Text(f"\nitem {item['item']}" + (f" — {verdict}" if verdict else ""), style="bold"))
        if not header["texts_stored"]:
            out.print(Text(NO_TEXT, style="yellow"))
        elif item["prompt"] is not None:
            out.print(Text("prompt: " + printable(item["prompt"])))
        if item["choices"]:
            table = Table(show_edge=False, header_style="bold")
            for column in ("choice", "continuation", "log-likelihood", ""):
                table.add_column(column, justify="right" if column in ("choice", "log-likelihood") else "left")
            for choice in item["choices"]:
                marks = [m for m, key in (("chosen", "chosen"), ("gold", "gold")) if item[key] == choice["choice"]]
                text, ll = choice["continuation"], choice["loglikelihood"]
                table.add_row(str(choice["choice"]), Text(one_line(text if text is not None else "")),
                              "" if ll is None else f"{ll:.4f}", ", ".join(marks))
            out.print(table)
        if item["generation"] is not None:
            out.print(Text("generation: " + printable(item["generation"])))
    for note in header["notes"][0 if header["texts_stored"] else 1:]:
        out.print(Text(f"note: {one_line(note)}", style="dim"))
