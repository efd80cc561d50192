"""From the store to a ScoreTable: the one seam between evaluation and ranking."""

from __future__ import annotations

import pandas as pd

from harness.common.errors import HarnessError
from harness.store import Store
from tournaments import ScoreTable


def stored_table(store: Store, models: list[str] | None = None, items: bool = False,
                 tasks: list[str] | None = None, level: str = "group") -> ScoreTable:
    """Evaluated models x tasks on each task's primary metric; with `items`, one replicate per item. `tasks` picks
    tasks and lm-eval groups: at level 'group' a group is one benchmark scored as lm-eval aggregates it, at 'leaf'
    its leaf tasks are."""
    rows = store.item_rows(models) if items else store.leaderboard_rows(models)
    if tasks:
        rows = select_tasks(rows, store.group_members(), tasks, level, items)
    if rows.empty:
        which = f" for models {', '.join(models)}" if models else ""
        raise HarnessError(f"--db {store.path}: no finished runs{which}; run `harness eval` first")
    return ScoreTable.from_long(rows, competitor="model", benchmark="task", value="value",
                                replicate="doc_id" if items else None, higher_is_better=_directions(rows))


def select_tasks(rows: pd.DataFrame, edges: pd.DataFrame, names: list[str], level: str, items: bool) -> pd.DataFrame:
    """The rows of the named tasks; a group becomes its leaves (level 'leaf') or one aggregated benchmark."""
    import json

    from harness.tasks.groups import leaves_of

    if level not in ("group", "leaf"):
        raise HarnessError(f"--level '{level}': choose group or leaf")
    members = {g: list(part["member"]) for g, part in edges.groupby("group_name")}
    # A group's rule is the same on each of its edges; its first metric's rule is the one ranked.
    first_rules = edges.groupby("group_name")["rule"].first()
    rules = {g: rule[0] for g, text in first_rules.items() if (rule := json.loads(text))}
    known = set(rows["task"])
    picked = []
    for name in names:
        if name in known:
            picked.append(rows[rows["task"] == name])
            continue
        if name not in members:
            raise HarnessError(f"--tasks: '{name}' is neither an evaluated task nor a stored task group")
        leaves = leaves_of(name, members)
        part = rows[rows["task"].isin(leaves)]
        if level == "leaf":
            picked.append(part)
        elif items:
            if not rules.get(name, {}).get("weight_by_size"):
                raise HarnessError(f"--tasks {name}: per-item resampling pools a group's items, which is its score "
                                   "only with weight_by_size; use --level leaf")
            picked.append(part.assign(task=name))
        else:
            picked.append(_group_rows(name, part, leaves, members, rules))
    return pd.concat(picked, ignore_index=True) if picked else rows.iloc[:0]


def _group_rows(name, part, leaves, members, rules) -> pd.DataFrame:
    """One row per model that has every leaf of the group (a score over some leaves would be another number)."""
    from harness.tasks.groups import group_score

    out = []
    for model, mine in part.groupby("model"):
        scores = {t: (float(v), int(n)) for t, v, n in zip(mine["task"], mine["value"], mine["n"])}
        if set(leaves) <= set(scores):
            value, size = group_score(name, members, rules, scores)
            out.append({"model": model, "task": name, "value": value, "stderr": float("nan"), "n": size,
                        "higher_is_better": bool(mine["higher_is_better"].iloc[0])})
    return pd.DataFrame(out, columns=["model", "task", "value", "stderr", "n", "higher_is_better"])


def imported_table(store: Store, source: str) -> tuple[ScoreTable, pd.Series | None]:
    """An imported leaderboard, plus its own published aggregate when the import carried one.

    A per-checkpoint import is ranked where each run ended (its last checkpoint), not by its
    average over training.
    """
    from harness.tables.checkpoints import final_checkpoints, is_checkpoint_source

    if is_checkpoint_source(store, source):
        return final_checkpoints(store, source), None
    rows = store.external_rows(source)
    aggregate = rows[rows["is_aggregate"].astype(bool)]
    scores = rows[~rows["is_aggregate"].astype(bool)]
    has_replicates = (scores["replicate"] != "").any()
    table = ScoreTable.from_long(scores, competitor="competitor", benchmark="benchmark", value="value",
                                 replicate="replicate" if has_replicates else None,
                                 higher_is_better=_directions(scores, "benchmark"))
    published = aggregate.groupby("competitor")["value"].mean() if len(aggregate) else None
    return table, published


def _directions(rows: pd.DataFrame, column: str = "task") -> dict[str, bool]:
    return dict(zip(rows[column], rows["higher_is_better"].astype(bool)))
