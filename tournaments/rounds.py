"""Round configuration for CSD: which benchmarks make up each round, in order, as plain data.

A round is a group of one or more benchmarks; a competitor's round strength is the unweighted mean
over the group (the reference implementation averages 1-6 benchmark rows per round). The caller
loads TOML/YAML; this module only validates what was loaded, so the order of rounds is explicit.

Accepted shapes (after loading):

- a list whose items are a benchmark name (a one-benchmark round named after it), a list of names
  (named "round <i>"), or a mapping ``{"name": ..., "benchmarks": [...]}``;
- a mapping of round name -> benchmark name or list of names (insertion order is the round order);
- either of the above under a top-level ``"rounds"`` key, as in a TOML file with ``[[rounds]]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from tournaments.table import ScoreTable


@dataclass(frozen=True)
class Round:
    """One round of the tournament: its name and the benchmarks averaged into its strength."""

    name: str
    benchmarks: tuple[str, ...]


def auto_rounds(table: ScoreTable) -> tuple[Round, ...]:
    """One benchmark per round, in the table's benchmark order (`--rounds auto`)."""
    return tuple(Round(b, (b,)) for b in table.benchmarks)


def parse_rounds(spec: Any, table: ScoreTable | None = None) -> tuple[Round, ...]:
    """Rounds from loaded config data; with `table`, every benchmark name is checked against it.

    Raises ValueError for a malformed spec (empty round, duplicate round name, a benchmark used in
    two rounds) and KeyError naming the round and the benchmark when a name is not in `table`.
    """
    if isinstance(spec, Mapping) and set(spec) == {"rounds"}:
        spec = spec["rounds"]
    if isinstance(spec, Mapping):
        rounds = [_round(str(name), members, _shown(name)) for name, members in spec.items()]
    elif isinstance(spec, Sequence) and not isinstance(spec, str):
        rounds = [_item(item, i + 1) for i, item in enumerate(spec)]
    else:
        raise ValueError(f"rounds must be a list or a mapping, got {type(spec).__name__}")
    if not rounds:
        raise ValueError("rounds: at least one round is needed")
    _check_unique(rounds)
    if table is not None:
        check_rounds(rounds, table)
    return tuple(rounds)


def check_rounds(rounds: Sequence[Round], table: ScoreTable) -> None:
    """KeyError naming the first round that uses a benchmark `table` does not have."""
    known = set(table.benchmarks)
    for r in rounds:
        unknown = [b for b in r.benchmarks if b not in known]
        if unknown:
            raise KeyError(f"round {r.name!r} names unknown benchmark(s): {', '.join(map(_shown, unknown))}")


def _item(item: Any, position: int) -> Round:
    if isinstance(item, str):
        return _round(item, item, f"round {position}")
    if isinstance(item, Mapping):
        extra = set(item) - {"name", "benchmarks"}
        if extra or "benchmarks" not in item:
            raise ValueError(
                f"round {position}: expected keys 'name' and 'benchmarks', got {', '.join(map(_shown, item)) or 'none'}"
            )
        name = str(item.get("name", f"round {position}"))
        return _round(name, item["benchmarks"], _shown(name))
    return _round(f"round {position}", item, f"round {position}")


def _round(name: str, members: Any, where: str) -> Round:
    if isinstance(members, str):
        members = [members]
    if not isinstance(members, Sequence) or not members:
        raise ValueError(f"{where}: needs a non-empty list of benchmarks")
    if not all(isinstance(m, str) for m in members):
        raise ValueError(f"{where}: benchmark names must be strings")
    if len(set(members)) != len(members):
        raise ValueError(f"{where}: a benchmark is listed twice")
    return Round(name, tuple(members))


def _check_unique(rounds: list[Round]) -> None:
    names = [r.name for r in rounds]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate round name(s): {', '.join(map(_shown, dupes))}")
    owner: dict[str, str] = {}
    for r in rounds:
        for b in r.benchmarks:
            if b in owner:
                raise ValueError(f"benchmark {b!r} is in both round {owner[b]!r} and round {r.name!r}")
            owner[b] = r.name


def _shown(name: Any) -> str:
    """A name as written, or its repr when it holds a line break or other unprintable character."""
    text = str(name)
    return text if text.isprintable() else repr(text)
