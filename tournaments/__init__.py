"""Ranking side of the harness: pure functions over a ScoreTable (no I/O, no DuckDB, no torch)."""

from tournaments.aggregate import mean_score, mean_win_rate, win_rate_matrix
from tournaments.ranking import Ranking, ranks_from_scores
from tournaments.table import ScoreTable

__all__ = ["Ranking", "ScoreTable", "mean_score", "mean_win_rate", "ranks_from_scores", "win_rate_matrix"]
