"""`harness.evaluate`: models x tasks into the store, the same work `harness eval` does."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from harness.common.display import Display
from harness.common.paths import default_db, results_dir
from harness.evaluation.config import EvalSettings, ModelSpec
from harness.evaluation.recorder import RunResult


def evaluate(models: Sequence[str | ModelSpec], tasks: Sequence[str], db: str | Path | None = None, *,
             settings: EvalSettings | None = None, include_path: Sequence[str | Path] = (),
             trust_remote_code: bool = False, allow_pickle: bool = False, allow_outside_links: bool = False,
             executor: str = "local", shards: int = 1,
             ray_address: str | None = None, busy_timeout: float = 0.0, display: str | Display = "none",
             **setting_fields: Any) -> list[RunResult]:
    """Evaluate every model on every task; finished runs are skipped and interrupted ones resume.

    `models` are embedded names, folders, hub ids (`org/name@rev`) or ModelSpecs; `tasks` are built-in tasks or
    suites and lm-eval tasks, groups or tags. Settings come as an EvalSettings or as its fields
    (`limit=20, device="cuda"`), not both. Everything is validated before the store is opened: every model is
    resolved, checked, materialised and fingerprinted, and names are checked against each other, so a refused
    command leaves no store behind (and `Runner.run` checks them against the store before writing anything)."""
    from harness.backends import settle
    from harness.common.errors import HarnessError
    from harness.evaluation.runner import Runner, check_names
    from harness.executors import check_executor, make_executor
    from harness.store import Store
    from harness.tasks.registry import resolve_tasks
    from harness.weights import models as model_registry
    from harness.weights.trust import LoadPolicy

    if settings is not None and setting_fields:
        raise HarnessError(f"evaluate: give settings as EvalSettings or as fields ({', '.join(setting_fields)}), "
                           "not both")
    settings = settle(settings or EvalSettings(**setting_fields))
    check_executor(executor, shards, ray_address, settings)
    policy = LoadPolicy(trust_remote_code=trust_remote_code, allow_pickle=allow_pickle,
                        allow_outside_links=allow_outside_links)
    specs = [m if isinstance(m, ModelSpec) else ModelSpec.parse(m) for m in models]
    refs = [model_registry.resolve(m.target, name=m.name if m.named else None, policy=policy) for m in specs]
    root = results_dir()
    plan = resolve_tasks(list(tasks), root / "tasks", tuple(str(p) for p in include_path))
    resolved = [model_registry.materialize(ref, root / "models") for ref in refs]
    check_names(resolved)
    # share: the store is let go between chunks, so rank, query and report can read it while this runs
    with Store.open(db or default_db(), busy_timeout=busy_timeout, share=True) as store:
        runner = Runner(store, settings, root, display if isinstance(display, Display) else Display(display),
                        make_executor(executor, root, shards, ray_address))
        return runner.run(resolved, plan.tasks, plan.members)
