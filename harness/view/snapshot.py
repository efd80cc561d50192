"""What the pages derive from one state of the store, computed once and kept until the file changes.

Everything here goes through the project's one path from store to numbers: `harness.tables.scores.comparable`
chooses the runs and items that may be compared (or refuses, in one line), `select_tasks` and `score_table` make
the ScoreTable, `tournaments.methods.rank` ranks it. The view adds no rule of its own; it only caches, so that a
page over a large store is a lookup after the first request (the cold cost is measured by scripts/bench_view.py).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness.common.errors import HarnessError

CSD_SIMS = 2_000
"""Monte Carlo tournaments per CSD leaderboard in the viewer (`harness rank --method csd` defaults to 100,000);
the page says so, and `harness rank` gives the full count."""
CSD_MISSING = "error"
METHOD_PARAMS = {"csd": {"n_sims": CSD_SIMS, "seed": 0, "missing": CSD_MISSING}}
CACHE_SIZE = 16
RANK_BOOT = 100
"""Bootstrap resamples behind the rank intervals the leaderboard draws on request (`harness report` uses 200)."""
BOOT_CSD_SIMS = 1_000
"""CSD simulations per bootstrap resample (as `harness report`: the intervals need the order, not a precise E[S_m])."""


def stamp(path: Path) -> tuple:
    """The store file's state: size and modification time of the file and its write-ahead log. Any write changes
    it, so a cache keyed on it never serves numbers from before a write."""
    parts = []
    for candidate in (path, path.with_name(path.name + ".wal")):
        try:
            st = os.stat(candidate)
            parts.append((st.st_size, st.st_mtime_ns))
        except FileNotFoundError:
            parts.append(None)
    return tuple(parts)


@dataclass
class Board:
    """A ranked table: the ScoreTable, its Ranking, and what was done to compare (lines for the page)."""

    table: object
    ranking: object
    compared: tuple[str, ...]
    frame: pd.DataFrame  # one row per competitor: competitor, score, rank (and ci_low, ci_high where the method has them)
    values: pd.DataFrame  # competitors x benchmarks: each cell's score (mean over replicates)


@dataclass
class Snapshot:
    """Caches for one store stamp. What every page builds on (the comparable runs and items, the score tables, the
    model kinds) is kept for the snapshot's life; rankings, pair comparisons and task statistics in a small LRU.
    Refusals are cached too: a store that cannot be compared says so quickly."""

    stamp: tuple
    lock: threading.RLock = field(default_factory=threading.RLock)
    pinned: dict = field(default_factory=dict)
    cache: OrderedDict = field(default_factory=OrderedDict)

    def _memo(self, key, compute, pinned: bool = False):
        with self.lock:
            if key in self.pinned:
                value = self.pinned[key]
            elif key in self.cache:
                self.cache.move_to_end(key)
                value = self.cache[key]
            else:
                try:
                    value = compute()
                except HarnessError as exc:
                    value = exc
                if pinned:
                    self.pinned[key] = value
                else:
                    self.cache[key] = value
                    while len(self.cache) > CACHE_SIZE:
                        self.cache.popitem(last=False)
        if isinstance(value, HarnessError):
            raise value
        return value

    def comparable(self, store, tasks: tuple[str, ...] = ()):
        """`comparable(store, tasks=...)`: the runs, items and notes every model page and ranking uses. comparable
        decides task by task, so where the whole store is comparable the answer for some tasks is its part for them
        (no second pass over the items); where it is not, those tasks are asked on their own."""
        from harness.tables.scores import Comparable, comparable, wanted_tasks

        if not tasks:
            return self._memo(("comparable",), lambda: comparable(store), pinned=True)
        try:
            whole = self.comparable(store)
        except HarnessError:
            return self._memo(("comparable", tasks), lambda: comparable(store, tasks=list(tasks)))

        def part():
            wanted = wanted_tasks(list(tasks), store.group_members())
            by_task = self.items_by_task(store)
            items = [by_task[t].assign(task=t) for t in sorted(wanted) if t in by_task]
            rows = whole.rows[whole.rows["task"].isin(wanted)]
            if items:
                items = pd.concat(items, ignore_index=True).merge(rows[["model", "task", "higher_is_better"]],
                                                                  on=["model", "task"])[whole.items.columns]
            else:
                items = whole.items.iloc[:0]
            return Comparable(rows, items,
                              {t: note for t, note in whole.notes.items() if t in wanted})
        return self._memo(("comparable", tasks), part)

    def items_by_task(self, store) -> dict[str, pd.DataFrame]:
        """The per-item values of `comparable(store)`, split by task once (model, doc_id, value)."""
        def split():
            items = self.comparable(store).items
            return {task: part[["model", "doc_id", "value"]].reset_index(drop=True)
                    for task, part in items.groupby("task", sort=True)}
        return self._memo(("items_by_task",), split, pinned=True)

    def run_of(self, store, model: str, task: str) -> tuple[str, int] | None:
        """(run id, items) of the run the leaderboard compared for (model, task); None where there is none (or the
        store cannot be compared as a whole)."""
        def index():
            rows = self.comparable(store).rows
            return dict(zip(zip(rows["model"], rows["task"]), zip(rows["run_id"], rows["n"].astype(int))))
        try:
            return self._memo(("runs",), index, pinned=True).get((model, task))
        except HarnessError:
            return None

    def primary_metric(self, store, task: str) -> str:
        """The task's primary metric (one per task name: comparable refuses records that disagree)."""
        def metric():
            versions = store.task_versions(task)
            return str(versions["primary_metric"].iloc[0]) if len(versions) else ""
        return self._memo(("metric", task), metric)

    def kinds(self, store) -> pd.DataFrame:
        """Models by label: kind (base, variant, imported), namespace."""
        def load():
            frame = store.model_kinds().set_index("label")
            frame["shown_kind"] = np.where(frame["namespace"] != "", "imported",
                                           np.where(frame["kind"] == "variant", "variant", frame["kind"]))
            return frame
        return self._memo(("kinds",), load, pinned=True)

    def table(self, store, source: str = "", tasks: tuple[str, ...] = (), level: str = "group"):
        """(ScoreTable, lines saying what was compared) of the evaluated models (or the import `source`): what
        `harness rank` ranks, built once for every method."""
        return self._memo(("table", source, tasks, level), lambda: self._table(store, source, tasks, level),
                          pinned=not tasks)

    def _table(self, store, source, tasks, level):
        from harness.tables.scores import imported_table, score_table, select_tasks

        if source:
            table, _ = imported_table(store, source)
            return table, (f"import {source!r} as stored: {table.n_competitors} competitors on "
                           f"{table.n_benchmarks} benchmarks",)
        chosen = self.comparable(store, tasks)
        rows = select_tasks(chosen.rows, store.group_members(), list(tasks), level, False) if tasks else chosen.rows
        if rows.empty:
            raise HarnessError(f"--db {store.path}: no finished runs to rank; run `harness eval` first")
        table = score_table(rows)
        return table, (f"{table.n_competitors} models on {table.n_benchmarks} tasks, each task on one task version "
                       "and one run settings value and on the items all its models share (as `harness rank`)",
                       *chosen.note_lines())

    def rank_intervals(self, store, method: str, source: str = "", tasks: tuple[str, ...] = (),
                       level: str = "group") -> tuple[pd.DataFrame, str]:
        """(rank_low and rank_high per competitor, what was resampled): the 95% bootstrap rank interval of each
        competitor under `method`, as `harness report` draws them (tournaments.stats.bootstrap_ranking, resampling
        items where per-item values exist, else benchmarks; RANK_BOOT resamples, seed 0)."""
        return self._memo(("rank_intervals", method, source, tasks, level),
                          lambda: self._rank_intervals(store, method, source, tasks, level))

    def _rank_intervals(self, store, method, source, tasks, level):
        from functools import partial

        from harness.tables.scores import score_table, select_tasks
        from tournaments.methods import rank
        from tournaments.stats import bootstrap_ranking

        table, _ = self.table(store, source, tasks, level)
        sample = table
        if not source:
            items = self.comparable(store, tasks).items
            try:
                if tasks:
                    items = select_tasks(items, store.group_members(), list(tasks), level, True)
                if len(items) and set(items["task"]) == set(table.benchmarks):
                    sample = score_table(items, items=True)
            except HarnessError:
                pass  # a group without weight_by_size pools no items: resample benchmarks instead
        params = {**METHOD_PARAMS.get(method, {}), "n_sims": BOOT_CSD_SIMS} if method == "csd" else {}
        try:
            boot = bootstrap_ranking(sample, partial(rank, method=method, **params), n_boot=RANK_BOOT, seed=0)
        except ValueError as exc:
            raise HarnessError(f"{method}: {exc}") from None
        frame = boot.to_frame()[["competitor", "rank_low", "rank_high"]].set_index("competitor")
        return frame, f"{RANK_BOOT} bootstrap resamples over {boot.unit}, seed 0"

    def board(self, store, method: str, source: str = "", tasks: tuple[str, ...] = (), level: str = "group") -> Board:
        """The leaderboard of the evaluated models (or the import `source`) under `method`."""
        return self._memo(("board", method, source, tasks, level), lambda: self._board(store, method, source, tasks,
                                                                                         level))

    def _board(self, store, method, source, tasks, level) -> Board:
        from tournaments.methods import get_method

        try:
            ranker = get_method(method)
        except ValueError as exc:
            raise HarnessError(str(exc)) from None
        table, compared = self.table(store, source, tasks, level)
        values = self._memo(("values", source, tasks, level), lambda: pd.DataFrame(
            table.cell_means(), index=list(table.competitors), columns=list(table.benchmarks)))
        try:
            ranking = ranker(table, **METHOD_PARAMS.get(method, {}))
        except ValueError as exc:
            from harness.cli.commands._csd import cli_words

            raise HarnessError(f"{method}: {cli_words(str(exc))}") from None
        return Board(table, ranking, compared, ranking.to_frame(), values)
