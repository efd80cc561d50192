"""World facts from authored tables: capitals of countries, and the chemical elements.

Each fact is asked in a "Key: value" record format after one solved record, so the model only has
to recall the value. Distractors come from the same neighbourhood as the answer (other capitals of
the same region, elements whose symbols share a first letter or whose atomic numbers are adjacent),
so a guess from surface cues alone is not enough.
"""

from __future__ import annotations

import random

from harness.tasks.mc_items import load_json, mc_item, mixed_order, with_shots
from harness.tasks.spec import BuiltinTask


def _question(rng: random.Random, records: list[dict], query: dict, ask: str, give: str) -> str:
    """The query as an open record after one solved record of another entry, both `ask`/`give`."""
    shot = rng.choice([r for r in records if r is not query])
    solved = (f"{ask}: {shot[ask]}\n{give}:", shot[give])
    return with_shots([solved], f"{ask}: {query[ask]}\n{give}:")


def _capitals() -> list[dict]:
    countries = [
        {"Country": c["country"], "Capital": c["capital"], "region": c["region"]}
        for c in load_json("capitals.json")["countries"]
    ]
    rng = random.Random(3_001)
    items = []
    for ask, give in (("Country", "Capital"), ("Capital", "Country")):
        for rec in countries:
            pool = [r[give] for r in countries if r["region"] == rec["region"] and r is not rec]
            question = _question(rng, countries, rec, ask, give)
            items.append(mc_item(question, rec[give], rng.sample(pool, 3), rng))
    return mixed_order(items, 3_001)


def _element_pool(elements: list[dict], rec: dict, ask: str) -> list[dict]:
    """Adjacent atomic numbers for number questions; otherwise look-alikes, i.e. elements whose
    symbol starts with the first letter of the name or symbol (Iron -> Ir, In, I), topped up with
    neighbours in the table when there are fewer than three."""
    near = [e for e in elements if 0 < abs(e["number"] - rec["number"]) <= 3]
    if ask == "Atomic number":
        return near
    initials = {rec["Element"][0], rec["Symbol"][0]}
    alike = [e for e in elements if e is not rec and e["Symbol"][0] in initials]
    return alike if len(alike) >= 3 else alike + [e for e in near if e not in alike]


def _elements() -> list[dict]:
    elements = [
        {"number": e["number"], "Atomic number": str(e["number"]), "Symbol": e["symbol"],
         "Element": e["name"]}
        for e in load_json("elements.json")["elements"]
    ]
    rng = random.Random(3_002)
    items = []
    for ask, give in (("Element", "Symbol"), ("Symbol", "Element"), ("Atomic number", "Element")):
        for rec in elements:
            question = _question(rng, elements, rec, ask, give)
            distractors = [e[give] for e in rng.sample(_element_pool(elements, rec, ask), 3)]
            items.append(mc_item(question, rec[give], distractors, rng))
    return mixed_order(items, 3_002)


TASKS = [
    BuiltinTask(
        name="facts_capitals",
        description=(
            "Capital cities of 182 countries, asked both ways (country -> capital, capital -> "
            "country), 1-shot, 4 choices from the same region. Multi-token answers (place names)."
        ),
        version="2",
        output_type="multiple_choice",
        build=_capitals,
    ),
    BuiltinTask(
        name="facts_elements",
        description=(
            "The 118 chemical elements asked three ways (name -> symbol, symbol -> name, atomic "
            "number -> name), 1-shot, 4 choices among look-alike symbols or adjacent atomic "
            "numbers. Mixed answer lengths: 1-2 letter symbols (mostly single tokens) and "
            "multi-token names."
        ),
        version="2",
        output_type="multiple_choice",
        build=_elements,
    ),
]
