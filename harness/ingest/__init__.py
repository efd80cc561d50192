"""Results produced elsewhere (leaderboard CSVs, lm-eval output, per-checkpoint training logs) -> store records."""
