"""Regenerate the carps cross-check fixture from a carps run directory (run with carps installed).

Reads carps' gathered logs (`python -m carps.analysis.gather_data runs`), lets carps itself compute
the normalised final performance (get_df_crit on trial_value__cost_inc_norm) and the Friedman/Nemenyi
mean ranks (calc_critical_difference), and writes what tests/test_hpo_carps.py compares against:
trials.csv (the raw trials), expected_final.csv and expected_ranks.csv (carps' numbers).

Usage: python make_fixture.py RUNDIR/logs.parquet OUTDIR
"""

import json
import sys
from pathlib import Path

import pandas as pd
from carps.analysis.run_autorank import calc_critical_difference, get_df_crit

logs = pd.read_parquet(sys.argv[1])
out = Path(sys.argv[2])
keys = ["optimizer_id", "task_id", "seed", "n_trials"]
logs[keys + ["trial_value__cost"]].sort_values(keys).to_csv(out / "trials.csv", index=False, float_format="%.17g")
crit = get_df_crit(logs, perf_col="trial_value__cost_inc_norm")
final = crit.reset_index().melt(id_vars="task_id", var_name="optimizer_id", value_name="cost_inc_norm")
final.sort_values(["optimizer_id", "task_id"]).to_csv(out / "expected_final.csv", index=False, float_format="%.17g")
result = calc_critical_difference(logs, perf_col="trial_value__cost_inc", plot_diagram=False)
ranks = result.rankdf["meanrank"].rename_axis("optimizer_id").reset_index()
ranks.to_csv(out / "expected_ranks.csv", index=False, float_format="%.17g")
(out / "expected_tests.json").write_text(json.dumps({"pvalue": float(result.pvalue), "cd": float(result.cd)}) + "\n")
