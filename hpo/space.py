"""Search spaces: named parameters (float, integer, log-scaled, categorical) and the unit-cube map.

Every optimizer sees the same space; those that only speak [0,1]^d (random search, anytime
anchors) use `from_unit`, so one uniform draw means the same configuration everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Param:
    """One hyperparameter: a [low, high] range (optionally log-scaled or integer), or `choices`."""

    name: str
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if not self.choices and not self.low < self.high:
            raise ValueError(f"parameter {self.name!r}: low {self.low} must be below high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"parameter {self.name!r}: a log scale needs low > 0")

    @property
    def categorical(self) -> bool:
        return bool(self.choices)

    def from_unit(self, u: float) -> Any:
        """The value at position u in [0, 1]; categories split the interval evenly."""
        u = min(max(float(u), 0.0), 1.0)
        if self.categorical:
            return self.choices[min(int(u * len(self.choices)), len(self.choices) - 1)]
        if self.log:
            value = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            value = self.low + u * (self.high - self.low)
        if self.integer:
            return int(min(max(round(value), math.ceil(self.low)), math.floor(self.high)))
        return min(max(value, self.low), self.high)

    def to_unit(self, value: Any) -> float:
        """Inverse of `from_unit` (a category maps to the middle of its slot)."""
        if self.categorical:
            return (self.choices.index(value) + 0.5) / len(self.choices)
        if self.log:
            return (math.log(value) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (float(value) - self.low) / (self.high - self.low)


@dataclass(frozen=True)
class Space:
    params: tuple[Param, ...]

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate parameter names in {names}")

    @property
    def dim(self) -> int:
        return len(self.params)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def from_unit(self, u: np.ndarray) -> dict[str, Any]:
        return {p.name: p.from_unit(x) for p, x in zip(self.params, u)}

    def to_unit(self, config: dict[str, Any]) -> np.ndarray:
        return np.array([p.to_unit(config[p.name]) for p in self.params])

    @classmethod
    def box(cls, dim: int, low: float, high: float, prefix: str = "x") -> "Space":
        return cls(tuple(Param(f"{prefix}{i}", low, high) for i in range(dim)))
