"""Carps-style comparison of hyperparameter optimizers, ranked like models.

space.py (search spaces), bbob.py (test functions), prune_grid.py (the cached pruning table),
tasks.py (task registry and stable anchors), optimizers.py (ask/tell adapters), config.py (study
files), runner.py (the resumable trial loop), analysis.py (normalisation, final performance, rank
tests, anytime curves, performance profiles), report.py (tables), plots.py (figures) and subset.py
(star-discrepancy task subsets); harness.report.optimizer_files writes the tables and figures to files. Optuna and Nevergrad come with the `hpo` extra.
"""
