"""`harness hpo run | report | subset` end to end through the CLI, on a tiny study."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from harness.cli import app

STUDY = """
study = "tiny"
optimizers = ["random", "optuna-tpe", "optuna-cmaes"]
tasks = ["bbob-f1-d2", "bbob-f6-d2", "bbob-f8-d2", "bbob-f12-d2", "bbob-f15-d2"]
seeds = [0, 1]
n_trials = 8
"""


def _json(output: str) -> dict:
    return json.loads(output[output.index("{"):])


def test_run_report_publish_rank_and_subset(results_env, tmp_path):
    runner = CliRunner()
    config = tmp_path / "tiny.toml"
    config.write_text(STUDY)
    first = runner.invoke(app, ["hpo", "run", str(config), "--quiet"])
    assert first.exit_code == 0, first.output
    assert "30 run(s) done, 0 already stored" in first.output
    again = runner.invoke(app, ["hpo", "run", str(config)])
    assert again.exit_code == 0 and "0 run(s) done, 30 already stored" in again.output
    assert again.output.count("skipped") == 30

    report = runner.invoke(app, ["hpo", "report", "--study", "tiny", "--format", "json", "--n-boot", "200"])
    assert report.exit_code == 0, report.output
    rows = _json(report.output)["rows"]
    assert sorted(r["optimizer"] for r in rows) == ["optuna-cmaes", "optuna-tpe", "random"]
    assert sum(r["mean_rank"] for r in rows) == 6.0  # 1 + 2 + 3 on every task
    assert all(0.0 <= r["ci_low"] <= r["norm_cost"] <= r["ci_high"] <= 1.0 for r in rows)
    folder = results_env / "hpo" / "tiny"
    for name in ("leaderboard.csv", "anytime.png", "profile.png", "cd_nemenyi.png", "wilcoxon_holm.csv"):
        assert (folder / name).is_file(), name

    stable = runner.invoke(app, ["hpo", "report", "--study", "tiny", "--mode", "stable", "--publish",
                                 "--format", "json", "--n-boot", "200", "--out", str(tmp_path / "stable")])
    assert stable.exit_code == 0, stable.output
    ranked = runner.invoke(app, ["rank", "--source", "hpo:tiny", "--method", "mean", "--format", "json"])
    assert ranked.exit_code == 0, ranked.output
    best_by_rank = min(_json(stable.output)["rows"], key=lambda r: r["mean_rank"])["optimizer"]
    assert {r["competitor"] for r in _json(ranked.output)["rows"]} == {r["optimizer"] for r in rows}
    assert best_by_rank in {r["optimizer"] for r in rows}

    subset = runner.invoke(app, ["hpo", "subset", "--study", "tiny", "--reference", "random,optuna-tpe,optuna-cmaes",
                                 "--k", "2,3", "--restarts", "2", "--format", "json"])
    assert subset.exit_code == 0, subset.output
    candidates = _json(subset.output)["rows"]
    assert {(c["scaling"], c["k"]) for c in candidates} == {("raw", 2), ("log", 2)}  # k=3 needs 6 tasks
    missing = runner.invoke(app, ["hpo", "report", "--study", "nothing"])
    assert missing.exit_code == 2 and "no trials stored (stored: tiny)" in missing.output


def test_bad_inputs_fail_with_one_line(results_env, tmp_path):
    runner = CliRunner()
    config = tmp_path / "bad.toml"
    config.write_text(STUDY.replace('"random"', '"randm"'))
    bad = runner.invoke(app, ["hpo", "run", str(config)])
    assert bad.exit_code == 2 and "optimizers" in bad.output and "randm" in bad.output
    config.write_text(STUDY + "\nbudget = 3\n")
    extra = runner.invoke(app, ["hpo", "run", str(config)])
    assert extra.exit_code == 2 and "budget" in extra.output
    no_db = runner.invoke(app, ["hpo", "report", "--study", "tiny"])
    assert no_db.exit_code == 2 and "no such database" in no_db.output
