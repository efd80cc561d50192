"""The open world's settings, offline: sampled generation with a seed, chat templates, and MMLU's 57 subjects.

References: plain `lm_eval.simple_evaluate` on the same model, items and settings (chat template, the mmlu group's
size-weighted aggregate); `harness snr` itself for what `rank --snr-filter` must keep; for sampling, the closed form
of reproducibility (the same request and seed give the same text whatever the batch size or the store).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.test_open_world import REPO, run, stored

SAMPLED = "do_sample=true,temperature=1.0,max_gen_toks=8"
GSM8K = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from tests.fake_datasets import arc_rows, gsm8k_rows, write_prepared
write_prepared(Path(sys.argv[1]), "openai/gsm8k", "main", {"train": gsm8k_rows(4), "test": gsm8k_rows(6)})
write_prepared(Path(sys.argv[1]), "allenai/ai2_arc", "ARC-Easy", {"train": arc_rows(4), "validation": arc_rows(3),
                                                                   "test": arc_rows(5)})
"""


@pytest.fixture(scope="module")
def datasets_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("settings")
    env = os.environ | {"HF_DATASETS_CACHE": str(root / "datasets"), "HARNESS_RESULTS": str(root / "results"),
                        "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    made = run(["-c", GSM8K, str(root / "datasets"), str(REPO)], env)
    assert made.returncode == 0, made.stderr
    return root, env


def _eval(env: dict, db: Path, *args: str):
    return run(["-m", "harness.cli", "eval", "--display", "none", *args], env | {"HARNESS_DB": str(db)})


def test_sampled_generation_needs_a_seed_and_is_reproducible(datasets_env, tiny_model):
    root, env = datasets_env
    base = ["--models", str(tiny_model), "--tasks", "gsm8k", "--num-fewshot", "0"]
    unseeded = _eval(env, root / "s.duckdb", *base, "--gen-kwargs", SAMPLED)
    assert unseeded.returncode == 2 and unseeded.stderr.count("\n") == 1, unseeded.stderr
    assert "needs a seed" in unseeded.stderr and "seed=N" in unseeded.stderr
    assert not (root / "s.duckdb").exists()  # refused before the store was made

    generations = "SELECT doc_id, generation FROM requests ORDER BY doc_id"
    seeded = _eval(env, root / "s.duckdb", *base, "--gen-kwargs", f"{SAMPLED},seed=5", "--batch-size", "4")
    assert seeded.returncode == 0 and " done " in seeded.stdout, seeded.stdout + seeded.stderr
    # another store, another batch size and chunking: every sample is the same text
    alone = _eval(env, root / "b1.duckdb", *base, "--gen-kwargs", f"{SAMPLED},seed=5", "--batch-size", "1",
                  "--chunk-size", "2")
    assert alone.returncode == 0, alone.stderr
    first = stored(root / "s.duckdb", generations)
    assert len(first) == 6 and first == stored(root / "b1.duckdb", generations)
    greedy = _eval(env, root / "g.duckdb", *base, "--gen-kwargs", "max_gen_toks=8")
    assert greedy.returncode == 0, greedy.stderr
    assert stored(root / "g.duckdb", generations) != first  # sampling at temperature 1 is not the greedy text

    again = _eval(env, root / "s.duckdb", *base, "--gen-kwargs", f"{SAMPLED},seed=5")
    assert again.returncode == 0 and " skipped " in again.stdout, again.stdout
    other = _eval(env, root / "s.duckdb", *base, "--gen-kwargs", f"{SAMPLED},seed=6")
    assert other.returncode == 0 and " done " in other.stdout, other.stdout
    by_run = stored(root / "s.duckdb", "SELECT run_id, list(generation ORDER BY doc_id) FROM requests GROUP BY 1")
    assert len(by_run) == 2 and by_run[0][1] != by_run[1][1]  # another seed is another run with other samples


CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")
PLAIN_CHAT = """
import json, sys
from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM
out = simple_evaluate(model=HFLM(pretrained=sys.argv[1], batch_size=4, device="cpu", dtype="float32"),
                      tasks=["arc_easy"], num_fewshot=1, apply_chat_template=True, fewshot_as_multiturn=True,
                      bootstrap_iters=0, log_samples=False)
print(json.dumps(out["results"]["arc_easy"], default=str))
"""


def test_chat_template_equals_plain_lm_eval_and_is_part_of_the_run(datasets_env, tiny_model, tmp_path):
    root, env = datasets_env
    chat = tmp_path / "tiny-chat"
    shutil.copytree(tiny_model, chat)
    config = json.loads((chat / "tokenizer_config.json").read_text())
    (chat / "tokenizer_config.json").write_text(json.dumps(config | {"chat_template": CHAT_TEMPLATE}))
    db = tmp_path / "c.duckdb"
    base = ["--models", str(chat), "--tasks", "arc_easy", "--num-fewshot", "1", "--batch-size", "4"]
    done = _eval(env, db, *base, "--apply-chat-template")
    assert done.returncode == 0 and " done " in done.stdout, done.stdout + done.stderr
    plain = run(["-c", PLAIN_CHAT, str(chat)], env)
    assert plain.returncode == 0, plain.stderr
    reference = json.loads(plain.stdout.strip().splitlines()[-1])
    ours = dict(stored(db, "SELECT metric, value FROM scores"))
    assert ours["acc"] == pytest.approx(reference["acc,none"], abs=1e-9)
    assert ours["acc_norm"] == pytest.approx(reference["acc_norm,none"], abs=1e-9)
    prompts = [t for (t,) in stored(db, "SELECT DISTINCT x.text FROM requests q JOIN texts x ON x.text_sha = "
                                        "q.context_sha")]
    # few-shot as multi-turn: the example is a user turn and an assistant turn, then the question's user turn
    assert prompts and all(p.startswith("<|user|>") and p.endswith("<|assistant|>") for p in prompts)
    assert all(p.count("<|user|>") == 2 for p in prompts)

    again = _eval(env, db, *base, "--apply-chat-template")
    assert " skipped " in again.stdout, again.stdout
    without = _eval(env, db, *base)
    assert " done " in without.stdout, without.stdout  # no template: another run
    assert stored(db, "SELECT count(*) FROM runs") == [(2,)]


def test_an_instruct_model_without_its_chat_template_gets_one_line_of_warning(datasets_env, tiny_model, tmp_path):
    root, env = datasets_env
    instruct = tmp_path / "tiny-instruct"
    shutil.copytree(tiny_model, instruct)
    done = _eval(env, tmp_path / "i.duckdb", "--models", str(instruct), "--tasks", "arc_easy", "--limit", "2")
    assert done.returncode == 0, done.stderr
    warned = [line for line in (done.stdout + done.stderr).splitlines() if "chat template" in line]
    assert len(warned) == 1 and "tiny-instruct" in warned[0]


PLAIN_MMLU = """
import json, sys
from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM
out = simple_evaluate(model=HFLM(pretrained=sys.argv[1], batch_size=16, device="cpu", dtype="float32"),
                      tasks=["mmlu"], bootstrap_iters=0, log_samples=False)
print(json.dumps({k: v["acc,none"] for k, v in {**out["results"], **out.get("groups", {})}.items()}))
"""


@pytest.fixture(scope="module")
def mmlu(tmp_path_factory, tiny_model):
    """lm-eval's own mmlu group (four subgroups built from tags, 57 subjects) for two tiny models."""
    from tests.tiny_model import build_tiny_llama

    root = tmp_path_factory.mktemp("mmlu")
    env = os.environ | {"HF_DATASETS_CACHE": str(root / "datasets"), "HARNESS_RESULTS": str(root / "results"),
                        "HARNESS_DB": str(root / "m.duckdb"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    made = run(["tests/fake_datasets.py", str(root / "datasets"), "mmlu"], env)
    assert made.returncode == 0, made.stderr
    other = build_tiny_llama(root / "tiny-b", seed=1)
    done = run(["-m", "harness.cli", "eval", "--models", f"{tiny_model},{other}", "--tasks", "mmlu",
                "--display", "none"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    return root, env


def test_mmlu_group_equals_plain_lm_eval_through_its_tagged_subgroups(mmlu, tiny_model):
    root, env = mmlu
    plain = run(["-c", PLAIN_MMLU, str(tiny_model)], env)
    assert plain.returncode == 0, plain.stderr
    reference = json.loads(plain.stdout.strip().splitlines()[-1])
    edges = stored(root / "m.duckdb", "SELECT group_name, count(*) FROM task_groups GROUP BY 1 ORDER BY 1")
    # lm-eval's _mmlu.yaml: four subgroups; each lists a tag (mmlu_stem_tasks, ...) that stands for its subjects
    assert edges == [("mmlu", 4), ("mmlu_humanities", 13), ("mmlu_other", 13), ("mmlu_social_sciences", 12),
                     ("mmlu_stem", 19)]  # the tags' sizes in lm-eval 0.4.13's mmlu/default YAMLs
    name = tiny_model.name
    ranked = run(["-m", "harness.cli", "rank", "--tasks", "mmlu,mmlu_stem", "--method", "mean", "-f", "json"], env)
    assert ranked.returncode == 0, ranked.stderr
    row = next(r for r in json.loads(ranked.stdout)["rows"] if r["competitor"] == name)
    assert row["mmlu"] == pytest.approx(reference["mmlu"], abs=1e-12)
    assert row["mmlu_stem"] == pytest.approx(reference["mmlu_stem"], abs=1e-12)


def test_snr_and_the_snr_filter_work_on_mmlu_subjects(mmlu):
    root, env = mmlu
    snr = run(["-m", "harness.cli", "snr", "-f", "json"], env)
    assert snr.returncode == 0, snr.stderr
    rows = json.loads(snr.stdout)["rows"]
    assert len(rows) == 57 and all(r["benchmark"].startswith("mmlu_") and r["n_models"] == 2 for r in rows)
    defined = sorted((r for r in rows if r["snr"] is not None), key=lambda r: -r["snr"])
    assert len(defined) > 5
    kept = run(["-m", "harness.cli", "rank", "--tasks", "mmlu", "--level", "leaf", "--snr-filter", "5",
                "-f", "json"], env)
    assert kept.returncode == 0, kept.stderr
    result = json.loads(kept.stdout)["tables"]
    columns = set(result["leaderboard"]["rows"][0]) - {"rank", "competitor", "mwr", "mean"}
    assert len(columns) == 5 and columns <= {r["benchmark"] for r in defined}
    threshold = min(r["snr"] for r in defined if r["benchmark"] in columns)
    assert all(r["snr"] <= threshold for r in defined if r["benchmark"] not in columns)  # the five highest
    assert len(result["snr_filter"]["rows"]) == 52


PLAIN_IFEVAL = """
import json, sys
from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM
out = simple_evaluate(model=HFLM(pretrained=sys.argv[1], batch_size=4, device="cpu", dtype="float32"),
                      tasks=["ifeval"], gen_kwargs={"max_gen_toks": 16}, bootstrap_iters=0, log_samples=True)
print(json.dumps({"results": out["results"]["ifeval"],
                  "inst": [s["inst_level_strict_acc"] for s in sorted(out["samples"]["ifeval"],
                                                                      key=lambda s: s["doc_id"])]}, default=str))
"""


def test_ifeval_offline_equals_plain_lm_eval_with_its_per_instruction_lists(tiny_model, tmp_path):
    """lm-eval's ifeval YAML and metric code, on rows whose instructions need no nltk download; its list-valued
    inst_level metrics are stored per sample as their mean and length, and aggregate as lm-eval does (micro)."""
    env = os.environ | {"HF_DATASETS_CACHE": str(tmp_path / "datasets"), "HARNESS_RESULTS": str(tmp_path / "r"),
                        "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "NLTK_DATA": str(tmp_path / "nltk")}
    assert run(["tests/fake_datasets.py", str(tmp_path / "datasets"), "ifeval"], env).returncode == 0
    db = tmp_path / "i.duckdb"
    done = _eval(env, db, "--models", str(tiny_model), "--tasks", "ifeval", "--gen-kwargs", "max_gen_toks=16")
    assert done.returncode == 0 and " done " in done.stdout, done.stdout + done.stderr
    plain = run(["-c", PLAIN_IFEVAL, str(tiny_model)], env)
    assert plain.returncode == 0, plain.stderr
    reference = json.loads(plain.stdout.strip().splitlines()[-1])
    ours = dict(stored(db, "SELECT metric, value FROM scores"))
    for metric in ("prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc",
                   "inst_level_loose_acc"):
        assert ours[metric] == pytest.approx(reference["results"][f"{metric},none"], abs=1e-12), metric
    per_sample = stored(db, "SELECT doc_id, max(value) FILTER (metric = 'inst_level_strict_acc'), "
                            "max(value) FILTER (metric = 'inst_level_strict_acc:n') FROM samples GROUP BY 1 ORDER BY 1")
    assert [(mean, n) for _, mean, n in per_sample] == [
        (pytest.approx(sum(flags) / len(flags)), len(flags)) for flags in reference["inst"]]

    punkt = tmp_path / "punkt"
    assert run(["tests/fake_datasets.py", str(punkt), "ifeval-punkt"], env).returncode == 0
    missing = _eval(env | {"HF_DATASETS_CACHE": str(punkt)}, tmp_path / "p.duckdb", "--models", str(tiny_model),
                    "--tasks", "ifeval", "--gen-kwargs", "max_gen_toks=16")
    line = next(line for line in (missing.stdout + missing.stderr).splitlines() if "nltk's" in line)
    assert missing.returncode == 1 and "'punkt" in line and "harness tasks download ifeval" in line  # the run fails with the fix, no traceback
    assert "Traceback" not in missing.stdout + missing.stderr
