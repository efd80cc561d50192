"""`make reproduce-merging`: two experts fine-tuned from SmolLM2-135M, merged by every method, evaluated on
both experts' tasks and ranked; prints and writes how much of each expert's gain every merge keeps.

Every step is the `harness` command a user would type, so the run is the product, not a side path:
  1. harness variants make examples/merging.toml      (experts, then the merges of them)
  2. harness eval --models <base, experts, merges> --tasks <the experts' tasks> --limit N
  3. harness rank --variants --models ...
  4. the table: accuracy per task, change against the base, and kept gain = (merge - base) /
     (expert - base) for each task's own expert, into results/reproduce/merging/table.{md,json}.
  5. for each learnt merge (Expert Merging): the same table on the tasks' validation splits (disjoint from
     train and test), and paired differences (McNemar, exact 95% intervals) against linear merging, the
     base and the best other merge on validation and test. The check (issue 21): the learnt coefficients
     moved from their uniform start, and on validation the learnt merge's mean kept gain is above linear
     merging's with neither task below it. Exit 1, naming the numbers, when it does not hold.
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

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


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


def pct(value):
    return "n/a" if value is None else f"{value:.0%}"


def markdown(ranked: list[dict], tasks: list[str], limit: int, timing: dict, split: str = "test") -> str:
    header = ["rank", "model", "role", *[f"{t} acc (Δ, kept)" for t in tasks], "mean acc", "mean kept gain"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in ranked:
        cells = [f"{t['acc']:.3f} ± {t['stderr']:.3f} ({t['delta_vs_base']:+.3f}, {pct(t['kept_gain'])})"
                 for t in row["tasks"].values()]
        lines.append("| " + " | ".join([str(row["rank"]), row["model"], row["role"], *cells,
                                        f"{row['mean_acc']:.3f}", pct(row["mean_kept_gain"])]) + " |")
    lines += ["", f"Accuracy on the first {limit} {split} items of each task (± its standard error); Δ = change "
              "against the base; kept = (model − base) / (task's expert − base)."]
    if timing:
        lines += ["", "| step | wall s | CPU s |", "|---|---|---|"]
        lines += [f"| {step} | {t['wall_s']} | {t['cpu_s']} |" for step, t in timing.items()]
    return "\n".join(lines) + "\n"


def validation_items(models: list[str], tasks: list[str], limit: int) -> dict[tuple[str, str], pd.Series]:
    """Per model and task: 1/0 per validation item (the first `limit`), scored by lm-eval's acc rule
    (harness.variants.answers, the rule the PCB search scores by). The validation split shares no
    question with train (the experts' and Expert Merging's prompts) or test (the table above)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.variants import answers
    from harness.variants.finetune import task_items
    from harness.weights.models import materialize

    items = {task: task_items(task, "validation", limit) for task in tasks}
    out = {}
    for name in models:
        path = materialize(resolve(name), results_dir() / "models").path
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        for task in tasks:
            right = answers.correct(model, tokenizer, items[task], answers.pad_id(tokenizer))
            out[(name, task)] = pd.Series(np.asarray(right, dtype=float))
        print(f"validation: {name} " + ", ".join(f"{t} {out[(name, t)].mean():.3f}" for t in tasks), flush=True)
    return out


def scored_test_items(db: Path, models: list[str], tasks: list[str], limit: int) -> dict[tuple[str, str], pd.Series]:
    """Per model and task: the per-item accuracy of its latest finished run of the first `limit` test items."""
    from harness.store import Store
    from harness.tables.items import latest_item_values

    with Store.open(db, read_only=True) as store:
        return {(m, t): latest_item_values(store, m, t, limit) for m in models for t in tasks}


def as_scores(items: dict[tuple[str, str], pd.Series]) -> dict[tuple[str, str], dict]:
    """Mean, standard error of the mean (sample standard deviation / √n, lm-eval's) and n per cell."""
    return {key: {"value": float(v.mean()), "stderr": float(v.std(ddof=1) / np.sqrt(len(v))), "n": len(v)}
            for key, v in items.items()}


def paired_rows(items: dict[tuple[str, str], pd.Series], model: str, against: dict[str, str], tasks: list[str],
                split: str) -> list[dict]:
    """model − each reference, per task, on the items both have (McNemar, exact 95% interval)."""
    from tournaments.stats import compare_paired

    rows = []
    for label, other in against.items():
        for task in tasks:
            a, b = items[(model, task)], items[(other, task)]
            shared = a.index.intersection(b.index)
            result = compare_paired(a[shared].to_numpy(), b[shared].to_numpy())
            rows.append({"split": split, "task": task, "against": label, "model": other, "diff": result.diff,
                         "ci_low": result.ci_low, "ci_high": result.ci_high, "p_value": result.p_value,
                         "n_items": result.n_items})
    return rows


def learnt_check(validation: list[dict], learnt: str, linear: str, moved: float) -> str | None:
    """None when the learnt merge's coefficients left their start and, on validation, its mean kept gain
    is above linear merging's with no task below linear's; else the reason (one line)."""
    if moved <= 1e-3:
        return f"{learnt}: the learnt coefficients stayed at their uniform start (max change {moved:.2g})"
    rows = {row["model"]: row for row in validation}
    ours, theirs = rows[learnt], rows[linear]
    if ours["mean_kept_gain"] is None or theirs["mean_kept_gain"] is None:
        return "an expert does not beat the base on its own task on validation: no kept gain to compare"
    worse = [t for t in ours["tasks"] if ours["tasks"][t]["acc"] < theirs["tasks"][t]["acc"]]
    if worse or ours["mean_kept_gain"] <= theirs["mean_kept_gain"]:
        return (f"on validation {learnt} keeps {pct(ours['mean_kept_gain'])} of the experts' gains against "
                f"{linear}'s {pct(theirs['mean_kept_gain'])}" + (f", and less on {', '.join(worse)}" if worse else ""))
    return None


def paired_markdown(rows: list[dict], learnt: str) -> str:
    lines = [f"| split | task | {learnt} − | diff | 95% CI (McNemar, exact) | p | items |", "|---|---|---|---:|---|---:|---:|"]
    lines += [f"| {r['split']} | {r['task']} | {r['against']} ({r['model']}) | {r['diff']:+.3f} | "
              f"{r['ci_low']:+.3f} to {r['ci_high']:+.3f} | {r['p_value']:.3g} | {r['n_items']} |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=REPO / "examples" / "merging.toml")
    parser.add_argument("--limit", type=int, default=100, help="test items per task (first N)")
    parser.add_argument("--validation-limit", type=int, default=100,
                        help="validation items per task for the learnt merges' check (first N; each task has 200)")
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
    learnt = learnt_merges(options, stored, experts, merges, tasks, timing, ranked)
    timing["total"] = {"wall_s": round(time.perf_counter() - started, 1),
                       "cpu_s": round(sum(t["cpu_s"] for t in timing.values()), 1)}
    out = options.out or results_dir() / "reproduce" / "merging"
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(ranked, tasks, options.limit, timing) + "".join(part["text"] for part in learnt)
    (out / "table.md").write_text(text)
    (out / "table.json").write_text(json.dumps({
        "recipe": str(options.recipe), "base": base, "experts": experts, "tasks": tasks, "limit": options.limit,
        "rows": ranked, "learnt": [{k: v for k, v in part.items() if k != "text"} for part in learnt],
        "timing": timing, "machine": {"cpus": os.cpu_count(), "load_average_at_start": load_start},
    }, indent=2) + "\n")
    print("\n" + text + f"\nwritten to {out}/table.md and table.json")
    failures = [part["check"]["reason"] for part in learnt if not part["check"]["passed"]]
    for reason in failures:
        print(f"FAILED: {reason}", file=sys.stderr)
    if failures:
        sys.exit(1)
    if learnt:
        print("check passed: every learnt merge keeps more of the experts' gains than linear merging on validation")


def learnt_merges(options, stored: list[str], experts: dict[str, str], merges: list[tuple[str, str]],
                  tasks: list[str], timing: dict, test_table: list[dict]) -> list[dict]:
    """Step 5 for every Expert Merging variant of the recipe: the validation table of the models it is compared
    with (base, experts, linear merging, the other merge with the best mean test accuracy), paired
    differences on validation and test, and the check."""
    from harness.variants import manifest
    from harness.weights.variant_folders import variant_folder

    learnt = [name for name, method in merges if method == "expert_merging"]
    if not learnt:
        return []
    linear = next((name for name, method in merges if method == "linear"), None)
    if linear is None:
        sys.exit(f"{options.recipe}: Expert Merging is checked against linear merging, and the recipe has no linear merge")
    others = [row for row in test_table if row["model"] not in (*learnt, stored[0], *experts.values())]
    best = max(others, key=lambda row: row["mean_acc"])["model"]
    needed = [stored[0], *experts.values(), linear, best, *learnt]
    compared = [(name, method) for name, method in merges if name in needed]
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    validation = validation_items(list(dict.fromkeys(needed)), tasks, options.validation_limit)
    after = resource.getrusage(resource.RUSAGE_SELF)
    timing["validation"] = {"wall_s": round(time.perf_counter() - started, 1),
                            "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1)}
    test = scored_test_items(default_db(), needed, tasks, options.limit)
    ranked = table(as_scores(validation), stored[0], experts, compared)
    parts = []
    for name in learnt:
        result = manifest.read(variant_folder(name))["result"]
        against = {"linear": linear, "base": stored[0], "best other merge on test": best}
        paired = (paired_rows(validation, name, against, tasks, "validation")
                  + paired_rows(test, name, against, tasks, "test"))
        failure = learnt_check(ranked, name, linear, result["max_abs_change_from_init"])
        summary = ", ".join(f"{row['mean']:.3f} (min {row['min']:.3f}, max {row['max']:.3f})"
                            for row in result["coefficient_summary"])
        text = (f"\n## {name}: validation split (first {options.validation_limit} items per task)\n\n"
                + markdown(ranked, tasks, options.validation_limit, {}, split="validation")
                + f"\nLearnt coefficients per expert, mean over tensors: {summary}; start {result['init']}, "
                  f"largest change {result['max_abs_change_from_init']:.3f}; alignment loss "
                  f"{result['alignment_loss_first']:.4f} → {result['alignment_loss_final']:.4f}.\n\n"
                + paired_markdown(paired, name))
        parts.append({"model": name, "validation_rows": ranked, "paired": paired,
                      "coefficient_summary": result["coefficient_summary"],
                      "max_abs_change_from_init": result["max_abs_change_from_init"],
                      "check": {"claim": "coefficients moved from the uniform start, and on validation a higher mean "
                                         "kept gain than linear merging with no task below it",
                                "passed": failure is None, "reason": failure}, "text": text})
    return parts


if __name__ == "__main__":
    main()
