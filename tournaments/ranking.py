"""Ranking: the result every ranker returns, so reports and comparisons treat all methods alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata


@dataclass(frozen=True)
class Ranking:
    """Per-competitor scores under one method; larger score is better, rank 1 is best.

    Ties share the best rank ("min" method), as leaderboards print them.
    """

    method: str
    competitors: tuple[str, ...]
    scores: np.ndarray
    ci_low: np.ndarray | None = None
    ci_high: np.ndarray | None = None
    params: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def ranks(self) -> np.ndarray:
        return ranks_from_scores(self.scores)

    def order(self) -> list[str]:
        """Competitors from best to worst (stable for ties)."""
        return [self.competitors[i] for i in np.argsort(-np.nan_to_num(self.scores, nan=-np.inf), kind="stable")]

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame({"competitor": list(self.competitors), "score": self.scores, "rank": self.ranks})
        if self.ci_low is not None and self.ci_high is not None:
            frame["ci_low"] = self.ci_low
            frame["ci_high"] = self.ci_high
        return frame.sort_values(["rank", "competitor"], kind="stable").reset_index(drop=True)


def ranks_from_scores(scores: np.ndarray) -> np.ndarray:
    """Rank 1 for the largest score; NaN scores rank last."""
    filled = np.where(np.isnan(scores), -np.inf, scores)
    return rankdata(-filled, method="min").astype(int)
