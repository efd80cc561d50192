"""Number syntax shared by every text importer (leaderboard CSVs, OLMo logs, Pythia JSON strings).

Python's float() also takes `1_000`, Arabic-Indic or full-width digits and surrounding Unicode
spaces, so a typo or a localised export would be stored as a plausible number; here a number is
ASCII only: optional sign, digits with an optional decimal point, optional exponent.
"""

from __future__ import annotations

import re

_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SPECIAL = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)


def parse_number(text: str) -> float | None:
    """`text` (surrounding whitespace ignored) as a float, None when it is not strictly a number.

    nan and inf spellings are returned as such, so each caller keeps its own rule for them
    (missing, or refused as infinite).
    """
    cell = text.strip()
    if _NUMBER.fullmatch(cell) or _SPECIAL.fullmatch(cell):
        return float(cell)
    return None

