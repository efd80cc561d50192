"""The embedded default model: converted once from the packaged GGUF, faithful, and evaluated for real."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from harness.weights.models import EMBEDDED, fingerprint, materialize, resolve, weights_sha256

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"  # the converted folder is reused across sessions, as `make demo` does


@pytest.fixture(scope="module")
def smollm2() -> Path:
    return materialize(resolve("smollm2-135m"), RESULTS / "models").path


def test_conversion_is_faithful_to_the_gguf(smollm2):
    embedded = EMBEDDED["smollm2-135m"]
    package = Path(importlib.util.find_spec(embedded.package).submodule_search_locations[0])
    text = "The capital of France is Paris, and the capital of Italy is"
    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    ids = torch.tensor([tokenizer(text)["input_ids"]])
    with torch.no_grad():
        converted = AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.float32)(ids).logits
        original = AutoModelForCausalLM.from_pretrained(package, gguf_file=embedded.gguf_file,
                                                        dtype=torch.float32)(ids).logits
    assert torch.max(torch.abs(converted - original)).item() < 1e-4
    assert tokenizer.decode(converted[0, -1].argmax()).strip() == "Rome"
    source = json.loads((smollm2 / "harness_source.json").read_text())
    assert source["gguf_file"] == embedded.gguf_file
    resolved = materialize(resolve("smollm2-135m"), RESULTS / "models")
    assert resolved.weights_sha256 == weights_sha256(smollm2)
    assert resolved.fingerprint == fingerprint(smollm2, weights_sha256(smollm2))


def test_smollm2_beats_chance_on_facts_and_the_random_model(smollm2, tiny_model, tmp_path):
    env = os.environ | {"HARNESS_RESULTS": str(RESULTS), "HARNESS_DB": str(tmp_path / "h.duckdb")}
    done = subprocess.run([sys.executable, "-m", "harness.cli", "eval", "--models", f"smollm2-135m,{tiny_model}",
                           "--tasks", "facts_capitals", "--limit", "40", "--display", "none"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    con = duckdb.connect(str(tmp_path / "h.duckdb"), read_only=True)
    acc = dict(con.execute("SELECT model, value FROM leaderboard").fetchall())
    n_choices = con.execute("""SELECT max(idx) + 1 FROM requests""").fetchone()[0]
    con.close()
    assert acc["smollm2-135m"] > 1 / n_choices + 0.15
    assert acc["smollm2-135m"] > acc["tiny"]
