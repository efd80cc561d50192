"""Bits per byte against sparsity for magnitude and Wanda (with --sparsegpt also SparseGPT, with --domain
TASK also domain pruning) of the embedded SmolLM2-135M.

The published ordering (Wanda, Sun et al. 2023, arXiv:2306.11695; its README's LLaMA-2 table): at
50% unstructured sparsity Wanda's perplexity is below magnitude pruning's at every scale (7B, 13B,
70B). This rebuilds the comparison from the harness's own parts: the variants come from a generated
recipe (`harness variants make`, so they are registered with their parent and `harness report` shows
them), they are scored on the english_flores task (FLORES+ English, bits per byte) through the store
(`harness eval`: cached and resumable, so a re-run only redoes what is missing), and drawn with the
report's quality-vs-sparsity figure. It exits 1, naming both numbers, when Wanda is worse than
magnitude at 50%.

With --sparsegpt, SparseGPT (Frantar & Alistarh 2023, arXiv:2301.00774) is made at the same sparsities
on the same calibration windows and drawn beside them; the published ordering is SparseGPT ≈ Wanda ≪
magnitude at 50% (LLaMA-2-7B: 6.51, 6.42, 14.89), so the check then also fails when SparseGPT is worse
than magnitude at 50%. `make reproduce-pruning` passes it.

With --domain TASK, domain pruning (D-Pruner-style, harness/variants/domain_prune.py) with TASK's train
split as the domain is made at every sparsity: its column is what keeping a domain costs on general
text. It is reported, not checked (scripts/reproduce_domain_pruning.py checks what it keeps of the domain).

The calibration windows are drawn from the same FLORES+ text the task scores (the manifest records the
overlap); Wanda uses them only for per-feature activation norms, not to fit the text.

Writes results/reproduce/pruning/{recipe.toml, curve.png, table.csv, table.json}.
Run: python scripts/reproduce_pruning.py [--sparsities 0.1,0.2,...] [--limit N] [--sparsegpt] [--domain TASK]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pandas as pd  # noqa: E402

TASK = "english_flores"
METRIC = "bits_per_byte"
METHODS = ("magnitude", "wanda")
WITH_SPARSEGPT = (*METHODS, "sparsegpt")
ALL_METHODS = (*WITH_SPARSEGPT, "domain_prune")  # the column order of every table
CALIBRATED = ("wanda", "sparsegpt", "domain_prune")
LABELS = {"magnitude": "magnitude", "wanda": "Wanda", "sparsegpt": "SparseGPT", "domain_prune": "domain pruning"}
CHECK_AT = 0.5
# Defaults shared with examples/variants.toml (the demo's recipe): equal recipes give the same variant
# names and weights, so the demo's magnitude and Wanda 30% and 50% variants are reused, not made twice.
DEFAULT_SPARSITIES = "0.1,0.2,0.3,0.4,0.5,0.6,0.7"
DEFAULT_N_SAMPLES = 8
DEFAULT_SEQLEN = 256
# make demo's --limit: the store's leaderboard keeps each model's run with the most texts, so equal
# limits keep the demo's ranking and this curve on the same texts.
DEFAULT_LIMIT = 20


def variant_name(prefix: str, method: str, sparsity: float, domain: str | None = None) -> str:
    """PREFIX-METHOD<percent>; domain pruning PREFIX-domain<percent>-<domain>, the name
    scripts/reproduce_domain_pruning.py gives the same recipe (the store refuses two names for one weights)."""
    if method == "domain_prune":
        return f"{prefix}-domain{round(sparsity * 100)}-{domain.replace('_', '-')}"
    return f"{prefix}-{method}{round(sparsity * 100)}"


def recipe_entries(parent: str, prefix: str, sparsities: list[float], n_samples: int, seqlen: int,
                   methods: tuple[str, ...] = METHODS, domain: str | None = None) -> list[dict]:
    """One unstructured variant per method and sparsity; the calibrated ones with one calibration size;
    domain pruning with `domain` as its domain text and the recipe's default general weight."""
    entries = []
    for method in methods:
        for sparsity in sparsities:
            entry = {"name": variant_name(prefix, method, sparsity, domain), "parent": parent, "method": method,
                     "sparsity": sparsity}
            if method == "domain_prune":
                entry |= {"domain": domain}
            if method in CALIBRATED:
                entry |= {"n_samples": n_samples, "seqlen": seqlen}
            entries.append(entry)
    return entries


def recipe_toml(entries: list[dict]) -> str:
    """The recipe as TOML (flat string/number tables only, which is all `recipe_entries` makes)."""
    blocks = []
    for entry in entries:
        lines = ["[[variant]]"]
        lines += [f"{key} = {json.dumps(value)}" for key, value in entry.items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def ordering_failure(table: pd.DataFrame, at: float = CHECK_AT) -> str | None:
    """None when Wanda's (and SparseGPT's, when the table has it) bits per byte at sparsity `at` is at most
    magnitude's, else the reason (one line).

    `table` has one row per point: method, sparsity (nominal), bits_per_byte."""
    rows = table[(table["sparsity"] - at).abs() < 1e-9].set_index("method")[METRIC]
    methods = table_methods(table)
    missing = [m for m in methods if m not in rows.index or pd.isna(rows.get(m))]
    if missing:
        return f"no {METRIC} for {' and '.join(missing)} at sparsity {at:g}: nothing to compare"
    for method in ("wanda", "sparsegpt"):
        if method in methods and rows[method] > rows["magnitude"]:
            return (f"at {at:.0%} unstructured sparsity {LABELS[method]} ({rows[method]:.4f} bits/byte) is worse "
                    f"than magnitude ({rows['magnitude']:.4f}), against the published ordering")
    return None


def table_methods(table: pd.DataFrame) -> tuple[str, ...]:
    """The pruning methods a results table holds, in table order (magnitude and Wanda always; SparseGPT and
    domain pruning when made). Domain pruning is drawn and listed, not checked: it trades general text
    for its domain by design."""
    return tuple(m for m in ALL_METHODS if m in METHODS or (table["method"] == m).any())


def curve_frame(table: pd.DataFrame, parent: str) -> pd.DataFrame:
    """The rows `plot_quality_vs_sparsity` draws: achieved sparsity, with the dense parent at 0 on each line."""
    methods = table_methods(table)
    points = table[table["method"].isin(methods)]
    dense = table.loc[table["method"] == "dense", METRIC].iloc[0]
    curve = pd.DataFrame({"parent": parent, "method": points["method"], "sparsity": points["achieved_sparsity"],
                          "score": points[METRIC]})
    anchors = pd.DataFrame({"parent": parent, "method": list(methods), "sparsity": 0.0, "score": dense})
    return pd.concat([anchors, curve], ignore_index=True)


def harness(*args: str) -> None:
    """Run a harness verb in this process, exactly as on the command line; stop on failure."""
    from harness.cli import app

    code = app(args=list(args), prog_name="harness", standalone_mode=False)
    if code:
        raise SystemExit(f"reproduce-pruning: `harness {' '.join(args)}` failed (exit {code})")


def stored_points(db: Path, names: list[str], limit: int | None) -> dict[str, tuple[float | None, float | None]]:
    """Per model: bits per byte of its latest finished english_flores run with exactly this --limit (hf,
    float32; not the leaderboard's pick, which prefers whichever run covered the most texts), and the
    achieved sparsity its manifest records (None for the dense parent)."""
    from harness.store import Store

    with Store.open(db, read_only=True) as store:
        rows = store.con.execute(
            f"""SELECT m.name, s.value FROM runs r
                JOIN models m USING (model_id) JOIN tasks t USING (task_id) JOIN scores s USING (run_id)
                WHERE t.name = ? AND s.metric = ? AND r.status = 'done' AND r.backend = 'hf'
                  AND r.backend_args->>'dtype' = 'float32' AND r.item_limit IS NOT DISTINCT FROM ?
                  AND m.name IN ({', '.join('?' * len(names))})
                ORDER BY r.finished_at""", [TASK, METRIC, limit, *names]).fetchall()
        sparsity = dict(store.variant_rows()[["variant", "sparsity"]].itertuples(index=False))
    scores = dict(rows)
    return {name: (scores.get(name), sparsity.get(name)) for name in names}


def results_table(points: dict, parent: str, prefix: str, sparsities: list[float],
                  methods: tuple[str, ...] = METHODS, domain: str | None = None) -> pd.DataFrame:
    """One row for the dense parent and one per (method, sparsity), with the change against the parent."""
    dense = points[parent][0]
    rows = [{"method": "dense", "sparsity": 0.0, "achieved_sparsity": 0.0, "variant": parent, METRIC: dense}]
    for method in methods:
        for sparsity in sparsities:
            name = variant_name(prefix, method, sparsity, domain)
            value, achieved = points[name]
            rows.append({"method": method, "sparsity": sparsity, "achieved_sparsity": achieved, "variant": name,
                         METRIC: value})
    table = pd.DataFrame(rows)
    table["delta vs dense"] = table[METRIC] - dense
    return table


def side_by_side(table: pd.DataFrame) -> pd.DataFrame:
    """Sparsity down, methods across (the dense parent on the 0 row of each), Wanda minus magnitude and
    each further method minus Wanda."""
    methods = table_methods(table)
    points = table[table["method"].isin(methods)]
    wide = points.pivot(index="sparsity", columns="method", values=METRIC)[list(methods)]
    dense = table.loc[table["method"] == "dense", METRIC].iloc[0]
    wide = pd.concat([pd.DataFrame({m: [dense] for m in methods}, index=[0.0]), wide])
    wide.index.name = "sparsity"
    wide = wide.assign(**{"wanda - magnitude": wide["wanda"] - wide["magnitude"]})
    for method in methods[2:]:
        wide = wide.assign(**{f"{method} - wanda": wide[method] - wide["wanda"]})
    return wide


def parse_sparsities(text: str) -> list[float]:
    try:
        values = sorted({round(float(part), 6) for part in text.split(",") if part.strip()})
    except ValueError:
        raise SystemExit(f"--sparsities '{text}': expected comma-separated numbers, e.g. 0.1,0.3,0.5") from None
    bad = [v for v in values if not 0 < v < 1]
    if bad:
        raise SystemExit(f"--sparsities: {bad[0]:g} is outside (0, 1)")
    if CHECK_AT not in values:
        raise SystemExit(f"--sparsities must include {CHECK_AT:g}: the published ordering is checked there")
    return values


def main(argv: list[str] | None = None) -> int:
    from harness.common.paths import default_db, results_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parent", default="smollm2-135m", help="model to prune (embedded name or HF folder)")
    parser.add_argument("--prefix", default="smollm2", help="variant names are PREFIX-METHOD<percent>")
    parser.add_argument("--sparsities", default=DEFAULT_SPARSITIES, help="comma-separated, must include 0.5")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                        help=f"score the first N {TASK} texts (0 = all 506)")
    parser.add_argument("--n-samples", type=int, default=DEFAULT_N_SAMPLES,
                        help="calibration windows (Wanda, SparseGPT, domain pruning)")
    parser.add_argument("--seqlen", type=int, default=DEFAULT_SEQLEN, help="tokens per calibration window")
    parser.add_argument("--sparsegpt", action="store_true",
                        help="also make and score SparseGPT at every sparsity (about half again the run time)")
    parser.add_argument("--domain", default=None,
                        help="also make and score domain pruning with this domain (a built-in task with a train "
                             "split, e.g. arith_add_2d) at every sparsity: what it costs on general text")
    parser.add_argument("--db", type=Path, default=None, help="store (default: results/harness.duckdb)")
    parser.add_argument("--out", type=Path, default=None, help="default: results/reproduce/pruning")
    parser.add_argument("--display", default="plain", choices=("rich", "plain", "none"))
    args = parser.parse_args(argv)
    sparsities = parse_sparsities(args.sparsities)
    limit = args.limit or None
    db = args.db or default_db()
    out = args.out or results_dir() / "reproduce" / "pruning"
    out.mkdir(parents=True, exist_ok=True)

    methods = (*(WITH_SPARSEGPT if args.sparsegpt else METHODS), *(("domain_prune",) if args.domain else ()))
    entries = recipe_entries(args.parent, args.prefix, sparsities, args.n_samples, args.seqlen, methods, args.domain)
    recipe = out / "recipe.toml"
    recipe.write_text(recipe_toml(entries))
    harness("variants", "make", str(recipe), "--db", str(db), "--display", args.display)
    names = [args.parent, *(entry["name"] for entry in entries)]
    limit_args = ["--limit", str(limit)] if limit else []
    harness("eval", "--models", ",".join(names), "--tasks", TASK, *limit_args, "--db", str(db),
            "--display", args.display)

    from harness.report.plots import plot_quality_vs_sparsity

    parent_name = Path(args.parent).name if Path(args.parent).exists() else args.parent
    points = stored_points(db, [parent_name, *names[1:]], limit)
    table = results_table(points, parent_name, args.prefix, sparsities, methods, args.domain)
    table.to_csv(out / "table.csv", index=False)
    failure = ordering_failure(table)
    meta = {"task": TASK, "metric": METRIC, "texts": limit or "all", "parent": parent_name,
            "methods": list(methods), "wanda_calibration": {"n_samples": args.n_samples, "seqlen": args.seqlen},
            "domain": args.domain,
            "check": {"at": CHECK_AT, "passed": failure is None, "reason": failure},
            "rows": json.loads(table.to_json(orient="records"))}
    (out / "table.json").write_text(json.dumps(meta, indent=2) + "\n")
    ylabel = f"bits per byte, {TASK} ({limit or 'all'} texts; lower is better)"
    plot_quality_vs_sparsity(curve_frame(table, parent_name), out / "curve.png", ylabel)

    print(f"\n{METRIC} on {TASK} ({limit or 'all'} texts) by nominal sparsity; dense {parent_name} at 0")
    print(side_by_side(table).to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"\nwrote {out / 'curve.png'}, {out / 'table.csv'}, {out / 'table.json'}")
    if failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    which = "neither Wanda nor SparseGPT is" if args.sparsegpt else "Wanda is not"
    print(f"check passed: at {CHECK_AT:.0%} sparsity {which} worse than magnitude (published ordering)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
