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
    """Caches for one store stamp. Refusals are cached too: a store that cannot be compared says so quickly."""

    stamp: tuple
    lock: threading.RLock = field(default_factory=threading.RLock)
    cache: OrderedDict = field(default_factory=OrderedDict)

    def _memo(self, key, compute):
        with self.lock:
            if key in self.cache:
                self.cache.move_to_end(key)
                value = self.cache[key]
            else:
                try:
                    value = compute()
                except HarnessError as exc:
                    value = exc
                self.cache[key] = value
                while len(self.cache) > CACHE_SIZE:
                    self.cache.popitem(last=False)
        if isinstance(value, HarnessError):
            raise value
        return value

    def comparable(self, store, tasks: tuple[str, ...] = ()):
        """`comparable(store, tasks=...)`: the runs, items and notes every model page and ranking uses."""
        from harness.tables.scores import comparable

        return self._memo(("comparable", tasks), lambda: comparable(store, tasks=list(tasks) or None))

    def items_by_task(self, store) -> dict[str, pd.DataFrame]:
        """The per-item values of `comparable(store)`, split by task once (model, doc_id, value)."""
        def split():
            items = self.comparable(store).items
            return {task: part[["model", "doc_id", "value"]].reset_index(drop=True)
                    for task, part in items.groupby("task", sort=True)}
        return self._memo(("items_by_task",), split)

    def kinds(self, store) -> pd.DataFrame:
        """Models by label: kind (base, variant, imported), namespace."""
        def load():
            frame = store.model_kinds().set_index("label")
            frame["shown_kind"] = np.where(frame["namespace"] != "", "imported",
                                           np.where(frame["kind"] == "variant", "variant", frame["kind"]))
            return frame
        return self._memo(("kinds",), load)

    def board(self, store, method: str, source: str = "", tasks: tuple[str, ...] = (), level: str = "group") -> Board:
        """The leaderboard of the evaluated models (or the import `source`) under `method`."""
        return self._memo(("board", method, source, tasks, level), lambda: self._board(store, method, source, tasks,
                                                                                         level))

    def _board(self, store, method, source, tasks, level) -> Board:
        from harness.tables.scores import imported_table, score_table, select_tasks
        from tournaments.methods import get_method

        try:
            ranker = get_method(method)
        except ValueError as exc:
            raise HarnessError(str(exc)) from None
        if source:
            table, _ = imported_table(store, source)
            compared = (f"import {source!r} as stored: {table.n_competitors} competitors on "
                        f"{table.n_benchmarks} benchmarks",)
        else:
            chosen = self.comparable(store, tasks)
            rows = select_tasks(chosen.rows, store.group_members(), list(tasks), level, False) if tasks \
                else chosen.rows
            if rows.empty:
                raise HarnessError(f"--db {store.path}: no finished runs to rank; run `harness eval` first")
            table = score_table(rows)
            compared = (f"{table.n_competitors} models on {table.n_benchmarks} tasks, each task on one task version "
                        "and one run settings value and on the items all its models share (as `harness rank`)",
                        *chosen.note_lines())
        params = METHOD_PARAMS.get(method, {})
        try:
            ranking = ranker(table, **params)
        except ValueError as exc:
            from harness.cli.commands._csd import cli_words

            raise HarnessError(f"{method}: {cli_words(str(exc))}") from None
        values = pd.DataFrame(table.cell_means(), index=list(table.competitors), columns=list(table.benchmarks))
        return Board(table, ranking, compared, ranking.to_frame(), values)
