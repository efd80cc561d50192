"""`harness eval`: evaluate models on tasks into the store."""

from __future__ import annotations

import os

import typer
from rich.table import Table
from rich.text import Text

from harness.commands._common import err, out
from harness.errors import HarnessError
from harness.options import (
    AllowPickleOption, BackendOption, BatchSizeOption, BusyTimeoutOption, ChunkOption, DataParallelOption, DbOption,
    DeviceOption, DisplayOption, DtypeOption, EnforceEagerOption, ExecutorOption, GpuMemoryOption, LimitOption,
    MaxModelLenOption, ModelsOption, RayAddressOption, ShardsOption, SuiteOption, TasksOption, TensorParallelOption,
    TrustRemoteCodeOption, split_list,
)
from harness.paths import default_db


def eval_(
    models: ModelsOption = None,
    tasks: TasksOption = None,
    suite: SuiteOption = None,
    db: DbOption = default_db(),
    limit: LimitOption = None,
    batch_size: BatchSizeOption = 16,
    backend: BackendOption = "hf",
    device: DeviceOption = "cpu",
    dtype: DtypeOption = "float32",
    chunk_size: ChunkOption = 256,
    display: DisplayOption = "rich",
    tensor_parallel_size: TensorParallelOption = 1,
    data_parallel_size: DataParallelOption = 1,
    gpu_memory_utilization: GpuMemoryOption = 0.9,
    max_model_len: MaxModelLenOption = None,
    enforce_eager: EnforceEagerOption = False,
    trust_remote_code: TrustRemoteCodeOption = False,
    allow_pickle: AllowPickleOption = False,
    busy_timeout: BusyTimeoutOption = 0.0,
    executor: ExecutorOption = "local",
    shards: ShardsOption = 1,
    ray_address: RayAddressOption = None,
) -> None:
    """Evaluate every model on every task; finished runs are skipped, interrupted ones resume."""
    os.environ.setdefault("TQDM_DISABLE", "1")  # lm-eval's and datasets' own bars would fight ours
    from pydantic import ValidationError

    from harness.display import DISPLAYS, Display

    from harness import models as model_registry
    from harness.backends import resolve_backend
    from harness.config import EvalSettings, ModelSpec, SuiteSpec, load_suite
    from harness.executors import check_executor, make_runner
    from harness.paths import results_dir
    from harness.store import Store
    from harness.tasks.lmeval import prepare
    from harness.tasks.registry import resolve_tasks
    from harness.trust import LoadPolicy

    if display not in DISPLAYS:
        raise HarnessError(f"--display '{display}': choose one of {', '.join(DISPLAYS)}")
    try:
        settings = EvalSettings(backend=backend, batch_size=batch_size, limit=limit, device=device, dtype=dtype,
                                chunk_size=chunk_size, tensor_parallel_size=tensor_parallel_size,
                                data_parallel_size=data_parallel_size, gpu_memory_utilization=gpu_memory_utilization,
                                max_model_len=max_model_len, enforce_eager=enforce_eager)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise HarnessError(f"--{first['loc'][0].replace('_', '-')}: {first['msg']}") from None
    if suite is not None:
        spec = load_suite(suite)
        settings = spec.settings.model_copy(update={"limit": limit or spec.settings.limit})
    else:
        names = split_list(models) or [model_registry.DEFAULT_MODEL]
        spec = SuiteSpec(models=[ModelSpec(name=n) for n in names], tasks=split_list(tasks) or ["core"],
                         settings=settings)
    # Validate everything before the store is opened, so bad input never touches it.
    resolve_backend(settings.backend)
    check_executor(executor, shards, ray_address, settings)
    policy = LoadPolicy(trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
    refs = [model_registry.resolve(m.target, name=m.name if m.path else None, policy=policy) for m in spec.models]
    chosen = resolve_tasks(spec.tasks)
    root = results_dir()
    prepared = [prepare(task, root / "tasks") for task in chosen]
    with Store.open(db, busy_timeout=busy_timeout) as store:
        runner = make_runner(executor, store, settings, root, Display(display, err), shards, ray_address)
        outcomes = runner.run(refs, prepared)
    _print_outcomes(outcomes)
    if any(o.status == "failed" for o in outcomes):
        raise typer.Exit(1)


def _print_outcomes(outcomes) -> None:
    table = Table(title="evaluation summary", header_style="bold")
    for column in ("model", "task", "status", "metric", "value", "cached", "computed", "seconds"):
        table.add_column(column, justify="right" if column in {"value", "cached", "computed", "seconds"} else "left")
    for o in outcomes:
        style = {"failed": "red", "skipped": "dim"}.get(o.status, "")
        value = "–" if o.value is None else f"{o.value:.4f}"
        table.add_row(Text(o.model), Text(o.task), Text(o.status, style=style), o.metric, value,
                      str(o.n_cached), str(o.n_computed), f"{o.seconds:.1f}")
    out.print(table)
    for o in outcomes:
        if o.error:
            err.print(Text(f"{o.model} · {o.task}: {o.error}", style="red"))
