"""Expert Merging, domain-aware pruning (D-Pruner-style) and adaptive MLP widths (AMP-style) on the tiny
random Llama: what each method guarantees by construction, checked exactly; byte-identical re-runs; and
bad parameters refused in one line before any model is loaded."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from harness.cli import app
from harness.variants import build
from tests.test_sparsegpt import _safetensors_sha256
from tests.test_variants import CALIBRATION, logits, make, weights

runner = CliRunner()


@pytest.fixture(scope="module")
def experts(tiny_model, tmp_path_factory) -> dict[str, str]:
    """The tiny base; expert A = base plus seeded noise everywhere; expert B = base plus noise in the norms
    only (tensors Expert Merging leaves at the base), so on every merged tensor B's task vector is 0."""
    root = tmp_path_factory.mktemp("experts")
    base = weights(tiny_model)
    paths = {"base": str(tiny_model)}
    for label, seed, only_norms in (("a", 1, False), ("b", 2, True), ("c", 3, False)):
        noise = torch.Generator().manual_seed(seed)
        tensors = {name: tensor + 0.005 * torch.randn(tensor.shape, generator=noise)
                   if not only_norms or "norm" in name else tensor for name, tensor in base.items()}
        shutil.copytree(tiny_model, root / label)
        save_file(tensors, str(root / label / "model.safetensors"), metadata={"format": "pt"})
        paths[label] = str(root / label)
    return paths


def _refused(tmp_path: Path, monkeypatch, body: str) -> str:
    """Run `variants make` on a one-variant recipe with model loading forbidden; the one output line."""
    from transformers import AutoModelForCausalLM

    from harness.variants import calibration

    def never(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(calibration, "load_model", never)
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", never)
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(f'[[variant]]\nname = "bad"\n{body}\n')
    result = runner.invoke(app, ["variants", "make", str(recipe), "--display", "none"], terminal_width=400)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


# ---------------------------------------------------------------------------------------------- Expert Merging
def test_expert_merging_learns_only_where_the_loss_has_a_gradient(experts, results_env):
    """A closed-form case: only expert A's loss counts (weights = [1, 0]) and B's task vector is 0 on every
    merged tensor, so B's coefficients get a gradient of exactly 0 and, starting at logit 0 where weight
    decay pulls nothing, stay at exactly 0.5, while A's move. Without the regulariser the objective is the
    alignment loss alone, which must end below its value at the start (the linear merge). (A's do not all
    go to 1, the global optimum: the loss is not convex in them, e.g. a query and a key projection.)"""
    out = make({"name": "em", "method": "expert_merging", "base": experts["base"], "models": [experts["a"], experts["b"]],
                "calibration": ["flores", "flores"], "weights": [1.0, 0.0], "reg_weight": 0.0, "steps": 6,
                "n_samples": 2, "seqlen": 32})["em"]
    result = out.manifest["result"]
    assert result["merged_tensors"] == 14 and result["excluded_tensors"] == 7  # 2 blocks x 7 Linear; norms, embed, head
    for name, (a, b) in result["coefficients"].items():
        assert a != [0.5], name
        assert b == [0.5], name
    assert result["alignment_loss_final"] < result["alignment_loss_first"]
    # the baked weights are base + Σ c·τ with the manifest's coefficients (rounded to 1e-6: error ≤ 5e-7·|τ|)
    merged, base, a_weights = weights(out.path), weights(Path(experts["base"])), weights(Path(experts["a"]))
    for name, tensor in merged.items():
        if name in result["coefficients"]:
            expected = base[name] + result["coefficients"][name][0][0] * (a_weights[name] - base[name])
            torch.testing.assert_close(tensor, expected, rtol=0, atol=1e-6)
        else:
            assert torch.equal(tensor, base[name]), name


@pytest.fixture(scope="module")
def merged_pair(experts, tmp_path_factory) -> build.Outcome:
    """Two different experts with the paper's defaults (regulariser 5, lr 0.5), prompts from two tasks."""
    root = tmp_path_factory.mktemp("merged")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HARNESS_RESULTS", str(root))
        patch.setenv("HARNESS_DB", str(root / "harness.duckdb"))
        return make(_pair_recipe(experts))["pair"]


def _pair_recipe(experts: dict[str, str]) -> dict:
    return {"name": "pair", "method": "expert_merging", "base": experts["base"], "models": [experts["a"], experts["c"]],
            "calibration": ["arith_add_2d", "compare_numbers"], "steps": 6, "n_samples": 3, "seqlen": 32,
            "continuation": 2, "chunks": 2, "seed": 3}


def test_expert_merging_learns_coefficients_that_differ_from_uniform(merged_pair):
    manifest = merged_pair.manifest
    result = manifest["result"]
    assert manifest["method"] == "expert_merging" and manifest["kind"] == "merge"
    assert manifest["params"]["init"] == 0.5 and manifest["params"]["calibration"] == ["arith_add_2d", "compare_numbers"]
    values = [c for per_expert in result["coefficients"].values() for chunks in per_expert for c in chunks]
    assert len(values) == 14 * 2 * 2  # tensors x experts x chunks
    assert all(0 < c < 1 for c in values)  # sigmoid-bounded
    assert result["max_abs_change_from_init"] > 1e-3 and len(set(values)) > 1
    experts_seen = manifest["calibration"]["experts"]
    assert [e["source"] for e in experts_seen] == ["arith_add_2d", "compare_numbers"]
    assert all(e["n_samples"] == 3 and e["continuation_tokens"] == 2 for e in experts_seen)


def test_expert_merging_same_recipe_and_seed_give_identical_bytes(experts, merged_pair, results_env):
    again = make(_pair_recipe(experts))["pair"]
    assert again.path != merged_pair.path
    assert _safetensors_sha256(again.path) == _safetensors_sha256(merged_pair.path)
    assert again.manifest["variant_id"] == merged_pair.manifest["variant_id"]
    assert again.manifest["result"]["coefficients"] == merged_pair.manifest["result"]["coefficients"]


def test_expert_merging_plus_plus_gives_more_chunks_to_more_important_tensors(experts, results_env):
    """Expert Merging++: the most important tensor gets `chunks` coefficients per expert, the others between
    1 and that, in the order of their importance; the manifest holds one coefficient per chunk."""
    out = make({"name": "pp", "method": "expert_merging", "base": experts["base"], "models": [experts["a"], experts["c"]],
                "steps": 3, "n_samples": 2, "seqlen": 32, "chunking": "importance", "chunks": 3})["pp"]
    result = out.manifest["result"]
    importance, chunks = result["importance"], result["chunks"]
    assert sum(importance.values()) == pytest.approx(1, abs=1e-5)  # normalised; each rounded to 1e-6
    assert chunks[max(importance, key=importance.get)] == 3 and min(chunks.values()) >= 1
    ordered = sorted(importance, key=importance.get)
    assert [chunks[name] for name in ordered] == sorted(chunks[name] for name in ordered)
    for name, per_expert in result["coefficients"].items():
        assert [len(row) for row in per_expert] == [chunks[name]] * 2, name
    assert len(result["loss_trace"]) == 6  # two stages of 3 steps


@pytest.mark.parametrize("extra,expected", [
    ('chunking = "importance"', 'chunks: chunking = "importance" needs chunks >= 2'),
    ('chunking = "layers"', "chunking: Input should be 'uniform' or 'importance'"),
    ('calibration = ["arith_add_2d"]', "calibration: 1 entries for 2 models"),
    ('calibration = ["flores", "no_such_task"]', "unknown task 'no_such_task'"),
    ("init = 1.0", "init: Input should be less than 1"),
    ("steps = 0", "steps: Input should be greater than or equal to 1"),
    ("weights = [0.0, 0.0]", "weights: loss weights must be >= 0 and not all 0"),
    ("hidden_layers = [-1]", "hidden_layers: give distinct layer indices"),
    ("hidden_layers = [7]", "hidden_layers 7 is not a block of the base (it has 2 blocks"),
    ("lambda = 1.0", "lambda: Extra inputs are not permitted"),
])
def test_expert_merging_refuses_bad_parameters_before_loading(experts, results_env, tmp_path, monkeypatch, extra,
                                                               expected):
    line = _refused(tmp_path, monkeypatch, f'method = "expert_merging"\nbase = "{experts["base"]}"\n'
                                           f'models = ["{experts["a"]}", "{experts["c"]}"]\n{extra}')
    assert expected in line


# ---------------------------------------------------------------------------------------------- domain pruning
@pytest.fixture(scope="module")
def domain_made(tiny_model, tmp_path_factory) -> dict[str, build.Outcome]:
    root = tmp_path_factory.mktemp("domain")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HARNESS_RESULTS", str(root))
        patch.setenv("HARNESS_DB", str(root / "harness.duckdb"))
        common = {"method": "domain_prune", "parent": str(tiny_model), "sparsity": 0.5, "domain": "arith_add_2d",
                  **CALIBRATION}
        return make({"name": "dual", "general_weight": 1.0, **common}, {"name": "domain", "general_weight": 0.0, **common})


def _decoder(folder: Path) -> dict[str, torch.Tensor]:
    return {n: t for n, t in weights(folder).items() if n.startswith("model.layers.") and t.ndim == 2}


def test_domain_prune_removes_exactly_half_of_every_row_and_the_general_weight_matters(tiny_model, domain_made):
    parent = weights(tiny_model)
    dual, domain = _decoder(domain_made["dual"].path), _decoder(domain_made["domain"].path)
    differ = 0
    for name, tensor in dual.items():
        assert torch.all((tensor == 0).sum(dim=1) == tensor.shape[1] // 2), name
        assert torch.equal(tensor[tensor != 0], parent[name][tensor != 0])  # no weight update
        differ += int(((tensor == 0) != (domain[name] == 0)).sum())
    assert differ > 0, "general_weight 1 and 0 gave the same masks"
    manifest = domain_made["dual"].manifest
    assert manifest["achieved_sparsity"] == 0.5
    assert manifest["params"] == {"sparsity": 0.5, "pattern": "unstructured", "n_samples": 4, "seqlen": 64,
                                  "domain": "arith_add_2d", "general_weight": 1.0}
    assert set(manifest["calibration"]) == {"general", "domain"}
    assert manifest["calibration"]["general"]["token_ids_sha256"] != manifest["calibration"]["domain"]["token_ids_sha256"]


def test_domain_prune_removes_the_lowest_dual_scores_and_so_the_least_domain_error(tiny_model, domain_made):
    """What the construction guarantees (our reading of D-Pruner, arXiv 2405.06275; harness/variants/domain_prune.py),
    checked exactly on the first block, whose inputs no pruning has touched: every row loses its lowest scores
    S = |W_ij|·sqrt(E_domain[x_j²] + λ·E_general[x_j²]), recomputed here from the recorded windows with a
    dense forward pass; and with λ = 0 the layer-wise domain error the removed weights cost, Σ w²·E_domain[x²],
    is at most that of the general-only (Wanda) mask, row by row, as a per-row minimum must be."""
    from harness.variants.calibration import calibration_batch, load_model
    from harness.variants.domain_prune import domain_batch

    model, tokenizer = load_model(tiny_model)
    general = calibration_batch(tokenizer, 4, 64, 0)
    domain = domain_batch(tokenizer, "arith_add_2d", 4, 64, 0)
    assert domain.record["token_ids_sha256"] == domain_made["dual"].manifest["calibration"]["domain"]["token_ids_sha256"]
    block = model.model.layers[0]
    linears = {name: module for name, module in block.named_modules() if isinstance(module, torch.nn.Linear)}
    mean_sq: dict[str, list[torch.Tensor]] = {name: [] for name in linears}
    handles = [module.register_forward_pre_hook(
        lambda _m, args, name=name: mean_sq[name].append((args[0].double() ** 2).reshape(-1, args[0].shape[-1]).mean(0)))
        for name, module in linears.items()]
    with torch.no_grad():
        for ids in (general.input_ids, domain.input_ids):
            model.model(input_ids=ids, use_cache=False)
    for handle in handles:
        handle.remove()
    dual, domain_only = _decoder(domain_made["dual"].path), _decoder(domain_made["domain"].path)
    for name, (e_general, e_domain) in mean_sq.items():
        tensor = f"model.layers.0.{name}.weight"
        w = weights(tiny_model)[tensor].double()
        for made, lam in ((dual, 1.0), (domain_only, 0.0)):
            score = w.abs() * (e_domain + lam * e_general).sqrt()
            removed = made[tensor] == 0
            for row in range(score.shape[0]):
                assert score[row][removed[row]].max() <= score[row][~removed[row]].min() * (1 + 1e-6), (tensor, row)
        k = w.shape[1] // 2
        wanda = torch.zeros_like(removed).scatter_(1, (w.abs() * e_general.sqrt()).argsort(dim=1, stable=True)[:, :k], True)
        cost = w * w * e_domain
        ours = (cost * (domain_only[tensor] == 0)).sum(dim=1)
        assert torch.all(ours <= (cost * wanda).sum(dim=1) * (1 + 1e-9)), tensor


def test_domain_prune_takes_a_text_file_and_two_four(tiny_model, results_env, tmp_path):
    text = tmp_path / "domain.txt"
    text.write_text("the cat sat on the mat. " * 200)
    out = make({"name": "file24", "method": "domain_prune", "parent": str(tiny_model), "pattern": "2:4",
                "domain": str(text), **CALIBRATION})["file24"]
    for name, tensor in _decoder(out.path).items():
        assert torch.all((tensor.reshape(tensor.shape[0], -1, 4) == 0).sum(dim=-1) == 2), name
    assert out.manifest["calibration"]["domain"]["dataset"] == f"text file {text}"
    assert out.manifest["params"]["sparsity"] == 0.5


@pytest.mark.parametrize("extra,expected", [
    ('domain = "arith_add_2d"', "sparsity is required for unstructured pruning"),
    ('sparsity = 0.5', "domain: Field required"),
    ('sparsity = 0.5\ndomain = "no/such/file.txt"', "domain: 'no/such/file.txt' is neither"),
    ('sparsity = 0.5\ndomain = "arith_add_2d"\ngeneral_weight = -1', "general_weight: Input should be greater"),
    ('sparsity = 1.0\ndomain = "arith_add_2d"', "sparsity: Input should be less than 1"),
    ('sparsity = 0.5\ndomain = "english_flores"', "task 'english_flores' has no train/validation split"),
])
def test_domain_prune_refuses_bad_parameters_before_loading(tiny_model, results_env, tmp_path, monkeypatch, extra,
                                                            expected):
    line = _refused(tmp_path, monkeypatch, f'method = "domain_prune"\nparent = "{tiny_model}"\n{extra}')
    assert expected in line


# ---------------------------------------------------------------------------------------------- adaptive widths
@pytest.fixture(scope="module")
def adaptive(tiny_model, tmp_path_factory) -> build.Outcome:
    root = tmp_path_factory.mktemp("adaptive")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HARNESS_RESULTS", str(root))
        patch.setenv("HARNESS_DB", str(root / "harness.duckdb"))
        return make({"name": "amp", "method": "mlp_width", "parent": str(tiny_model), "ratio": 0.25, "multiple": 16,
                     "adaptive": True, "search_rounds": 5, "search_samples": 2, **CALIBRATION})["amp"]


def test_adaptive_widths_spend_exactly_the_uniform_budget_and_differ(adaptive):
    result = adaptive.manifest["result"]
    uniform = 192  # round(0.75 * 256 / 16) * 16: what the uniform mlp_width keeps in each of the 2 blocks
    assert result["uniform_width"] == uniform and result["budget"] == 2 * uniform
    assert sum(result["widths"]) == result["kept_neurons"] == 2 * uniform
    assert len(set(result["widths"])) > 1, result["widths"]
    assert all(w % 16 == 0 and 16 <= w <= 256 for w in result["widths"])
    assert [len(result["removed_neurons"][str(i)]) for i in range(2)] == [256 - w for w in result["widths"]]


def test_adaptive_widths_equal_the_parent_with_those_neurons_zeroed(tiny_model, adaptive):
    """Physically as wide as the widest block, the narrower ones zero-padded: exactly the parent with the
    removed neurons zeroed (reference variants.md §4.3: zero-padding is equivalent to removal)."""
    from transformers import AutoModelForCausalLM

    result, manifest = adaptive.manifest["result"], adaptive.manifest
    widest = max(result["widths"])
    assert json.loads((adaptive.path / "config.json").read_text())["intermediate_size"] == widest
    assert manifest["physical_shapes_equal_parent"] is (widest == 256)
    assert result["zero_padded"] is True and result["padded_neurons"] == sum(widest - w for w in result["widths"])
    assert manifest["notes"] and "zero-padded" in manifest["notes"][0]
    assert result["effective_param_count"] == manifest["param_count"] - 3 * 128 * result["padded_neurons"]
    zeroed = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    with torch.no_grad():
        for index, removed in result["removed_neurons"].items():
            mlp = zeroed.model.layers[int(index)].mlp
            mlp.gate_proj.weight[removed] = 0
            mlp.up_proj.weight[removed] = 0
            mlp.down_proj.weight[:, removed] = 0
    torch.testing.assert_close(logits(adaptive.path), logits(adaptive.path, zeroed), rtol=0, atol=1e-5)


def test_adaptive_search_stops_at_the_smallest_tolerance_that_fits(adaptive):
    """The bisection keeps the smallest tried tolerance whose widths fit the budget; every smaller tried
    tolerance kept more neurons than the budget (before the left-over neurons are handed back)."""
    result = adaptive.manifest["result"]
    trace = result["search_trace"]
    fitting = [t["tolerance"] for t in trace if t["total"] <= result["budget"]]
    assert result["tolerance"] == min(fitting)
    assert all(t["total"] > result["budget"] for t in trace if t["tolerance"] < result["tolerance"])
    assert trace[0]["tolerance"] == pytest.approx(math.log(1.02))  # AMP's tolerance is where the search starts


def test_an_adaptive_variant_is_evaluated_by_name(adaptive, monkeypatch):
    import duckdb

    results = adaptive.path.parents[1]
    monkeypatch.setenv("HARNESS_RESULTS", str(results))
    monkeypatch.setenv("HARNESS_DB", str(results / "harness.duckdb"))
    done = runner.invoke(app, ["eval", "--models", "amp", "--tasks", "seq_next", "--limit", "5", "--display", "none"])
    assert done.exit_code == 0, done.output
    with duckdb.connect(str(results / "harness.duckdb"), read_only=True) as con:
        runs = con.execute("""SELECT count(*) FROM runs JOIN models USING (model_id)
                              WHERE name = 'amp' AND status = 'done'""").fetchone()[0]
    assert runs == 1


def test_uniform_mlp_width_keeps_its_variant_id(tiny_model):
    """Adding `adaptive` must not change what existing uniform recipes hash to."""
    from harness.variants.recipe import parse_recipe

    (spec,) = parse_recipe({"variant": [{"name": "u", "method": "mlp_width", "parent": str(tiny_model)}]})
    assert spec.params() == {"n_samples": 32, "seqlen": 512, "ratio": 0.2, "multiple": 64}


@pytest.mark.parametrize("extra,expected", [
    ("search_rounds = 4", "search_rounds applies to adaptive = true only"),
    ("adaptive = true\nsearch_samples = 64", "search_samples 64 is more than n_samples 32"),
    ("adaptive = true\nsearch_rounds = 0", "search_rounds: Input should be greater than or equal to 1"),
    ('adaptive = "maybe"', "adaptive: Input should be a valid boolean"),
])
def test_adaptive_refuses_bad_parameters_before_loading(tiny_model, results_env, tmp_path, monkeypatch, extra,
                                                        expected):
    line = _refused(tmp_path, monkeypatch, f'method = "mlp_width"\nparent = "{tiny_model}"\n{extra}')
    assert expected in line
