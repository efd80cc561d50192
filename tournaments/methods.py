"""Registry of ranking methods by name, and `rank_all` for the side-by-side table with Kendall taus.

Every entry is callable(ScoreTable, **params) -> Ranking, so the CLI can offer
`--method NAME|all` without knowing any method's internals. CSD (tournaments/swiss.py) is one of them; new methods join with `register`.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from tournaments.aggregate import borda, mean_score, mean_win_rate, normalized_mean, openskill_ranking
from tournaments.kemeny import kemeny
from tournaments.pairwise import bradley_terry, copeland, elo
from tournaments.ranking import Ranking
from tournaments.stats import kendall_tau
from tournaments.swiss import csd_ranking
from tournaments.table import ScoreTable

RankFn = Callable[..., Ranking]

METHODS: dict[str, RankFn] = {
    "mean": mean_score,
    "mean_minmax": lambda table, **kw: normalized_mean(table, "minmax", **kw),
    "mean_z": lambda table, **kw: normalized_mean(table, "zscore", **kw),
    "mwr": mean_win_rate,
    "borda": borda,
    "copeland": copeland,
    "kemeny": kemeny,
    "bt": bradley_terry,
    "elo": elo,
    "openskill": openskill_ranking,
    "csd": csd_ranking,
}


def register(name: str, fn: RankFn) -> None:
    """Add (or replace) a method under `name`."""
    METHODS[name] = fn


def get_method(name: str) -> RankFn:
    """The ranker called `name`; an unknown name raises ValueError with the closest known names."""
    try:
        return METHODS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(METHODS), n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"unknown ranking method {name!r}{hint} (known: {', '.join(METHODS)})") from None


def rank(table: ScoreTable, method: str, **params: Any) -> Ranking:
    """Rank `table` with the named method."""
    return get_method(method)(table, **params)


def rank_all(
    table: ScoreTable,
    methods: Sequence[str] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Ranking]]:
    """Every method's rank per competitor, the Kendall tau-b matrix between methods, and the Rankings.

    The rank table has one row per competitor (sorted by the first method) and one column per
    method. `params` maps a method name to its keyword arguments.
    """
    names = list(methods) if methods is not None else list(METHODS)
    params = params or {}
    rankings = {name: rank(table, name, **params.get(name, {})) for name in names}
    ranks = pd.DataFrame({name: r.ranks for name, r in rankings.items()}, index=list(table.competitors))
    ranks.index.name = "competitor"
    if names:
        ranks = ranks.sort_values(names[0], kind="stable")
    tau = np.ones((len(names), len(names)))
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            tau[a, b] = tau[b, a] = kendall_tau(rankings[names[a]].scores, rankings[names[b]].scores)
    return ranks, pd.DataFrame(tau, index=names, columns=names), rankings
