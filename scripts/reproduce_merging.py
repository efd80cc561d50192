"""`make reproduce-merging`: two experts fine-tuned from SmolLM2-135M, merged by every method, evaluated on
both experts' tasks and ranked; prints and writes how much of each expert's gain every merge keeps.

Every step is the `harness` command a user would type, so the run is the product, not a side path:
  1. harness variants make examples/merging.toml      (experts, then the merges of them)
  2. harness eval --models <base, experts, merges> --tasks <the experts' tasks> --limit N
  3. harness rank --variants --models ...
  4. the table: accuracy per task, change against the base, and kept gain = (merge - base) /
     (expert - base) for each task's own expert, into results/reproduce/merging/table.{md,json}.
Wall and CPU time of each step are measured (CPU time of the child processes).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.weights.models import resolve  # noqa: E402
from harness.common.paths import default_db, results_dir  # noqa: E402
from harness.variants.recipe import load_recipe  # noqa: E402


def _run(step: str, args: list[str], timing: dict) -> None:
    """Run one harness command, streaming its output; record its wall and CPU seconds."""
    print(f"\n== {step}: harness {' '.join(args)}", flush=True)
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=REPO)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    timing[step] = {"wall_s": round(time.perf_counter() - started, 1),
                    "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1)}
    if done.returncode != 0:
        sys.exit(f"reproduce-merging: step '{step}' failed (exit {done.returncode})")


def plan(recipe: Path) -> tuple[str, dict[str, str], list[tuple[str, str]]]:
    """The base, each task's expert, and every merge (name, method) of the recipe."""
    specs = load_recipe(recipe)
    experts = {spec.task: spec.name for spec in specs if spec.method == "finetune"}
    bases = {spec.parent for spec in specs if spec.method == "finetune"}
    if len(experts) < 2 or len(bases) != 1:
        sys.exit(f"{recipe}: expected fine-tuned experts of one base on at least two tasks")
    merges = [(spec.name, spec.method + (" + search" if getattr(spec, "search", None) else ""))
              for spec in specs if spec.kind == "merge"]
    return bases.pop(), experts, merges


def limited_scores(store, models: list[str], limit: int) -> dict[tuple[str, str], dict]:
    """Each model's latest finished score per task at exactly this --limit (the leaderboard view would
    prefer a full run of the base, had one been made, and so compare it on other items)."""
    names = ", ".join("'" + name.replace("'", "''") + "'" for name in models)
    frame = store.query(f"""
        SELECT m.name AS model, t.name AS task, s.value, s.stderr, s.n
        FROM scores s JOIN runs r USING (run_id) JOIN models m USING (model_id) JOIN tasks t USING (task_id)
        WHERE r.status = 'done' AND s.metric = t.primary_metric AND r.item_limit = {int(limit)}
          AND m.name IN ({names})
        QUALIFY row_number() OVER (PARTITION BY m.name, t.name ORDER BY r.finished_at DESC) = 1""")
    return {(r.model, r.task): {"value": float(r.value), "stderr": float(r.stderr), "n": int(r.n)}
            for r in frame.itertuples()}


def table(rows: dict[tuple[str, str], dict], base: str, experts: dict[str, str],
          merges: list[tuple[str, str]]) -> list[dict]:
    """One row per model with accuracy, change against the base and kept gain per task, best mean first."""
    tasks = list(experts)
    models = [(base, "base")] + [(name, f"expert ({task})") for task, name in experts.items()] + merges
    out = []
    for name, role in models:
        row = {"model": name, "role": role, "tasks": {}}
        for task in tasks:
            score = rows.get((name, task))
            if score is None:
                sys.exit(f"no finished run of {name} on {task} in the store")
            gain = rows[(experts[task], task)]["value"] - rows[(base, task)]["value"]
            delta = score["value"] - rows[(base, task)]["value"]
            row["tasks"][task] = {"acc": score["value"], "stderr": score["stderr"], "n": score["n"],
                                  "delta_vs_base": delta, "kept_gain": delta / gain if gain > 0 else None}
        row["mean_acc"] = sum(t["acc"] for t in row["tasks"].values()) / len(tasks)
        kept = [t["kept_gain"] for t in row["tasks"].values()]
        row["mean_kept_gain"] = sum(kept) / len(kept) if None not in kept else None
        out.append(row)
    ranked = sorted(out, key=lambda r: -r["mean_acc"])
    for rank, row in enumerate(ranked, 1):
        row["rank"] = rank
    return ranked


def markdown(ranked: list[dict], tasks: list[str], limit: int, timing: dict) -> str:
    def pct(value):
        return "n/a" if value is None else f"{value:.0%}"

    header = ["rank", "model", "role", *[f"{t} acc (Δ, kept)" for t in tasks], "mean acc", "mean kept gain"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in ranked:
        cells = [f"{t['acc']:.3f} ± {t['stderr']:.3f} ({t['delta_vs_base']:+.3f}, {pct(t['kept_gain'])})"
                 for t in row["tasks"].values()]
        lines.append("| " + " | ".join([str(row["rank"]), row["model"], row["role"], *cells,
                                        f"{row['mean_acc']:.3f}", pct(row["mean_kept_gain"])]) + " |")
    lines += ["", f"Accuracy on the first {limit} test items of each task (± its standard error); Δ = change "
              "against the base; kept = (model − base) / (task's expert − base).", "",
              "| step | wall s | CPU s |", "|---|---|---|"]
    lines += [f"| {step} | {t['wall_s']} | {t['cpu_s']} |" for step, t in timing.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=REPO / "examples" / "merging.toml")
    parser.add_argument("--limit", type=int, default=100, help="test items per task (first N)")
    parser.add_argument("--out", type=Path, default=None, help="default: <results>/reproduce/merging")
    options = parser.parse_args()
    base, experts, merges = plan(options.recipe)
    models = [base, *experts.values(), *(name for name, _ in merges)]
    tasks = list(experts)
    timing: dict = {}
    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    _run("make variants", ["variants", "make", str(options.recipe), "--display", "plain"], timing)
    _run("evaluate", ["eval", "--models", ",".join(models), "--tasks", ",".join(tasks), "--limit",
                      str(options.limit), "--display", "plain"], timing)
    stored = [resolve(base).name, *models[1:]]  # a base given as a folder is stored under the folder's name
    _run("rank", ["rank", "--variants", "--models", ",".join(stored)], timing)

    from harness.store import Store

    with Store.open(default_db(), read_only=True) as store:
        rows = limited_scores(store, stored, options.limit)
    ranked = table(rows, stored[0], experts, merges)
    timing["total"] = {"wall_s": round(time.perf_counter() - started, 1),
                       "cpu_s": round(sum(t["cpu_s"] for t in timing.values()), 1)}
    out = options.out or results_dir() / "reproduce" / "merging"
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(ranked, tasks, options.limit, timing)
    (out / "table.md").write_text(text)
    (out / "table.json").write_text(json.dumps({
        "recipe": str(options.recipe), "base": base, "experts": experts, "tasks": tasks, "limit": options.limit,
        "rows": ranked, "timing": timing, "machine": {"cpus": os.cpu_count(), "load_average_at_start": load_start},
    }, indent=2) + "\n")
    print("\n" + text + f"\nwritten to {out}/table.md and table.json")


if __name__ == "__main__":
    main()
