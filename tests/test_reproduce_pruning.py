"""scripts/reproduce_pruning.py: the generated recipe, the ordering check, and a whole run on a tiny
random Llama (variants made and registered, scores read back from exactly its runs, the curve drawn,
the exit status agreeing with the numbers, and a second run that makes and evaluates nothing new)."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pandas as pd
import pytest

from harness.store import Store
from harness.variants.recipe import parse_recipe

REPO = Path(__file__).resolve().parents[1]


def _load_script():
    spec = importlib.util.spec_from_file_location("reproduce_pruning", REPO / "scripts" / "reproduce_pruning.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rp = _load_script()


def test_recipe_round_trips_through_the_recipe_parser():
    entries = rp.recipe_entries("smollm2-135m", "smollm2", [0.3, 0.5], n_samples=8, seqlen=256)
    import tomllib

    specs = parse_recipe(tomllib.loads(rp.recipe_toml(entries)))
    assert [s.name for s in specs] == ["smollm2-magnitude30", "smollm2-magnitude50", "smollm2-wanda30",
                                       "smollm2-wanda50"]
    assert [s.params()["sparsity"] for s in specs] == [0.3, 0.5, 0.3, 0.5]
    assert specs[3].params()["n_samples"] == 8 and specs[3].params()["seqlen"] == 256


def test_demo_recipe_shares_the_script_defaults():
    """The demo's magnitude/Wanda 30% and 50% variants must be the script's (same names, same weights),
    or the store refuses the second name for the same weights."""
    import tomllib

    demo = {e["name"]: e for e in tomllib.loads((REPO / "examples" / "variants.toml").read_text())["variant"]}
    mine = {e["name"]: e for e in rp.recipe_entries("smollm2-135m", "smollm2", [0.3, 0.5], rp.DEFAULT_N_SAMPLES,
                                                     rp.DEFAULT_SEQLEN)}
    for name, entry in mine.items():
        assert demo[name] == entry


def _table(wanda: float, magnitude: float) -> pd.DataFrame:
    return pd.DataFrame({"method": ["dense", "magnitude", "wanda", "magnitude", "wanda"],
                         "sparsity": [0.0, 0.3, 0.3, 0.5, 0.5],
                         "bits_per_byte": [1.0, 1.1, 1.05, magnitude, wanda]})


def test_ordering_check():
    assert rp.ordering_failure(_table(wanda=1.2, magnitude=1.5)) is None
    assert rp.ordering_failure(_table(wanda=1.5, magnitude=1.5)) is None
    reason = rp.ordering_failure(_table(wanda=1.6, magnitude=1.5))
    assert "Wanda (1.6000 bits/byte) is worse than magnitude (1.5000)" in reason
    missing = _table(1.2, 1.5)
    missing.loc[4, "bits_per_byte"] = float("nan")
    assert "no bits_per_byte for wanda" in rp.ordering_failure(missing)


def test_domain_pruning_rows_share_the_domain_scripts_variant_and_are_not_checked():
    """--domain adds domain_prune at every sparsity under the name and recipe scripts/reproduce_domain_pruning.py
    gives the 50% one (the store refuses two names for the same weights); a domain-pruned model worse than
    magnitude on general text does not fail the published-ordering check, which is about Wanda and SparseGPT."""
    import tomllib

    spec = importlib.util.spec_from_file_location("reproduce_domain_pruning",
                                                  REPO / "scripts" / "reproduce_domain_pruning.py")
    dp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dp)
    entries = rp.recipe_entries("smollm2-135m", "smollm2", [0.3, 0.5], 8, 256, (*rp.WITH_SPARSEGPT, "domain_prune"),
                                domain="arith_add_2d")
    specs = parse_recipe(tomllib.loads(rp.recipe_toml(entries)))
    assert [s.name for s in specs][-2:] == ["smollm2-domain30-arith-add-2d", "smollm2-domain50-arith-add-2d"]
    theirs = parse_recipe(tomllib.loads(dp.recipe_toml(dp.entries_for("smollm2-135m", "smollm2", "arith_add_2d", 0.5,
                                                                      0.1, 8, 256))))
    assert specs[-1] == theirs[1] and specs[3] == theirs[0]  # domain and Wanda 50%: the same recipes
    table = pd.DataFrame({"method": ["dense", "magnitude", "wanda", "sparsegpt", "domain_prune"],
                          "sparsity": [0.0, 0.5, 0.5, 0.5, 0.5], "bits_per_byte": [1.2, 2.1, 1.43, 1.42, 2.5]})
    assert rp.ordering_failure(table) is None
    assert list(rp.side_by_side(table).columns) == ["magnitude", "wanda", "sparsegpt", "domain_prune",
                                                    "wanda - magnitude", "sparsegpt - wanda", "domain_prune - wanda"]


def test_sparsities_must_include_the_checked_point():
    assert rp.parse_sparsities("0.5,0.1,0.3,0.5") == [0.1, 0.3, 0.5]
    for bad, message in (("0.1,0.3", "must include 0.5"), ("0.5,1.0", "outside"), ("0.5,x", "comma-separated")):
        with pytest.raises(SystemExit, match=message):
            rp.parse_sparsities(bad)


def test_whole_run_on_a_tiny_model(tiny_model, results_env, capsys):
    out = results_env / "reproduce" / "pruning"
    args = ["--parent", str(tiny_model), "--prefix", "tiny", "--sparsities", "0.3,0.5", "--limit", "3",
            "--n-samples", "2", "--seqlen", "32", "--display", "none"]
    status = rp.main(args)
    table = pd.read_csv(out / "table.csv")
    assert list(table["variant"]) == ["tiny", "tiny-magnitude30", "tiny-magnitude50", "tiny-wanda30", "tiny-wanda50"]
    assert table["bits_per_byte"].notna().all() and (table["bits_per_byte"] > 0).all()
    assert table.loc[1:, "achieved_sparsity"].sub(table.loc[1:, "sparsity"]).abs().max() < 0.01
    at_half = table[table["sparsity"] == 0.5].set_index("method")["bits_per_byte"]
    assert status == (0 if at_half["wanda"] <= at_half["magnitude"] else 1)  # a random model may go either way
    meta = json.loads((out / "table.json").read_text())
    assert meta["check"]["passed"] == (status == 0) and meta["texts"] == 3
    assert (out / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Store.open(Path(os.environ["HARNESS_DB"]), read_only=True) as store:
        variants = store.variant_rows()
        runs = store.con.execute("SELECT count(*) FROM runs WHERE status = 'done'").fetchone()[0]
    assert set(variants["variant"]) == set(table["variant"][1:]) and set(variants["parent"]) == {"tiny"}
    capsys.readouterr()

    assert rp.main(args) == status  # resumed: nothing made, nothing evaluated again
    with Store.open(Path(os.environ["HARNESS_DB"]), read_only=True) as store:
        assert store.con.execute("SELECT count(*) FROM runs").fetchone()[0] == runs
    assert pd.read_csv(out / "table.csv").equals(table)
