"""Optimizers behind one small ask/tell interface, each seeded so a run can be reproduced exactly.

Random search is ours. Optuna (TPE, CMA-ES) and Nevergrad (NGOpt, DE) are adapters over the `hpo`
extra, imported only when used. The loop is sequential: `tell` always answers the latest `ask`.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from typing import Any, Callable

import numpy as np

from harness.common.errors import HarnessError
from hpo.space import Space


class Optimizer(ABC):
    """Proposes configurations (`ask`) and learns from their costs (`tell`); lower cost is better."""

    def __init__(self, space: Space, seed: int, budget: int):
        self.space, self.seed, self.budget = space, seed, budget

    @abstractmethod
    def ask(self) -> dict[str, Any]:
        """The next configuration to evaluate."""

    @abstractmethod
    def tell(self, config: dict[str, Any], cost: float) -> None:
        """The cost of the configuration returned by the latest `ask`."""


class RandomSearch(Optimizer):
    """Uniform draws in the unit cube, mapped through the space (log and integer scales included)."""

    def __init__(self, space: Space, seed: int, budget: int):
        super().__init__(space, seed, budget)
        self._rng = np.random.default_rng(seed)

    def ask(self) -> dict[str, Any]:
        return self.space.from_unit(self._rng.random(self.space.dim))

    def tell(self, config: dict[str, Any], cost: float) -> None:
        pass


def _require(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise HarnessError(f"this optimizer needs {module}: pip install 'harness[hpo]'") from None


class OptunaOptimizer(Optimizer):
    """An Optuna study driven through its ask/tell API with fixed distributions."""

    def __init__(self, space: Space, seed: int, budget: int, sampler: str):
        super().__init__(space, seed, budget)
        optuna = _require("optuna")
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        dist = optuna.distributions
        self._distributions = {
            p.name: dist.CategoricalDistribution(p.choices) if p.categorical
            else dist.IntDistribution(int(p.low), int(p.high), log=p.log) if p.integer
            else dist.FloatDistribution(p.low, p.high, log=p.log)
            for p in space.params
        }
        if sampler == "tpe":
            chosen = optuna.samplers.TPESampler(seed=seed)
        else:
            _require("cmaes")  # Optuna's CMA-ES sampler is a wrapper around it
            chosen = optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
        self._study = optuna.create_study(direction="minimize", sampler=chosen)
        self._trial = None

    def ask(self) -> dict[str, Any]:
        self._trial = self._study.ask(self._distributions)
        return dict(self._trial.params)

    def tell(self, config: dict[str, Any], cost: float) -> None:
        self._study.tell(self._trial, cost)


class NevergradOptimizer(Optimizer):
    """A Nevergrad optimizer from its registry over a seeded parametrization of the space."""

    def __init__(self, space: Space, seed: int, budget: int, name: str):
        super().__init__(space, seed, budget)
        ng = _require("nevergrad")
        parts = {}
        for p in space.params:
            if p.categorical:
                parts[p.name] = ng.p.Choice(list(p.choices))
            else:
                scalar = ng.p.Log(lower=p.low, upper=p.high) if p.log else ng.p.Scalar(lower=p.low, upper=p.high)
                parts[p.name] = scalar.set_integer_casting() if p.integer else scalar
        parametrization = ng.p.Dict(**parts)
        parametrization.random_state = np.random.RandomState(seed)
        self._opt = ng.optimizers.registry[name](parametrization=parametrization, budget=budget, num_workers=1)
        self._candidate = None

    def ask(self) -> dict[str, Any]:
        with warnings.catch_warnings():  # its inner solvers warn about their own defaults on every call
            warnings.simplefilter("ignore")
            self._candidate = self._opt.ask()
        return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in self._candidate.value.items()}

    def tell(self, config: dict[str, Any], cost: float) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._opt.tell(self._candidate, cost)


OPTIMIZERS: dict[str, Callable[[Space, int, int], Optimizer]] = {
    "random": RandomSearch,
    "optuna-tpe": lambda space, seed, budget: OptunaOptimizer(space, seed, budget, "tpe"),
    "optuna-cmaes": lambda space, seed, budget: OptunaOptimizer(space, seed, budget, "cmaes"),
    "nevergrad-ngopt": lambda space, seed, budget: NevergradOptimizer(space, seed, budget, "NGOpt"),
    "nevergrad-de": lambda space, seed, budget: NevergradOptimizer(space, seed, budget, "TwoPointsDE"),
}


def make_optimizer(name: str, space: Space, seed: int, budget: int) -> Optimizer:
    try:
        factory = OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r} (known: {', '.join(OPTIMIZERS)})") from None
    return factory(space, seed, budget)
