"""`harness tasks list` and `harness models list`: what can be evaluated."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from harness.cli.commands._common import out
from harness.cli.options import BusyTimeoutOption, DbOption, IncludePathOption, split_list

_SHOWN = 200
from harness.common.paths import default_db


def tasks_list(
    pattern: Annotated[Optional[str], typer.Argument(
        help="Also list lm-eval's tasks, groups and tags whose names match this glob (e.g. 'mmlu*', '*arc*').")] = None,
    include_path: IncludePathOption = None,
) -> None:
    """List the built-in tasks and suites, and with PATTERN the matching lm-eval tasks, groups and tags."""
    from harness.tasks.registry import builtin_tasks, suites

    table = Table(header_style="bold")
    for column in ("task", "type", "primary metric", "items", "description"):
        table.add_column(column)
    for task in builtin_tasks().values():
        metric = task.primary_metric + ("" if task.higher_is_better else " ↓")
        table.add_row(task.name, task.output_type, metric, str(len(task.build())), Text(task.description))
    out.print(table)
    for name, members in suites().items():
        out.print(f"suite [bold]{name}[/bold]: {', '.join(members)}")
    if pattern is not None:
        _lm_eval_tasks(pattern, tuple(str(p) for p in include_path or []))


def _lm_eval_tasks(pattern: str, include_paths: tuple[str, ...]) -> None:
    from fnmatch import fnmatchcase

    from harness.tasks.catalog import catalog
    from harness.tasks.data import is_cached

    known = catalog(include_paths)
    names = [n for n in known.names() if fnmatchcase(n, pattern)]
    table = Table(header_style="bold", title=f"lm-eval: {len(names)} match '{pattern}'")
    for column in ("name", "kind", "output type", "members / groups", "data cached"):
        table.add_column(column)
    for name in names[:_SHOWN]:
        kind = known.kind(name)
        if kind == "task":
            config = known.leaf_config(name, {})
            cached = "yes" if is_cached(config.get("dataset_path"), config.get("dataset_name")) else "no"
            table.add_row(Text(name), kind, str(config.get("output_type", "")), Text(", ".join(known.groups_of(name))),
                          cached)
        else:
            table.add_row(Text(name), kind, "", Text(f"{len(known.expand(name).leaves)} leaf tasks"), "")
    out.print(table)
    if len(names) > _SHOWN:
        out.print(f"... and {len(names) - _SHOWN} more; narrow the pattern")


def tasks_download(
    names: Annotated[list[str], typer.Argument(help="lm-eval tasks or groups (comma-separated or repeated).")],
    include_path: IncludePathOption = None,
) -> None:
    """Fill the Hugging Face datasets cache with these tasks' data (needs network), for offline use elsewhere."""
    from harness.common.paths import results_dir
    from harness.tasks.data import cache_dir, download
    from harness.tasks.registry import resolve_tasks

    plan = resolve_tasks(split_list(names), results_dir() / "tasks", tuple(str(p) for p in include_path or []))
    download([task.build_config for task in plan.tasks if task.origin != "builtin"])
    out.print(Text(f"{len(plan.tasks)} task(s) ready in {cache_dir()}; copy or share this folder and set "
                   "HF_DATASETS_CACHE (and HF_DATASETS_OFFLINE=1) where there is no network"))


def models_list(db: DbOption = default_db(), busy_timeout: BusyTimeoutOption = 0.0) -> None:
    """List embedded models and the models in the store."""
    from harness.weights.models import EMBEDDED
    from harness.report.formats import to_rich
    from harness.store import Store

    for name, model in EMBEDDED.items():
        out.print(Text(f"embedded: {name} — {model.description}"))
    if db.exists():
        with Store.open(db, read_only=True, busy_timeout=busy_timeout) as store:
            out.print(to_rich(store.models(), title=f"models in {db}"))
