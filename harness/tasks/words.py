"""Word relations from authored lists (data/words.json): antonyms, plurals and past tenses.

Antonym distractors are other words of the same part of speech, so the choice is about meaning, not
grammar. Plural and past-tense distractors are the forms a learner produces by over-applying the
regular rule (childs, goed), other forms of the same word (gone, goes, child's) or the unchanged
word, which makes the irregular forms a test of knowledge rather than of spelling rules.
"""

from __future__ import annotations

import random

from harness.tasks.mc_items import load_json, mc_item, mixed_order, with_shots
from harness.tasks.spec import BuiltinTask

N_ANTONYM_ITEMS = 300
_SIBILANT_ENDINGS = ("s", "x", "z", "ch", "sh", "o")


def _consonant_y(word: str) -> bool:
    return word.endswith("y") and word[-2:-1] not in tuple("aeiou")


def _regular_plural(noun: str) -> str:
    if _consonant_y(noun):
        return noun[:-1] + "ies"
    return noun + ("es" if noun.endswith(_SIBILANT_ENDINGS) else "s")


def _regular_past(verb: str) -> str:
    if _consonant_y(verb):
        return verb[:-1] + "ied"
    return verb + ("d" if verb.endswith("e") else "ed")


def _present_participle(verb: str) -> str:
    return (verb[:-1] if verb.endswith("e") and not verb.endswith("ee") else verb) + "ing"


def _unique_wrong(candidates: list[str], answer: str) -> list[str]:
    """Candidates in order, without repeats and without the answer."""
    return [c for i, c in enumerate(candidates) if c != answer and c not in candidates[:i]]


def _antonyms() -> list[dict]:
    groups = load_json("words.json")["antonyms"]
    records = [(pos, a, b) for pos, pairs in groups.items() for a, b in pairs]
    records += [(pos, b, a) for pos, a, b in list(records)]
    rng = random.Random(4_001)
    items = []
    for pos, word, opposite in rng.sample(records, N_ANTONYM_ITEMS):
        _, shot_word, shot_opposite = rng.choice(
            [r for r in records if r[1] not in (word, opposite)]
        )
        shot = (f"Word: {shot_word}\nOpposite:", shot_opposite)
        question = with_shots([shot], f"Word: {word}\nOpposite:")
        pool = [w for p, w, _ in records if p == pos and w not in (word, opposite)]
        items.append(mc_item(question, opposite, rng.sample(pool, 3), rng))
    return items


def _forms() -> list[dict]:
    data = load_json("words.json")
    # plural.removesuffix("s") + "s" is a doubled plural (childrens, mices); for plurals that
    # already end in s it is the answer itself and drops out
    records = [
        ("Singular", "Plural", noun, plural, [
            noun, _regular_plural(noun), noun + "s", noun + "es", noun + "'s",
            plural.removesuffix("s") + "s",
        ])
        for noun, plural in data["plural"]
    ]
    # the -s form of a verb (goes) follows the spelling rule of the regular plural
    records += [
        ("Verb", "Past tense", verb, past, [
            participle, _regular_past(verb), verb, _regular_plural(verb), _present_participle(verb),
        ])
        for verb, past, participle in data["past"]
    ]
    rng = random.Random(4_002)
    items = []
    for ask, give, word, answer, candidates in records:
        shot = rng.choice([r for r in records if r[0] == ask and r[2] != word])
        question = with_shots([(f"{ask}: {shot[2]}\n{give}:", shot[3])], f"{ask}: {word}\n{give}:")
        distractors = rng.sample(_unique_wrong(candidates, answer), 3)
        items.append(mc_item(question, answer, distractors, rng))
    return mixed_order(items, 4_002)


TASKS = [
    BuiltinTask(
        name="words_antonyms",
        description=(
            "Opposites from 211 English word pairs (adjectives, verbs, nouns, adverbs): 300 of the "
            "422 questions (both ways round), 1-shot, 4 choices of the same part of speech. "
            "Single-word answers, nearly all single tokens."
        ),
        version="1",
        output_type="multiple_choice",
        build=_antonyms,
    ),
    BuiltinTask(
        name="words_forms",
        description=(
            "Plural of 148 nouns and simple past of 170 verbs, many irregular, 1-shot, 4 choices: "
            "the right form and three of the over-regularised form (childs, goed), a doubled "
            "plural (childrens), the possessive, the participle (gone, going), the present (goes) "
            "or the unchanged word. Single-word answers of one to three tokens."
        ),
        version="2",
        output_type="multiple_choice",
        build=_forms,
    ),
]
