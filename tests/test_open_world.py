"""lm-eval's own task YAMLs and hub ids through `harness eval`, offline.

lm-eval's shipped configs run unmodified (arc_easy; hellaswag, whose docs pass through `!function
utils.process_docs`; gsm8k, generation with two filters; the wmdp group, three leaves of different sizes aggregated
by size) on small rows in the real datasets' schema, placed in a temporary datasets cache (tests/fake_datasets.py).
The reference for every number is plain `lm_eval.simple_evaluate` on the same model, items and settings.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[1]
TASKS = "arc_easy,hellaswag,gsm8k,wmdp"
LEAVES = ("arc_easy", "hellaswag", "gsm8k", "wmdp_bio", "wmdp_chem", "wmdp_cyber")
SETTINGS = ("--num-fewshot", "1", "--gen-kwargs", "max_gen_toks=12", "--batch-size", "4")

PLAIN = """
import json, sys
from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM
out = simple_evaluate(model=HFLM(pretrained=sys.argv[1], batch_size=4, device="cpu", dtype="float32"),
                      tasks=sys.argv[2].split(","), num_fewshot=1, gen_kwargs={"max_gen_toks": 12},
                      bootstrap_iters=0, log_samples=False)
print(json.dumps({"results": out["results"], "groups": out.get("groups", {})}, default=str))
"""


def run(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, env=env, timeout=900)


@pytest.fixture(scope="module")
def world(tiny_model, tmp_path_factory):
    """A datasets cache with the four benchmarks' rows, and one `harness eval` of the tiny model on them."""
    root = tmp_path_factory.mktemp("open_world")
    env = os.environ | {"HF_DATASETS_CACHE": str(root / "datasets"), "HARNESS_RESULTS": str(root / "results"),
                        "HARNESS_DB": str(root / "h.duckdb"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    made = run(["tests/fake_datasets.py", str(root / "datasets")], env)
    assert made.returncode == 0, made.stderr
    done = run(["-m", "harness.cli", "eval", "--models", str(tiny_model), "--tasks", TASKS, *SETTINGS,
                "--display", "none"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    return root, env


def stored(db: Path, sql: str, params=()) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def test_every_stored_metric_equals_plain_lm_eval(world, tiny_model):
    root, env = world
    plain = run(["-c", PLAIN, str(tiny_model), TASKS], env)
    assert plain.returncode == 0, plain.stderr
    reference = json.loads(plain.stdout.strip().splitlines()[-1])
    ours = {(task, metric): value for task, metric, value in stored(
        root / "h.duckdb", "SELECT t.name, s.metric, s.value FROM scores s JOIN runs USING (run_id) "
                           "JOIN tasks t USING (task_id)")}
    compared = 0
    for task in LEAVES:
        for key, value in reference["results"][task].items():
            if "," not in key or "_stderr" in key or not isinstance(value, (int, float)):
                continue
            metric, filter_name = key.split(",", 1)
            name = metric if filter_name == "none" else key
            # Same model, items and requests: lm-eval's own metric code on identical log-likelihoods and generations.
            assert ours[(task, name)] == pytest.approx(value, abs=1e-9), (task, key)
            compared += 1
    assert {"exact_match,strict-match", "exact_match,flexible-extract"} <= {m for t, m in ours if t == "gsm8k"}
    # acc and acc_norm for arc_easy and hellaswag, both gsm8k filters, acc for each wmdp leaf (their YAMLs' metric lists)
    assert compared == 2 + 2 + 2 + 3


def test_group_aggregate_is_lm_evals_size_weighted_mean(world, tiny_model):
    from harness.tasks.groups import group_score

    root, env = world
    plain = run(["-c", PLAIN, str(tiny_model), "wmdp"], env)
    reference = json.loads(plain.stdout.strip().splitlines()[-1])
    group = reference["groups"].get("wmdp") or reference["results"]["wmdp"]
    db = root / "h.duckdb"
    edges = stored(db, "SELECT group_name, member, rule FROM task_groups ORDER BY member")
    assert [(g, m) for g, m, _ in edges] == [("wmdp", "wmdp_bio"), ("wmdp", "wmdp_chem"), ("wmdp", "wmdp_cyber")]
    rule = json.loads(edges[0][2])[0]
    assert rule["metric"] == "acc" and rule["weight_by_size"] is True  # as lm-eval's wmdp/_wmdp.yaml says
    leaves = {task: (value, n) for task, value, n in stored(
        db, "SELECT t.name, s.value, s.n FROM scores s JOIN runs USING (run_id) JOIN tasks t USING (task_id) "
            "WHERE s.metric = 'acc' AND t.name LIKE 'wmdp_%'")}
    assert sorted(n for _, n in leaves.values()) == [3, 4, 5]  # sizes differ, so weighting matters
    score, size = group_score("wmdp", {"wmdp": [m for _, m, _ in edges]}, {"wmdp": rule}, leaves)
    assert size == 12
    assert score == pytest.approx(group["acc,none"], abs=1e-12)
    ranked = run(["-m", "harness.cli", "rank", "--tasks", "wmdp", "--method", "mean", "-f", "json"], env)
    assert ranked.returncode == 0, ranked.stderr
    assert json.loads(ranked.stdout)["rows"][0]["wmdp"] == pytest.approx(group["acc,none"], abs=1e-12)
    leaves_only = run(["-m", "harness.cli", "rank", "--tasks", "wmdp", "--level", "leaf", "-f", "json"], env)
    assert {"wmdp_bio", "wmdp_chem", "wmdp_cyber"} <= set(json.loads(leaves_only.stdout)["rows"][0])


def test_lm_eval_tasks_are_recorded_with_their_origin_size_and_direction(world):
    root, _ = world
    rows = {name: rest for name, *rest in stored(
        root / "h.duckdb", "SELECT name, origin, n_items, primary_metric, higher_is_better FROM tasks")}
    assert rows["gsm8k"] == ["lm-eval", 4, "exact_match,strict-match", True]
    assert rows["hellaswag"] == ["lm-eval", 5, "acc", True]
    generations = stored(root / "h.duckdb", "SELECT count(*) FROM requests WHERE request_type = 'generate_until' "
                                            "AND generation IS NOT NULL")
    assert generations == [(4,)]


def test_prompting_settings_make_a_new_run_and_the_same_settings_resume(world, tiny_model):
    root, env = world
    args = ["-m", "harness.cli", "eval", "--models", str(tiny_model), "--tasks", "arc_easy", "--display", "none",
            "--batch-size", "4"]
    again = run([*args, "--num-fewshot", "1", "--gen-kwargs", "max_gen_toks=12"], env)
    assert again.returncode == 0 and " skipped " in again.stdout, again.stdout
    zero_shot = run([*args, "--num-fewshot", "0"], env)
    assert zero_shot.returncode == 0 and " done " in zero_shot.stdout, zero_shot.stdout
    prompted = run([*args, "--num-fewshot", "0", "--system-instruction", "Answer carefully."], env)
    assert prompted.returncode == 0 and " done " in prompted.stdout, prompted.stdout
    runs = stored(root / "h.duckdb", "SELECT count(*) FROM runs JOIN tasks USING (task_id) WHERE name = 'arc_easy'")
    assert runs == [(3,)]


def test_unknown_task_and_missing_data_are_one_line(world, tiny_model, tmp_path):
    root, env = world
    unknown = run(["-m", "harness.cli", "eval", "--models", str(tiny_model), "--tasks", "arc_eazy"], env)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
    assert "unknown task 'arc_eazy'" in unknown.stderr and "arc_easy" in unknown.stderr
    empty = env | {"HF_DATASETS_CACHE": str(tmp_path / "empty"), "HARNESS_DB": str(tmp_path / "h.duckdb")}
    missing = run(["-m", "harness.cli", "eval", "--models", str(tiny_model), "--tasks", "arc_easy",
                   "--display", "none"], empty)
    assert missing.returncode == 1
    assert "dataset 'allenai/ai2_arc' is not in the datasets cache" in missing.stderr
    assert "harness tasks download arc_easy" in missing.stderr


def _hub_cache(tiny_model: Path, cache: Path, repo: str, commit: str) -> None:
    """The layout huggingface_hub writes: models--org--name/{refs/main, snapshots/<commit>/...}."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    shutil.copytree(tiny_model, folder / "snapshots" / commit)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(commit)


def test_hub_id_resolves_from_the_hub_cache_offline(world, tiny_model, tmp_path):
    root, env = world
    commit = "0123456789abcdef0123456789abcdef01234567"
    _hub_cache(tiny_model, tmp_path / "hub", "tiny-org/tiny-llama", commit)
    hub_env = env | {"HF_HUB_CACHE": str(tmp_path / "hub"), "HARNESS_DB": str(tmp_path / "h.duckdb")}
    args = ["-m", "harness.cli", "eval", "--tasks", "arc_easy", "--limit", "2", "--display", "none"]
    done = run([*args, "--models", "tiny-org/tiny-llama"], hub_env)
    assert done.returncode == 0, done.stderr
    assert stored(tmp_path / "h.duckdb", "SELECT name, origin FROM models") == [
        ("tiny-org/tiny-llama", f"hub:tiny-org/tiny-llama@{commit}")]
    pinned = run([*args, "--models", f"tiny-org/tiny-llama@{commit}"], hub_env)
    assert pinned.returncode == 0 and " skipped " in pinned.stdout  # same weights, same run
    before = stored(tmp_path / "h.duckdb", "SELECT count(*) FROM runs")
    unknown = run([*args, "--models", "tiny-org/no-such-model"], hub_env)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
    assert "model 'tiny-org/no-such-model': not in the local hub cache" in unknown.stderr
    assert stored(tmp_path / "h.duckdb", "SELECT count(*) FROM runs") == before


def test_tasks_list_shows_lm_eval_tasks_with_their_cache_state(world, tmp_path):
    root, env = world
    listed = run(["-m", "harness.cli", "tasks", "list", "wmdp*"], env | {"COLUMNS": "200"})
    assert listed.returncode == 0, listed.stderr
    lines = {line.split("│")[1].strip(): line for line in listed.stdout.splitlines() if line.count("│") > 2}
    assert "3 leaf tasks" in lines["wmdp"] and "group" in lines["wmdp"]
    assert lines["wmdp_bio"].rstrip(" │").endswith("yes")  # written into this cache by the fixture
    elsewhere = run(["-m", "harness.cli", "tasks", "list", "wmdp_bio"],
                    env | {"COLUMNS": "200", "HF_DATASETS_CACHE": str(tmp_path)})
    assert [line for line in elsewhere.stdout.splitlines() if "│ wmdp_bio" in line][0].rstrip(" │").endswith("no")
    offline = run(["-m", "harness.cli", "tasks", "download", "gsm8k"], env | {"HF_DATASETS_CACHE": str(tmp_path)})
    assert offline.returncode == 2 and offline.stderr.count("\n") == 1
    assert "dataset 'openai/gsm8k' is not in the datasets cache" in offline.stderr


WRITE_GSM8K = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from tests.fake_datasets import gsm8k_rows, write_prepared
write_prepared(Path(sys.argv[1]), "openai/gsm8k", "main", {"train": gsm8k_rows(6), "test": gsm8k_rows(24)})
"""


def test_sigkill_during_generation_then_resume_computes_only_missing_generations(tiny_model, tmp_path):
    """lm-eval's gsm8k (generate_until) killed after its first chunks: the same command computes only the
    generations never stored, stores none twice, and equals an uninterrupted run's generations."""
    import re
    import signal

    env = os.environ | {"HF_DATASETS_CACHE": str(tmp_path / "datasets"), "HARNESS_RESULTS": str(tmp_path / "results"),
                        "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    made = run(["-c", WRITE_GSM8K, str(tmp_path / "datasets"), str(REPO)], env)
    assert made.returncode == 0, made.stderr
    args = [sys.executable, "-m", "harness.cli", "eval", "--models", str(tiny_model), "--tasks", "gsm8k",
            "--num-fewshot", "0", "--gen-kwargs", "max_gen_toks=12", "--batch-size", "2", "--chunk-size", "2",
            "--display", "plain"]
    killed_env = env | {"HARNESS_DB": str(tmp_path / "killed.duckdb")}
    proc = subprocess.Popen(args, cwd=REPO, env=killed_env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True)
    progress = re.compile(r": (\d+)/(\d+) requests")
    killed_at = None
    for line in proc.stderr:
        if (match := progress.search(line)) and int(match.group(1)) >= 6:
            os.kill(proc.pid, signal.SIGKILL)
            killed_at = int(match.group(1))
            break
    proc.wait(timeout=60)
    assert killed_at is not None and killed_at < 24, "the run finished before it could be killed"
    db = tmp_path / "killed.duckdb"
    [(saved,)] = stored(db, "SELECT count(*) FROM requests WHERE request_type = 'generate_until'")
    assert 6 <= saved < 24

    resumed = subprocess.run(args, cwd=REPO, env=killed_env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    [(status, n_requests, n_cached, n_computed)] = stored(db, "SELECT status, n_requests, n_cached, n_computed FROM runs")
    [(total, distinct)] = stored(db, "SELECT count(*), count(DISTINCT (doc_id, idx)) FROM requests")
    assert status == "done" and n_requests == total == distinct == 24  # every generation once, none twice
    assert n_cached == saved and n_computed == 24 - saved  # only the missing generations were computed

    whole = subprocess.run(args, cwd=REPO, env=env | {"HARNESS_DB": str(tmp_path / "whole.duckdb")},
                           capture_output=True, text=True, timeout=900)
    assert whole.returncode == 0, whole.stderr
    query = "SELECT doc_id, generation FROM requests ORDER BY doc_id"
    assert stored(db, query) == stored(tmp_path / "whole.duckdb", query)


@pytest.mark.skipif(__import__("importlib").util.find_spec("ray") is None, reason="ray is not installed")
def test_ray_shards_lm_eval_tasks_into_the_same_rows_as_a_local_run(world, tiny_model):
    """lm-eval's own arc_easy (MC) and gsm8k (generation), split over two Ray shard tasks, store exactly the
    requests and scores the local executor stored for the same model, items and settings."""
    root, env = world
    ray_env = env | {"HARNESS_DB": str(root / "ray.duckdb")}
    done = run(["-m", "harness.cli", "eval", "--models", str(tiny_model), "--tasks", "arc_easy,gsm8k", *SETTINGS,
                "--display", "none", "--executor", "ray", "--shards", "2"], ray_env)
    assert done.returncode == 0, done.stdout + done.stderr
    run_ids = [r for (r,) in stored(root / "ray.duckdb", "SELECT run_id FROM runs ORDER BY 1")]
    assert len(run_ids) == 2  # the same settings give the same run ids as the local executor's
    requests = """SELECT run_id, q.request_type, q.doc_id, q.idx, q.logprob, q.generation FROM requests q
                  WHERE list_contains(?, run_id) ORDER BY ALL"""
    scores = "SELECT run_id, metric, value FROM scores WHERE list_contains(?, run_id) ORDER BY ALL"
    local, sharded = stored(root / "h.duckdb", requests, [run_ids]), stored(root / "ray.duckdb", requests, [run_ids])
    assert len(local) > 0 and [r[:4] + r[5:] for r in sharded] == [r[:4] + r[5:] for r in local]  # generations too
    # a shard batches other documents together, so padding differs: within the batch-size tolerance (issue 15)
    assert max(abs(a[4] - b[4]) for a, b in zip(sharded, local) if a[4] is not None) < 1e-4
    local_scores = stored(root / "h.duckdb", scores, [run_ids])
    assert [r[:2] for r in stored(root / "ray.duckdb", scores, [run_ids])] == [r[:2] for r in local_scores]
    assert [r[2] for r in stored(root / "ray.duckdb", scores, [run_ids])] == pytest.approx([r[2] for r in local_scores],
                                                                                         abs=1e-6)
