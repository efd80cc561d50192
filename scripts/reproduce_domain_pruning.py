"""Domain-aware pruning against Wanda at the same sparsity, on SmolLM2-135M: what each keeps of a domain task
(held-out test items) and what each costs on FLORES+ English (bits per byte).

The claim checked (issue 21; D-Pruner, arXiv 2405.06275, reports domain-aware pruning keeping more of the
domain than general pruning at the same sparsity): `domain_prune` with a built-in task's train split as the
domain scores at least Wanda's accuracy on that task's first N test items (train and test never share a
question). Exit 1 when it does not. The FLORES+ cost is reported, not checked.

Every step is a harness command run in this process: variants make (a generated recipe), eval, then the
per-item results are read from the store and compared pairwise (McNemar on accuracy, paired bootstrap on
bits per byte; tournaments.stats.compare_paired).

Writes results/reproduce/domain_pruning/{recipe.toml, table.md, table.json}.
Run: python scripts/reproduce_domain_pruning.py [--task arith_add_2d] [--sparsity 0.5] [--limit 300] [--general-weight 0.1]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GENERAL_TASK = "english_flores"  # primary metric: bits per byte


def harness(*args: str) -> None:
    from harness.cli import app

    code = app(args=list(args), prog_name="harness", standalone_mode=False)
    if code:
        raise SystemExit(f"reproduce-domain-pruning: `harness {' '.join(args)}` failed (exit {code})")


def recipe_toml(entries: list[dict]) -> str:
    return "\n\n".join("[[variant]]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in entry.items())
                       for entry in entries) + "\n"


def entries_for(parent: str, prefix: str, task: str, sparsity: float, general_weight: float, n_samples: int,
                seqlen: int, name: str | None = None) -> list[dict]:
    """Wanda and domain pruning at one sparsity, named and calibrated as scripts/reproduce_pruning.py names
    and calibrates its own (so the variants are shared, not made twice)."""
    percent = round(sparsity * 100)
    calibration = {"n_samples": n_samples, "seqlen": seqlen}
    return [{"name": f"{prefix}-wanda{percent}", "parent": parent, "method": "wanda", "sparsity": sparsity,
             **calibration},
            {"name": name or f"{prefix}-domain{percent}-{task.replace('_', '-')}", "parent": parent,
             "method": "domain_prune", "sparsity": sparsity, "domain": task, "general_weight": general_weight,
             **calibration}]


def per_item(db: Path, model: str, task: str, limit: int) -> dict[int, float]:
    """The per-item primary metric of the model's latest finished run of `task` at exactly this --limit."""
    from harness.store import Store
    from harness.tables.items import latest_item_values

    with Store.open(db, read_only=True) as store:
        values = latest_item_values(store, model, task, limit)
    if values.empty:
        raise SystemExit(f"no finished run of {model} on {task} (--limit {limit}) with per-item results")
    return values.to_dict()


def main(argv: list[str] | None = None) -> int:
    from harness.common.paths import default_db, results_dir
    from harness.variants.recipe import DomainPruneSpec
    from tournaments.stats import compare_paired

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parent", default="smollm2-135m")
    parser.add_argument("--prefix", default="smollm2")
    parser.add_argument("--task", default="arith_add_2d", help="the domain: a built-in task with a train split")
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--general-weight", type=float, default=DomainPruneSpec.model_fields["general_weight"].default,
                        help="λ (default: the recipe's)")
    parser.add_argument("--name", default=None, help="the domain variant's name (default PREFIX-domainPCT-TASK)")
    parser.add_argument("--n-samples", type=int, default=8, help="calibration windows (both methods, both sets)")
    parser.add_argument("--seqlen", type=int, default=256)
    parser.add_argument("--limit", type=int, default=300, help="first N test items of the domain task (300: all)")
    parser.add_argument("--general-limit", type=int, default=20, help=f"first N {GENERAL_TASK} texts")
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--display", default="plain", choices=("rich", "plain", "none"))
    args = parser.parse_args(argv)
    db = args.db or default_db()
    out = args.out or results_dir() / "reproduce" / "domain_pruning"
    out.mkdir(parents=True, exist_ok=True)
    entries = entries_for(args.parent, args.prefix, args.task, args.sparsity, args.general_weight, args.n_samples,
                          args.seqlen, args.name)
    wanda, domain = (entry["name"] for entry in entries)
    calibration = {"n_samples": args.n_samples, "seqlen": args.seqlen}
    (out / "recipe.toml").write_text(recipe_toml(entries))
    timing = {}
    started = time.perf_counter()
    harness("variants", "make", str(out / "recipe.toml"), "--db", str(db), "--display", args.display)
    timing["make_s"] = round(time.perf_counter() - started, 1)
    parent = Path(args.parent).name if Path(args.parent).exists() else args.parent
    models = [parent, wanda, domain]
    started = time.perf_counter()
    harness("eval", "--models", ",".join(models), "--tasks", args.task, "--limit", str(args.limit), "--db", str(db),
            "--display", args.display)
    harness("eval", "--models", ",".join(models), "--tasks", GENERAL_TASK, "--limit", str(args.general_limit),
            "--db", str(db), "--display", args.display)
    timing["eval_s"] = round(time.perf_counter() - started, 1)

    acc = {m: per_item(db, m, args.task, args.limit) for m in models}  # the primary metrics: acc, bits per byte
    bpb = {m: per_item(db, m, GENERAL_TASK, args.general_limit) for m in models}

    def paired(values: dict, a: str, b: str):
        items = sorted(set(values[a]) & set(values[b]))
        return compare_paired([values[a][i] for i in items], [values[b][i] for i in items])

    rows = []
    for model in models:
        row = {"model": model, f"{args.task} acc": sum(acc[model].values()) / len(acc[model]),
               f"{GENERAL_TASK} bpb": sum(bpb[model].values()) / len(bpb[model])}
        rows.append(row)
    versus = {"acc": paired(acc, domain, wanda), "bpb": paired(bpb, domain, wanda)}
    lines = [f"| model | {args.task} acc (first {args.limit} test items) | {GENERAL_TASK} bits/byte "
             f"(first {args.general_limit} texts) |", "|---|---:|---:|"]
    lines += [f"| {r['model']} | {r[f'{args.task} acc']:.3f} | {r[f'{GENERAL_TASK} bpb']:.3f} |" for r in rows]
    for label, r in versus.items():
        lines.append(f"\n{domain} − {wanda}, {label}: {r.diff:+.4f} (95% CI {r.ci_low:+.4f} to {r.ci_high:+.4f}, "
                     f"{r.test}, p = {r.p_value:.3g}, {r.n_items} items)")
    text = "\n".join(lines) + "\n"
    passed = versus["acc"].diff >= 0
    (out / "table.md").write_text(text)
    (out / "table.json").write_text(json.dumps({
        "task": args.task, "sparsity": args.sparsity, "general_weight": args.general_weight, "limit": args.limit,
        "general_limit": args.general_limit, "calibration": calibration, "rows": rows,
        "domain_minus_wanda": {k: dataclasses.asdict(v) for k, v in versus.items()},
        "check": {"claim": "domain_prune accuracy >= Wanda's on the domain task", "passed": passed},
        "timing": timing}, indent=2, default=str) + "\n")
    print("\n" + text + f"\nwritten to {out}/table.md and table.json")
    if not passed:
        print(f"FAILED: {domain} keeps less of {args.task} than {wanda} at {args.sparsity:.0%}", file=sys.stderr)
        return 1
    print(f"check passed: {domain} keeps at least as much of {args.task} as {wanda}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
