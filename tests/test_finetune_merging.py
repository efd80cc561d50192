"""Fine-tuned experts and PCB's coefficient search, on tiny random Llamas built at test time.

Held-out splits never overlap the scored test items (which stay byte-for-byte what they were), a
fine-tune lowers the answer loss on its own train items and is byte-reproducible under its seed, and
the search is deterministic and never ends below where it started on its own score.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from harness.common.errors import HarnessError
from harness.tasks.mc_items import open_prompt
from harness.tasks.registry import builtin_tasks
from harness.variants.pcb_search import Candidates, evolve
from harness.variants.recipe import parse_recipe
from tests.test_variants import make

# sha256 of each test split as it was before held-out splits existed: the store caches by these items
TEST_ITEMS_SHA256 = {
    "arith_add_2d": "9e5ea57dfe6262c3", "arith_mixed_3d": "ff8ce186a08f5a68", "compare_numbers": "8a91b4b702374187",
}
FINETUNE = {"method": "finetune", "steps": 12, "batch_size": 8, "lr": 3e-3, "warmup": 0.0}


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


# ---------------------------------------------------------------------------------------------- splits
@pytest.mark.parametrize("name", sorted(TEST_ITEMS_SHA256))
def test_held_out_splits_are_disjoint_from_test_which_is_unchanged(name):
    task = builtin_tasks()[name]
    test = task.items("test")
    digest = hashlib.sha256(json.dumps(test, sort_keys=True).encode()).hexdigest()
    assert digest[:16] == TEST_ITEMS_SHA256[name] and task.version == "1"
    prompts = {split: [open_prompt(item["question"]) for item in task.items(split)]
               for split in ("test", "train", "validation")}
    assert len(prompts["train"]) == 1000 and len(prompts["validation"]) == 200
    for split, asked in prompts.items():
        assert len(set(asked)) == len(asked), split
    assert not set(prompts["train"]) & set(prompts["test"])
    assert not set(prompts["validation"]) & (set(prompts["test"]) | set(prompts["train"]))
    assert task.items("train") == task.items("train")  # deterministic
    item = task.items("train")[0]
    assert set(item) == {"question", "choices", "answer"} and "\n\n" in item["question"]


def test_tasks_without_held_out_items_and_unknown_splits_are_clear_errors():
    with pytest.raises(HarnessError, match="has only a test split.*arith_add_2d"):
        builtin_tasks()["facts_capitals"].items("train")
    with pytest.raises(HarnessError, match="unknown split 'dev'"):
        builtin_tasks()["arith_add_2d"].items("dev")


@pytest.mark.parametrize("entry,expected", [
    ({"task": "arith_add2d"}, "unknown task 'arith_add2d'; did you mean 'arith_add_2d'?"),
    ({"task": "facts_capitals"}, "task 'facts_capitals' has no train/validation split"),
    ({"task": "arith_add_2d", "stepz": 3}, "stepz: Extra inputs are not permitted"),
])
def test_bad_finetune_recipes_name_the_field(entry, expected):
    with pytest.raises(HarnessError, match=expected.replace("?", r"\?")):
        parse_recipe({"variant": [{"name": "e", "method": "finetune", "parent": "p", **entry}]})


def test_search_must_start_inside_its_bounds():
    recipe = {"name": "m", "method": "pcb", "base": "b", "models": ["x", "y"], "weights": [1.0, 2.0],
              "search": {"tasks": ["arith_add_2d"]}}
    with pytest.raises(HarnessError, match=r"must lie within search bounds \[0.8, 1.3\]"):
        parse_recipe({"variant": [recipe]})


# ---------------------------------------------------------------------------------------------- fine-tuning
def test_finetune_lowers_its_answer_loss_and_is_byte_reproducible(tiny_model, tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.variants import answers
    from harness.variants.finetune import task_items

    recipe = {"name": "expert", "parent": str(tiny_model), "task": "arith_add_2d", **FINETUNE}
    made = {}
    for run, seed in (("a", 0), ("b", 0), ("c", 1)):
        monkeypatch.setenv("HARNESS_RESULTS", str(tmp_path / run))
        monkeypatch.setenv("HARNESS_DB", str(tmp_path / run / "h.duckdb"))
        made[run] = make({**recipe, "seed": seed})["expert"]
    record = made["a"].manifest
    assert record["kind"] == "finetune" and record["parents"][0]["role"] == "parent"
    assert made["a"].manifest["output_sha256"] == made["b"].manifest["output_sha256"]
    assert made["a"].manifest["output_sha256"] != made["c"].manifest["output_sha256"]
    assert (made["a"].path / "model.safetensors").read_bytes() == (made["b"].path / "model.safetensors").read_bytes()

    # measured independently of the manifest, on train items the check inside finetune() did not use
    tokenizer = AutoTokenizer.from_pretrained(made["a"].path)
    pairs = answers.correct_pairs(tokenizer, task_items("arith_add_2d", "train")[100:164])
    losses = [answers.mean_loss(AutoModelForCausalLM.from_pretrained(path).eval(), pairs, answers.pad_id(tokenizer))
              for path in (tiny_model, made["a"].path)]
    assert losses[1] < losses[0] - 0.5, losses
    assert record["result"]["answer_loss_after"] < record["result"]["answer_loss_before"]
    before, after = _weights(tiny_model), _weights(made["a"].path)
    for name, tensor in after.items():
        frozen = any(part in name for part in ("embed_tokens", "lm_head", "norm"))
        assert torch.equal(tensor, before[name]) == frozen, name


# ---------------------------------------------------------------------------------------------- PCB search
SEARCH = SimpleNamespace(generations=5, population=3, sigma=0.2, low=0.5, high=1.5)


def test_evolve_is_seeded_and_never_ends_below_its_start():
    def score(weights: list[float]) -> float:  # best at (1.3, 0.6); the start (1, 1) is not
        return -round((weights[0] - 1.3) ** 2 + (weights[1] - 0.6) ** 2, 6)

    first = evolve(score, [1.0, 1.0], SEARCH, seed=3)
    assert first == evolve(score, [1.0, 1.0], SEARCH, seed=3)
    assert evolve(score, [1.0, 1.0], SEARCH, seed=4)[2] != first[2]
    best, best_score, trace = first
    assert len(trace) == 1 + 5 * 3 and best_score > score([1.0, 1.0]) and score(best) == best_score
    assert all(0.5 <= w <= 1.5 for entry in trace for w in entry["weights"])
    # a score the start already maximises: nothing may replace it
    assert evolve(lambda w: -abs(w[0] - 1.0) - abs(w[1] - 1.0), [1.0, 1.0], SEARCH, seed=3)[0] == [1.0, 1.0]


def test_pcb_search_over_experts_of_the_same_recipe(tiny_model, results_env, monkeypatch):
    experts = [{"name": f"expert-{task}", "parent": str(tiny_model), "task": task, **FINETUNE}
               for task in ("arith_add_2d", "compare_numbers")]
    search = {"tasks": ["arith_add_2d", "compare_numbers"], "generations": 2, "population": 2, "limit": 8,
              "sigma": 0.2}
    pcb = {"name": "experts-pcb-es", "method": "pcb", "base": str(tiny_model), "ratio": 0.3,
           "models": ["expert-arith_add_2d", "expert-compare_numbers"], "search": search}
    made = make(pcb, *experts)  # listed before its experts: the order comes from the parents
    record = made["experts-pcb-es"].manifest
    found = record["result"]["search"]
    assert [p["ref"] for p in record["parents"]] == [str(tiny_model), *pcb["models"]]
    assert found["evaluations"] == len(found["trace"]) == 5
    assert found["chosen_score"] >= found["start_score"] and found["start_weights"] == [1.0, 1.0]
    assert record["params"]["search"]["limit"] == 8
    assert record["result"]["mergekit_parameters"]["weight"] == found["chosen_weights"]

    # the written weights are exactly the winning candidate's
    (spec,) = parse_recipe({"variant": [pcb]})
    candidates = Candidates(spec, tiny_model, [made[e["name"]].path for e in experts])
    written = _weights(made["experts-pcb-es"].path)
    assert all(torch.equal(written[n], t) for n, t in candidates.tensors(found["chosen_weights"]).items())

    # the same merge again (fresh folders, the experts as folders) gives the same trace and bytes
    monkeypatch.setenv("HARNESS_RESULTS", str(results_env.parent / "again"))
    monkeypatch.setenv("HARNESS_DB", str(results_env.parent / "again" / "h.duckdb"))
    again = make({**pcb, "models": [str(made[e["name"]].path) for e in experts]})["experts-pcb-es"].manifest
    assert again["result"]["search"]["trace"] == found["trace"]
    assert again["output_sha256"] == record["output_sha256"]
