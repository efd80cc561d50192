"""A task group's score from its members' scores, computed the way lm-eval aggregates groups.

lm-eval (0.4.13, `aggregate_subtask_metrics`): with weight_by_size the group score is the size-weighted mean of its
members' scores (a micro-average over items), otherwise their plain mean; a group's size is the sum of its members'
sizes, and nested groups aggregate bottom-up.
"""

from __future__ import annotations

from collections.abc import Mapping


def group_score(group: str, members: Mapping[str, list[str]], rules: Mapping[str, dict],
                leaves: Mapping[str, tuple[float, int]]) -> tuple[float, int]:
    """(score, size) of `group`: `members` maps a group to its members, `rules` a group to its aggregation rule
    (weight_by_size), `leaves` a leaf task to its (score, number of items). A member without a score is an error,
    never silently dropped (a group score over some of its members is another number)."""
    if group in leaves:
        return leaves[group]
    if group not in members:
        raise KeyError(f"no score for '{group}'")
    parts = [group_score(member, members, rules, leaves) for member in members[group]]
    size = sum(n for _, n in parts)
    if rules.get(group, {}).get("weight_by_size", False):
        return sum(v * n for v, n in parts) / size, size
    return sum(v for v, _ in parts) / len(parts), size


def leaves_of(group: str, members: Mapping[str, list[str]]) -> list[str]:
    """Every leaf task under `group`, in member order."""
    if group not in members:
        return [group]
    return [leaf for member in members[group] for leaf in leaves_of(member, members)]
