"""From the store to a ScoreTable: the one seam between evaluation and ranking.

Models are compared only where their numbers mean the same thing: per task one task version (config hash) and one
run settings value, scored on the same items. What cannot be made comparable is refused in one line; --allow-mixed
takes each model's own score instead, and a note says where.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.common.errors import HarnessError
from harness.store import Store
from tournaments import ScoreTable

MIN_SHARED = 0.5
"""Items all models must share, as a share of the smallest run's items. A --limit run is a prefix of a full run, so
all of its items are shared; runs that share less than half of the smaller one's items (shards, another split or item
order) would be compared on a set that is mostly neither run's score. A share rather than a count, so a small
--limit run (5 items) still compares with its parent."""

CORPUS_METRICS = frozenset({"perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte", "bleu", "chrf",
                            "ter", "f1", "mcc", "matthews_corrcoef"})
"""Metrics lm-eval aggregates over the whole corpus (weighted perplexities, corpus BLEU, F1, MCC) unless a task's
metric_list says 'mean': the mean of their per-item values is another number."""

ROW_COLUMNS = ["model", "task", "value", "stderr", "n", "higher_is_better", "run_id"]
ITEM_COLUMNS = ["model", "task", "doc_id", "value", "higher_is_better"]


@dataclass(frozen=True)
class Comparable:
    """What the verbs compare: one row per (model, task) (ROW_COLUMNS), the per-item values behind them where the
    runs stored some (ITEM_COLUMNS), and per task a note on what was done to compare them."""

    rows: pd.DataFrame
    items: pd.DataFrame
    notes: dict[str, str]

    def note_lines(self) -> tuple[str, ...]:
        return tuple(f"task {task}: {note}" for task, note in sorted(self.notes.items()))


def comparable(store: Store, models: list[str] | None = None, tasks: list[str] | None = None,
               limit: int | None = None, allow_mixed: bool = False) -> Comparable:
    """Per task, one task version and run settings (those most models have), each model's run covering the most items
    in it (with `limit`: the runs made with --limit `limit`), scored on the items all of them have. `tasks` (tasks and
    lm-eval groups) narrows what must be comparable. `allow_mixed` keeps each model's own run and score."""
    rows = store.leaderboard_rows(models, limit)
    tasks = with_suites(tasks)
    if tasks:
        rows = rows[rows["task"].isin(wanted_tasks(tasks, store.group_members()))]
    check_definitions(rows)
    rows, notes = choose_runs(rows, allow_mixed)
    rows, items, item_notes = align_items(rows, store.item_rows(rows["run_id"]), allow_mixed)
    for task, note in item_notes.items():
        notes[task] = f"{notes[task]}; {note}" if task in notes else note
    return Comparable(rows, items, notes)


def stored_scores(store: Store, models: list[str] | None = None, items: bool = False,
                  tasks: list[str] | None = None, level: str = "group", limit: int | None = None,
                  allow_mixed: bool = False) -> tuple[ScoreTable, tuple[str, ...]]:
    """`stored_table`, with the notes on what was done to make the models comparable (for the verbs to print)."""
    chosen = comparable(store, models, tasks, limit, allow_mixed)
    rows = chosen.items if items else chosen.rows
    tasks = with_suites(tasks)
    if tasks:
        rows = select_tasks(rows, store.group_members(), tasks, level, items)
    if rows.empty:
        which = f" for models {', '.join(models)}" if models else ""
        made = f" made with --limit {limit}" if limit is not None else ""
        raise HarnessError(f"--db {store.path}: no finished runs{made}{which}; run `harness eval` first")
    return score_table(rows, items), chosen.note_lines()


def stored_table(store: Store, models: list[str] | None = None, items: bool = False,
                 tasks: list[str] | None = None, level: str = "group", limit: int | None = None,
                 allow_mixed: bool = False) -> ScoreTable:
    """Evaluated models x tasks on each task's primary metric; with `items`, one replicate per item. `tasks` picks
    tasks and lm-eval groups: at level 'group' a group is one benchmark scored as lm-eval aggregates it, at 'leaf'
    its leaf tasks are. Models are compared as `comparable` says."""
    return stored_scores(store, models, items, tasks, level, limit, allow_mixed)[0]


def score_table(rows: pd.DataFrame, items: bool = False) -> ScoreTable:
    """ROW_COLUMNS (or, with `items`, ITEM_COLUMNS) rows as a ScoreTable."""
    return ScoreTable.from_long(rows, competitor="model", benchmark="task", value="value",
                                replicate="doc_id" if items else None, higher_is_better=_directions(rows))


def with_suites(names: list[str] | None) -> list[str] | None:
    """Built-in suite names ('core') as their tasks, so --tasks takes here what `harness eval --tasks` takes."""
    if not names:
        return names
    from harness.tasks.registry import suites

    known = suites()
    return list(dict.fromkeys(task for name in names for task in known.get(name, [name])))


def wanted_tasks(names: list[str], edges: pd.DataFrame) -> set[str]:
    """The named tasks and every leaf of the named groups: what --tasks needs to be comparable."""
    from harness.tasks.groups import leaves_of

    members = {g: list(part["member"]) for g, part in edges.groupby("group_name")}
    return {leaf for name in names for leaf in [name, *leaves_of(name, members)]}


def check_definitions(rows: pd.DataFrame) -> None:
    """One direction and one primary metric per task name, from its stored task records (never from whichever row
    came last): two records that disagree (e.g. an import saying lower is better) are refused, naming both."""
    for task, part in rows.groupby("task", sort=True):
        for column, what in (("higher_is_better", "direction"), ("metric", "primary metric")):
            values = part.drop_duplicates(column)
            if len(values) > 1:
                first, second = (_definition(part, values.iloc[i], column) for i in (0, 1))
                raise HarnessError(f"task {task}: its stored task records disagree on {what}: {first} vs {second}; "
                                   "rank those models apart (--models)")


def _definition(part: pd.DataFrame, record: pd.Series, column: str) -> str:
    value = record[column]
    said = ("higher is better" if value else "lower is better") if column == "higher_is_better" else value
    models = sorted(part.loc[part[column] == value, "model"].unique())
    return f"{record['task_origin']} record {record['task_id']} ({said}; {_who(models)})"


def choose_runs(rows: pd.DataFrame, allow_mixed: bool) -> tuple[pd.DataFrame, dict[str, str]]:
    """One run per (model, task): within the task version and settings most models share, each model's run covering
    the most items (a full run first, then the most items, then the latest). Models outside that version are refused;
    with `allow_mixed` each model's own such run is taken, and a note says where versions or settings differ."""
    rows = rows.assign(_full=rows["item_limit"].isna()).sort_values(
        ["_full", "n", "finished_at"], ascending=False, kind="stable")
    picked, notes = [], {}
    for task, part in rows.groupby("task", sort=True):
        if allow_mixed:
            mine = part.drop_duplicates("model")
            if mine["config_hash"].nunique() > 1 or mine["settings"].nunique() > 1:
                notes[task] = "models ran other task versions or run settings; each model's own score (--allow-mixed)"
        else:
            mine = _one_version(task, part)
        picked.append(mine)
    chosen = pd.concat(picked) if picked else rows.iloc[:0]
    return chosen.drop(columns="_full").sort_values(["model", "task"]).reset_index(drop=True), notes


def _one_version(task: str, part: pd.DataFrame) -> pd.DataFrame:
    """The runs of the (config hash, settings) most models have (then the most items, then the latest)."""
    if part["config_hash"].nunique() == 1 and part["settings"].nunique() == 1:  # one version: nothing to choose
        return part.drop_duplicates("model")
    versions = part.groupby(["config_hash", "settings"]).agg(
        models=("model", "nunique"), n=("n", "sum"), last=("finished_at", "max"))
    config, settings = versions.sort_values(["models", "n", "last"], ascending=False, kind="stable").index[0]
    inside = part[(part["config_hash"] == config) & (part["settings"] == settings)].drop_duplicates("model")
    outside = part[~part["model"].isin(inside["model"])].drop_duplicates("model")
    if outside.empty:
        return inside
    others = outside[outside["config_hash"] != config]
    column, what, ours = ("config_hash", "another task version (config {})", config) if len(others) else \
        ("settings", "other run settings (settings {})", settings)
    others = others if len(others) else outside
    theirs = ", ".join(sorted({value[:6] for value in others[column]}))
    raise HarnessError(
        f"task {task}: {_who(sorted(others['model']))} {'was' if len(others) == 1 else 'were'} evaluated with "
        f"{what.format(theirs)} than {', '.join(sorted(inside['model']))} ({ours[:6]}); evaluate them alike, "
        "or pass --allow-mixed")


def align_items(rows: pd.DataFrame, items: pd.DataFrame, allow_mixed: bool):
    """(rows, items, notes) with every task scored on the items all its models have. Where the chosen runs cover
    different items, each score becomes the model's mean over the shared ones (refused for a corpus-level metric,
    or when they share too few: MIN_SHARED); runs without per-item values keep their score if every run of the task
    counted the same number of items. `allow_mixed` keeps each model's own items and score."""
    if rows["run_id"].is_unique:  # the merge below by position (faster on millions of items), keeping their order
        pos = pd.Index(rows["run_id"]).get_indexer(items["run_id"])
        items, pos = (items, pos) if (pos >= 0).all() else (items[pos >= 0], pos[pos >= 0])
        items = pd.concat([items.reset_index(drop=True),
                           rows[["model", "task", "higher_is_better"]].iloc[pos].reset_index(drop=True)], axis=1)
    else:
        items = items.merge(rows[["run_id", "model", "task", "higher_is_better"]], on="run_id")
    by_task = {task: part for task, part in items.groupby("task", sort=False)}
    out_rows, out_items, notes = [], [], {}
    for task, part in rows.groupby("task", sort=True):
        mine = by_task.get(task, items.iloc[:0])
        sets = _item_sets(mine)
        same = len(set(sets.values())) <= 1 and part["n"].nunique() == 1
        if not same:  # for the messages only: thousands of models make it long
            counts = ", ".join(f"{m} {n}" for m, n in zip(part["model"], part["n"]))
        if allow_mixed or same:
            if not same:
                notes[task] = f"models scored on other items (items: {counts}); each model's own score (--allow-mixed)"
        elif len(sets) < len(part):
            bare = sorted(set(part["model"]) - set(sets))
            raise HarnessError(f"task {task}: models were scored on different numbers of items ({counts}) and "
                               f"{_who(bare)} stored no per-item values to compare them on the same items; "
                               "evaluate them alike (same --limit), or pass --allow-mixed")
        else:
            part, mine, notes[task] = _on_shared_items(task, part, mine, sets)
        out_rows.append(part)
        out_items.append(mine)
    rows = pd.concat(out_rows, ignore_index=True) if out_rows else rows
    items = pd.concat(out_items, ignore_index=True) if out_items else items
    return rows[ROW_COLUMNS], items[ITEM_COLUMNS], notes


def _item_sets(mine: pd.DataFrame) -> dict[str, frozenset]:
    """Each model's set of item ids, from one sort of the task's rows (a pandas group per model is far slower when a
    store holds thousands of models)."""
    if mine.empty:
        return {}
    codes, models = pd.factorize(mine["model"])
    models = models.tolist()
    order = np.argsort(codes, kind="stable")
    codes, docs = codes[order], mine["doc_id"].to_numpy()[order]
    bounds = np.flatnonzero(np.diff(codes)) + 1
    return {models[code]: frozenset(group.tolist()) for code, group in zip(codes[np.r_[0, bounds]],
                                                                            np.split(docs, bounds))}


def _on_shared_items(task: str, part: pd.DataFrame, mine: pd.DataFrame, sets: dict[str, frozenset]):
    """(rows, items, note) of one task whose runs cover different items, re-scored on the items they share."""
    shared = frozenset.intersection(*sets.values())
    sizes = ", ".join(f"{model} {len(docs)}" for model, docs in sorted(sets.items()))
    if len(shared) < max(1, MIN_SHARED * min(len(docs) for docs in sets.values())):
        raise HarnessError(f"task {task}: models {', '.join(sorted(sets))} share {len(shared) or 'no'} items (items: "
                           f"{sizes}; at least half of the smallest run's are needed); evaluate them on the same "
                           "items, or pass --allow-mixed")
    metric = part["metric"].iloc[0]
    if not is_item_mean(metric, part["task_config"].iloc[0]):
        raise HarnessError(f"task {task}: models were scored on different items (items: {sizes}) and its metric "
                           f"{metric} is not a mean over items, so it cannot be re-scored on the {len(shared)} they "
                           "share; evaluate them alike (same --limit), or pass --allow-mixed")
    mine = mine[mine["doc_id"].isin(shared)]
    stats = mine.groupby("model")["value"].agg(["mean", "std", "count"])
    part = part.assign(value=part["model"].map(stats["mean"]), n=len(shared),
                       stderr=part["model"].map(stats["std"] / np.sqrt(stats["count"])))
    union = frozenset.union(*sets.values())
    return part, mine, f"scored on the {len(shared)} of {len(union)} items shared by all {len(sets)} models"


def is_item_mean(metric: str, config: str | dict | None) -> bool:
    """Whether a task's score on `metric` is the mean of its per-item values: the task config's metric_list says
    so ('aggregation': 'mean'), or says nothing and the metric is not one lm-eval aggregates over the corpus."""
    name = metric.split(",", 1)[0]
    config = json.loads(config) if isinstance(config, str) else config
    entries = config.get("metric_list") if isinstance(config, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("metric") == name and "aggregation" in entry:
            return entry["aggregation"] == "mean"
    return name not in CORPUS_METRICS


def _who(models: list[str]) -> str:
    return f"model{'s' if len(models) > 1 else ''} {', '.join(models)}"


def select_tasks(rows: pd.DataFrame, edges: pd.DataFrame, names: list[str], level: str, items: bool) -> pd.DataFrame:
    """The rows of the named tasks; a group becomes its leaves (level 'leaf') or one aggregated benchmark."""
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
                                 higher_is_better=_directions(scores, "benchmark", f"--source {source}: "))
    published = aggregate.groupby("competitor")["value"].mean() if len(aggregate) else None
    return table, published


def _directions(rows: pd.DataFrame, column: str = "task", where: str = "") -> dict[str, bool]:
    """One direction per benchmark; rows that disagree are refused (never the last row's say)."""
    flags = rows.groupby(column)["higher_is_better"].agg(lambda values: set(values.astype(bool)))
    for name, found in flags.items():
        if len(found) > 1:
            raise HarnessError(f"{where}{column} {name}: its rows disagree on direction (some say higher is "
                               "better, some lower); import them with one direction")
    return {name: next(iter(found)) for name, found in flags.items()}
