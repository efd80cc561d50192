"""How CSD's E[S_m] moves when the elimination schedule or the round order changes.

Failure sensitivity (csd.md §1.5): run CSD under several schedules (by default a constant T of 0,
1 and 2 per round) and compare. The base is E[S_m] with no elimination; the drop is
Delta E = E(last schedule) - E(base), negative when elimination costs a competitor points.

Quadrant labels (the harness's own rule; the paper reads them off a scatter plot): split at the
median base and the median drop over the field. A competitor is "high" if base >= median base and
"fragile" if drop < median drop (it loses more than the typical competitor):

- high, not fragile: robust generalist (wins broadly, survives the cuts)
- high, fragile:     aggressive specialist (strong rounds, but early losses get it cut)
- low, not fragile:  steady underdog
- low, fragile:      fragile underdog
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from tournaments.rounds import Round, auto_rounds
from tournaments.swiss import CSDResult, simulate
from tournaments.table import ScoreTable

DEFAULT_SCHEDULES = (0, 1, 2)


@dataclass(frozen=True)
class FailureSensitivity:
    """E[S_m] per schedule; columns follow `schedules`, the first one being the no-elimination base."""

    competitors: tuple[str, ...]
    schedules: tuple[int | tuple[int, ...], ...]
    results: tuple[CSDResult, ...]

    @property
    def expected(self) -> np.ndarray:
        return np.stack([r.expected for r in self.results], axis=1)

    @property
    def se(self) -> np.ndarray:
        return np.stack([r.se for r in self.results], axis=1)

    @property
    def base(self) -> np.ndarray:
        return self.results[0].expected

    @property
    def drop(self) -> np.ndarray:
        return self.results[-1].expected - self.results[0].expected

    @property
    def drop_se(self) -> np.ndarray:
        """Independent random streams per schedule, so the variances add."""
        return np.hypot(self.results[-1].se, self.results[0].se)

    @property
    def labels(self) -> tuple[str, ...]:
        return quadrant_labels(self.base, self.drop)

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame({"competitor": list(self.competitors)})
        for name, result in zip(self.schedule_names, self.results):
            frame[f"E[{name}]"] = result.expected
            frame[f"SE[{name}]"] = result.se
        frame["drop"] = self.drop
        frame["drop_se"] = self.drop_se
        frame["label"] = list(self.labels)
        last = f"E[{self.schedule_names[-1]}]"
        return frame.sort_values(last, ascending=False, kind="stable").reset_index(drop=True)

    @property
    def schedule_names(self) -> list[str]:
        return [f"T={s}" if isinstance(s, int) else "T=" + "/".join(map(str, s)) for s in self.schedules]


@dataclass(frozen=True)
class RoundOrderSensitivity:
    """E[S_m] under several round orders; row 0 is the configured order."""

    competitors: tuple[str, ...]
    orders: tuple[tuple[str, ...], ...]  # round names in play order
    expected: np.ndarray  # (orders, competitors)
    se: np.ndarray

    @property
    def spread(self) -> np.ndarray:
        """Largest minus smallest E[S_m] over the orders tried."""
        return self.expected.max(axis=0) - self.expected.min(axis=0)


def quadrant_labels(base: np.ndarray, drop: np.ndarray) -> tuple[str, ...]:
    """Module docstring rule: split at the median base and the median drop."""
    high = base >= np.median(base)
    fragile = drop < np.median(drop)
    names = {
        (True, False): "robust generalist",
        (True, True): "aggressive specialist",
        (False, False): "steady underdog",
        (False, True): "fragile underdog",
    }
    return tuple(names[(bool(h), bool(f))] for h, f in zip(high, fragile))


def failure_sensitivity(
    table: ScoreTable,
    rounds: Sequence[Round] | None = None,
    *,
    schedules: Sequence[int | Sequence[int]] = DEFAULT_SCHEDULES,
    n_sims: int = 100_000,
    seed: int | None = 0,
    tiebreak: str = "random",
    missing: str = "error",
    item_bootstrap: bool = False,
    batch_size: int = 2048,
    cell_stderr: np.ndarray | None = None,
) -> FailureSensitivity:
    """E[S_m] for each schedule (constant T or per-round list), one independent stream per schedule."""
    if len(schedules) < 2:
        raise ValueError("failure sensitivity needs at least two schedules (the base T=0 first)")
    if np.any(np.asarray(schedules[0]) != 0):
        raise ValueError(f"the first schedule is the base and must eliminate nobody, got {schedules[0]}")
    streams = np.random.SeedSequence(seed).spawn(len(schedules))
    results = tuple(
        simulate(
            table, rounds, eliminate=s, n_sims=n_sims, seed=stream, tiebreak=tiebreak, missing=missing,
            item_bootstrap=item_bootstrap, batch_size=batch_size, cell_stderr=cell_stderr,
        )
        for s, stream in zip(schedules, streams)
    )
    kept = tuple(int(s) if np.ndim(s) == 0 else tuple(int(t) for t in s) for s in schedules)
    return FailureSensitivity(table.competitors, kept, results)


def round_order_sensitivity(
    table: ScoreTable,
    rounds: Sequence[Round] | None = None,
    *,
    n_orders: int = 20,
    eliminate: int | Sequence[int] = 0,
    n_sims: int = 20_000,
    seed: int | None = 0,
    tiebreak: str = "random",
    missing: str = "error",
    batch_size: int = 2048,
) -> RoundOrderSensitivity:
    """E[S_m] under the given order and n_orders - 1 random permutations of it (csd.md Q7).

    A per-round elimination list stays attached to the round's position, not to its benchmark.
    """
    if n_orders < 1:
        raise ValueError(f"n_orders must be at least 1, got {n_orders}")
    rounds = auto_rounds(table) if rounds is None else tuple(rounds)
    seeds = np.random.SeedSequence(seed)
    rng = np.random.default_rng(seeds.spawn(1)[0])
    orders = [tuple(range(len(rounds)))] + [tuple(rng.permutation(len(rounds))) for _ in range(n_orders - 1)]
    results = [
        simulate(
            table, [rounds[i] for i in order], eliminate=eliminate, n_sims=n_sims, seed=stream,
            tiebreak=tiebreak, missing=missing, batch_size=batch_size,
        )
        for order, stream in zip(orders, seeds.spawn(n_orders))
    ]
    return RoundOrderSensitivity(
        table.competitors,
        tuple(tuple(rounds[i].name for i in order) for order in orders),
        np.stack([r.expected for r in results]),
        np.stack([r.se for r in results]),
    )
