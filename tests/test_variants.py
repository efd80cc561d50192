"""Variants on tiny random Llamas: the exact invariants of every merge and prune method, reproducible
hashes, bad input that writes nothing, and a pruned variant evaluated and stored beside its parent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from harness.cli import app
from harness.common.errors import HarnessError
from harness.variants import build, merge
from harness.variants.recipe import parse_recipe

REPO = Path(__file__).resolve().parents[1]
CALIBRATION = {"n_samples": 4, "seqlen": 64}
runner = CliRunner()


class _Quiet:
    def start(self, total: int) -> None:
        pass

    def advance(self) -> None:
        pass


def make(*variants: dict) -> dict[str, build.Outcome]:
    """Make variants through the same path as the CLI, into the current HARNESS_RESULTS / HARNESS_DB."""
    outcomes = build.make(parse_recipe({"variant": list(variants)}), Path(os.environ["HARNESS_DB"]),
                          lambda name: _Quiet())
    return {outcome.name: outcome for outcome in outcomes}


def merged(tmp_path: Path, variant: dict) -> dict[str, torch.Tensor]:
    """Run one merge directly (no store): for invariants whose output equals a parent, which `make` refuses."""
    (spec,) = parse_recipe({"variant": [{"name": "m", **variant}]})
    base = Path(variant["base"]) if "base" in variant else None
    merge.merge(spec, base, [Path(m) for m in variant["models"]], tmp_path, _Quiet())
    return weights(tmp_path)


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def logits(folder: Path, model=None) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    model = model or AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    with torch.no_grad():
        return model.eval()(torch.arange(3, 40).unsqueeze(0), use_cache=False).logits


def _copy_with(base: Path, out: Path, tensors: dict[str, torch.Tensor]) -> Path:
    shutil.copytree(base, out)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out


@pytest.fixture(scope="module")
def family(tiny_model, tmp_path_factory) -> dict[str, Path]:
    """The tiny base, two 'fine-tuned' experts (base plus seeded noise, same tokenizer), and a model of
    another architecture and one with another tokenizer for the refusals."""
    from transformers import LlamaConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("family")
    base = weights(tiny_model)
    paths = {"base": tiny_model}
    for seed, scale in ((1, 0.02), (2, 0.03)):
        noise = torch.Generator().manual_seed(seed)
        paths[f"expert{seed}"] = _copy_with(tiny_model, root / f"expert{seed}", {
            name: tensor + scale * torch.randn(tensor.shape, generator=noise) for name, tensor in base.items()})
    config = LlamaConfig.from_pretrained(tiny_model)
    config.num_hidden_layers = 1
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(root / "one-layer")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(tiny_model / name, root / "one-layer" / name)
    paths["one_layer"] = root / "one-layer"
    other = _copy_with(tiny_model, root / "other-tokenizer", base)
    vocab = json.loads((other / "tokenizer.json").read_text())
    vocab["model"]["vocab"]["renamed-token"] = vocab["model"]["vocab"].pop(next(iter(vocab["model"]["vocab"])))
    (other / "tokenizer.json").write_text(json.dumps(vocab))
    paths["other_tokenizer"] = other
    no_weights = root / "no-weights"
    shutil.copytree(tiny_model, no_weights, ignore=shutil.ignore_patterns("*.safetensors"))
    paths["no_weights"] = no_weights
    return {key: str(value) for key, value in paths.items()}


# ---------------------------------------------------------------------------------------------- merges
def test_linear_with_weights_one_zero_is_model_a(family, tmp_path):
    out = merged(tmp_path, {"method": "linear", "models": [family["expert1"], family["expert2"]],
                            "weights": [1.0, 0.0]})
    a = weights(Path(family["expert1"]))
    assert all(torch.equal(tensor, a[name]) for name, tensor in out.items())


def test_task_arithmetic_with_lambda_zero_is_the_base(family, tmp_path):
    out = merged(tmp_path, {"method": "task_arithmetic", "base": family["base"],
                            "models": [family["expert1"], family["expert2"]], "lambda": 0.0})
    base = weights(Path(family["base"]))
    assert all(torch.equal(tensor, base[name]) for name, tensor in out.items())


def test_ties_with_one_expert_and_density_one_is_the_expert(family, tmp_path):
    out = merged(tmp_path, {"method": "ties", "base": family["base"], "models": [family["expert1"]],
                            "density": 1.0})
    expert = weights(Path(family["expert1"]))
    for name, tensor in out.items():
        torch.testing.assert_close(tensor, expert[name], rtol=0, atol=1e-6)


def test_dare_with_density_one_is_task_arithmetic(family, tmp_path):
    common = {"base": family["base"], "models": [family["expert2"]], "weights": [0.7]}
    (tmp_path / "dare").mkdir()
    (tmp_path / "ta").mkdir()
    dare = merged(tmp_path / "dare", {"method": "dare_ties", "density": 1.0, "seed": 5, **common})
    ta = merged(tmp_path / "ta", {"method": "task_arithmetic", **common})
    assert all(torch.equal(tensor, ta[name]) for name, tensor in dare.items())


def test_ties_equals_the_reference_formula(family, results_env):
    w, density, lam = [1.0, 0.5], 0.3, 0.8
    out = make({"name": "ties", "method": "ties", "base": family["base"],
                "models": [family["expert1"], family["expert2"]], "weights": w, "density": density,
                "lambda": lam})["ties"]
    base, experts = weights(Path(family["base"])), [weights(Path(family[e])) for e in ("expert1", "expert2")]
    for name, merged in weights(out.path).items():
        trimmed = []
        for expert in experts:
            delta = (expert[name] - base[name]).flatten()
            k = max(1, int(density * delta.numel()))
            keep = torch.zeros_like(delta)
            keep[delta.abs().topk(k).indices] = 1
            trimmed.append(delta * keep)
        u = torch.stack([wi * t for wi, t in zip(w, trimmed)])
        sign = torch.where(u.sum(0) >= 0, 1.0, -1.0)
        agree = (torch.sign(u) == sign).float()
        divisor = (agree * torch.tensor(w).unsqueeze(1)).sum(0)
        expected = base[name].flatten() + lam * (agree * u).sum(0) / torch.where(divisor == 0, 1.0, divisor)
        torch.testing.assert_close(merged.flatten(), expected, rtol=0, atol=1e-6)


def test_dare_is_seeded_per_tensor_and_independent_of_order(family, tmp_path, monkeypatch):
    recipe = {"method": "dare_ties", "base": family["base"], "models": [family["expert1"], family["expert2"]],
              "density": 0.5}
    for run in ("seed0", "seed1", "seed0-reversed"):
        (tmp_path / run).mkdir()
    seed0 = merged(tmp_path / "seed0", {"seed": 0, **recipe})
    seed1 = merged(tmp_path / "seed1", {"seed": 1, **recipe})
    assert not all(torch.equal(tensor, seed1[name]) for name, tensor in seed0.items())
    monkeypatch.setattr(merge.WeightReader, "names", lambda self: sorted(self.files, reverse=True))
    reversed_order = merged(tmp_path / "seed0-reversed", {"seed": 0, **recipe})
    assert all(torch.equal(tensor, reversed_order[name]) for name, tensor in seed0.items())


def test_pcb_is_a_mergekit_method_and_keeps_at_most_the_top_ratio(family, results_env):
    import yaml
    from mergekit.config import MergeConfiguration
    from mergekit.merge import run_merge
    from mergekit.options import MergeOptions

    ratio = 0.2
    out = make({"name": "pcb", "method": "pcb", "base": family["base"],
                "models": [family["expert1"], family["expert2"]], "ratio": ratio})["pcb"]
    merged, base = weights(out.path), weights(Path(family["base"]))
    for name, tensor in merged.items():
        changed = (tensor != base[name]).float().mean().item()
        if "norm" in name or "embed_tokens" in name or "lm_head" in name:
            assert changed == 0, name
        else:
            assert 0 < changed <= 2 * ratio + 1e-3, name
    config = {"merge_method": "pcb", "base_model": family["base"], "dtype": "float32",
              "parameters": {"ratio": ratio},
              "models": [{"model": family["expert1"]}, {"model": family["expert2"]}]}
    via_yaml = results_env / "mergekit-yaml"
    run_merge(MergeConfiguration.model_validate(yaml.safe_load(yaml.safe_dump(config))), str(via_yaml),
              options=MergeOptions(copy_tokenizer=False, write_model_card=False, quiet=True))
    yaml_weights = {k: v for f in sorted(via_yaml.glob("*.safetensors")) for k, v in load_file(f).items()}
    assert all(torch.equal(tensor, yaml_weights[name]) for name, tensor in merged.items())


def test_pcb_with_one_expert_and_ratio_one_adds_the_clamped_task_vector():
    from harness.variants.pcb import apply, tensor_terms

    torch.manual_seed(0)
    tau = torch.randn(1, 64, 300)
    base = torch.zeros(64, 300)  # so the merged tensor is the merged task vector itself, as merge_group makes it
    merged = apply(base, tensor_terms(base, [tau[0]], ratio=1.0), weights=[1.0], lambda_=1.0)
    flat = tau.flatten().abs()
    ordered = flat.sort().values
    d = flat.numel()
    clamped = tau.sign() * tau.abs().clamp(ordered[int(d * 1e-4)], ordered[int(d * (1 - 1e-4)) - 1])
    differs = ~torch.isclose(merged, clamped[0], rtol=1e-6, atol=0)
    # min-max scaling gives the single lowest-scoring entry (the smallest |τ|) a scale of 0: it keeps the base
    assert differs.sum() == 1 and merged[differs].item() == 0
    assert differs.flatten().nonzero().item() == flat.argmin().item()


def test_a_pruned_parent_is_made_first_and_its_merge_flagged(family, results_env):
    made = make({"name": "merged", "method": "ties", "base": family["base"], "models": ["pruned", family["expert2"]]},
                {"name": "pruned", "method": "magnitude", "parent": family["expert1"], "sparsity": 0.5})
    assert list(made) == ["pruned", "merged"]
    assert made["merged"].manifest["notes"] == ["parent 'pruned' is pruned: merging does not preserve its sparsity"]
    assert [p["sha256"] for p in made["merged"].manifest["parents"]][1] == made["pruned"].manifest["output_sha256"]


# ---------------------------------------------------------------------------------------------- prunes
def _decoder_matrices(folder: Path) -> dict[str, torch.Tensor]:
    return {name: t for name, t in weights(folder).items() if name.startswith("model.layers.") and t.ndim == 2}


def test_wanda_removes_exactly_the_sparsity_in_every_row_using_activations(family, results_env):
    out = make({"name": "w50", "method": "wanda", "parent": family["base"], "sparsity": 0.5, **CALIBRATION})["w50"]
    parent = weights(Path(family["base"]))
    differs_from_magnitude = False
    for name, tensor in _decoder_matrices(out.path).items():
        zeros = (tensor == 0).sum(dim=1)
        assert torch.all(zeros == tensor.shape[1] // 2), name
        assert torch.equal(tensor[tensor != 0], parent[name][tensor != 0])
        by_magnitude = parent[name].abs().argsort(dim=1)[:, : tensor.shape[1] // 2]
        differs_from_magnitude |= not torch.all(torch.gather(tensor, 1, by_magnitude) == 0).item()
    assert differs_from_magnitude, "Wanda's masks are plain per-row magnitude: activations were ignored"
    assert out.manifest["achieved_sparsity"] == 0.5
    assert out.manifest["calibration"]["n_samples"] == 4 and len(out.manifest["calibration"]["token_ids_sha256"]) == 64


@pytest.mark.parametrize("method,pattern", [("wanda", "2:4"), ("magnitude", "2:4"), ("wanda", "4:8")])
def test_n_m_leaves_exactly_n_zeros_in_every_group_of_m(family, results_env, method, pattern):
    n, m = map(int, pattern.split(":"))
    extra = CALIBRATION if method == "wanda" else {}
    out = make({"name": "nm", "method": method, "parent": family["base"], "pattern": pattern, **extra})["nm"]
    for name, tensor in _decoder_matrices(out.path).items():
        groups = tensor.reshape(tensor.shape[0], -1, m)
        assert torch.all((groups == 0).sum(dim=-1) == n), name


def test_magnitude_removes_the_smallest_weights_of_each_matrix(family, results_env):
    out = make({"name": "m30", "method": "magnitude", "parent": family["base"], "sparsity": 0.3})["m30"]
    parent = weights(Path(family["base"]))
    for name, tensor in _decoder_matrices(out.path).items():
        removed = tensor == 0
        assert removed.sum() == int(0.3 * tensor.numel()), name
        assert parent[name][removed].abs().max() <= parent[name][~removed].abs().min()
    embeddings = weights(out.path)["model.embed_tokens.weight"]
    assert torch.equal(embeddings, parent["model.embed_tokens.weight"])


def test_a_dropped_layer_equals_deleting_it_by_hand(family, results_env):
    from transformers import AutoModelForCausalLM

    out = make({"name": "drop1", "method": "layer_drop", "parent": family["base"], "n_layers": 1,
                **CALIBRATION})["drop1"]
    result = out.manifest["result"]
    (dropped,) = result["dropped_layers"]
    assert result["block_influence"][dropped] == min(result["block_influence"])
    by_hand = AutoModelForCausalLM.from_pretrained(family["base"], dtype=torch.float32)
    del by_hand.model.layers[dropped]
    by_hand.config.num_hidden_layers = 1
    assert json.loads((out.path / "config.json").read_text())["num_hidden_layers"] == 1
    torch.testing.assert_close(logits(out.path), logits(out.path, by_hand), rtol=0, atol=1e-5)


def test_narrower_mlp_equals_the_parent_with_those_neurons_zeroed(family, results_env):
    from transformers import AutoModelForCausalLM

    out = make({"name": "mlp", "method": "mlp_width", "parent": family["base"], "ratio": 0.25,
                **CALIBRATION})["mlp"]
    assert json.loads((out.path / "config.json").read_text())["intermediate_size"] == 192
    padded = AutoModelForCausalLM.from_pretrained(family["base"], dtype=torch.float32)
    with torch.no_grad():
        for index, removed in out.manifest["result"]["removed_neurons"].items():
            assert len(removed) == 64
            mlp = padded.model.layers[int(index)].mlp
            mlp.gate_proj.weight[removed] = 0
            mlp.up_proj.weight[removed] = 0
            mlp.down_proj.weight[:, removed] = 0
    torch.testing.assert_close(logits(out.path), logits(out.path, padded), rtol=0, atol=1e-5)
    assert out.manifest["param_count"] < out.manifest["parents"][0]["param_count"]
    assert out.manifest["physical_shapes_equal_parent"] is False


# ---------------------------------------------------------------------------------------------- reproducibility
def test_same_recipe_and_seed_give_identical_bytes(family, tmp_path, monkeypatch):
    recipe = [{"name": "w", "method": "wanda", "parent": family["base"], "sparsity": 0.5, **CALIBRATION},
              {"name": "d", "method": "dare_ties", "base": family["base"], "models": [family["expert1"]], "seed": 7},
              {"name": "w-of-d", "method": "magnitude", "parent": "d", "pattern": "2:4"}]
    hashes = []
    for run in ("first", "second"):
        monkeypatch.setenv("HARNESS_RESULTS", str(tmp_path / run))
        monkeypatch.setenv("HARNESS_DB", str(tmp_path / run / "h.duckdb"))
        made = make(*recipe)
        hashes.append({name: (o.manifest["output_sha256"], o.manifest["variant_id"]) for name, o in made.items()})
    assert hashes[0] == hashes[1]
    again = make(*recipe)
    assert {o.status for o in again.values()} == {"up to date"}


def test_a_name_reused_for_another_recipe_is_refused(family, results_env):
    make({"name": "v", "method": "magnitude", "parent": family["base"], "sparsity": 0.3})
    with pytest.raises(HarnessError, match="already exists"):
        make({"name": "v", "method": "magnitude", "parent": family["base"], "sparsity": 0.5})


def test_a_variant_made_by_an_older_method_version_is_refused_saying_so(family, results_env, monkeypatch):
    """A method whose code changed (METHOD_VERSIONS bumped) makes other weights from the same recipe; the
    old folder is kept, and the refusal names both versions rather than blaming the parents."""
    from harness.variants import manifest

    made = make({"name": "v", "method": "magnitude", "parent": family["base"], "sparsity": 0.3})["v"]
    monkeypatch.setitem(manifest.METHOD_VERSIONS, "magnitude", manifest.METHOD_VERSIONS["magnitude"] + 1)
    with pytest.raises(HarnessError, match=r"made by magnitude version 1, and this harness makes version 2"):
        make({"name": "v", "method": "magnitude", "parent": family["base"], "sparsity": 0.3})
    assert manifest.read(made.path)["output_sha256"] == made.manifest["output_sha256"]


# ---------------------------------------------------------------------------------------------- bad input
def _recipe(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "recipe.toml"
    path.write_text(body)
    return path


@pytest.mark.parametrize("case,expected", [
    ("architecture", "different architectures"),
    ("tokenizer", "different tokenizers"),
    ("sparsity_one", "sparsity: Input should be less than 1"),
    ("sparsity_negative", "sparsity: Input should be greater than or equal to 0"),
    ("unknown_method", "unknown method 'wandda'; did you mean 'wanda'?"),
    ("no_weights", "no *.safetensors weights"),
    ("unknown_parent", "no such folder, not a variant, not a hub id"),
    ("same_as_parent", "has exactly the weights of its parent"),
])
def test_bad_input_is_one_clear_error_and_writes_nothing(family, results_env, tmp_path, case, expected):
    body = {
        "architecture": f'method = "ties"\nbase = "{family["base"]}"\nmodels = ["{family["one_layer"]}"]',
        "tokenizer": f'method = "linear"\nmodels = ["{family["expert1"]}", "{family["other_tokenizer"]}"]',
        "sparsity_one": f'method = "magnitude"\nparent = "{family["base"]}"\nsparsity = 1.0',
        "sparsity_negative": f'method = "wanda"\nparent = "{family["base"]}"\nsparsity = -0.1',
        "unknown_method": f'method = "wandda"\nparent = "{family["base"]}"\nsparsity = 0.5',
        "no_weights": f'method = "magnitude"\nparent = "{family["no_weights"]}"\nsparsity = 0.5',
        "unknown_parent": 'method = "magnitude"\nparent = "no-such-model"\nsparsity = 0.5',
        "same_as_parent": f'method = "magnitude"\nparent = "{family["base"]}"\nsparsity = 0.0',
    }[case]
    recipe = _recipe(tmp_path, f'[[variant]]\nname = "bad"\n{body}\n')
    result = runner.invoke(app, ["variants", "make", str(recipe), "--display", "none"])
    assert result.exit_code == 2
    assert expected in " ".join(result.output.split())
    assert not (results_env / "variants").exists() or not any((results_env / "variants").iterdir())
    if (results_env / "harness.duckdb").exists():  # only a refusal found while making opens the store
        with duckdb.connect(str(results_env / "harness.duckdb"), read_only=True) as con:
            assert con.execute("SELECT count(*) FROM models").fetchone()[0] == 0


# ---------------------------------------------------------------------------------------------- end to end
def test_a_pruned_variant_is_evaluated_by_name_and_stored_with_its_parent(family, results_env, tmp_path):
    recipe = _recipe(tmp_path, f'[[variant]]\nname = "w50"\nparent = "{family["base"]}"\nmethod = "wanda"\n'
                               f'sparsity = 0.5\nn_samples = 4\nseqlen = 64\n')
    made = runner.invoke(app, ["variants", "make", str(recipe), "--display", "plain"])
    assert made.exit_code == 0, made.output
    listed = runner.invoke(app, ["variants", "list"])
    assert "w50" in listed.output and "wanda" in listed.output and "50.0%" in listed.output
    shown = json.loads(runner.invoke(app, ["variants", "show", "w50"]).output)
    assert shown["parents"][0]["path"] == str(Path(family["base"]).resolve())

    done = subprocess.run([sys.executable, "-m", "harness.cli", "eval", "--models", "w50", "--tasks",
                           "seq_next", "--limit", "10", "--display", "none"], cwd=REPO, capture_output=True,
                          text=True, timeout=600, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    con = duckdb.connect(str(results_env / "harness.duckdb"), read_only=True)
    rows = dict(con.execute("SELECT name, model_id FROM models").fetchall())
    parents, kind = con.execute("SELECT parents, kind FROM models WHERE name = 'w50'").fetchone()
    runs = con.execute("""SELECT count(*) FROM runs JOIN models USING (model_id)
                          WHERE name = 'w50' AND status = 'done'""").fetchone()[0]
    con.close()
    assert kind == "variant" and parents == [rows[Path(family["base"]).name]]
    assert runs == 1
