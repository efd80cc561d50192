"""`harness eval`: evaluate models on tasks into the store."""

from __future__ import annotations

import os

import typer
from rich.table import Table
from rich.text import Text

from harness.cli.commands._common import err, out
from harness.common.errors import HarnessError
from harness.cli.options import (
    AdaptiveBatchOption, AdaptiveOption, AllowOutsideLinksOption, AllowPickleOption, ApplyChatTemplateOption,
    BackendOption, BatchSizeOption, BudgetOption, BusyTimeoutOption, ChatTemplateOption, ChunkOption,
    DataParallelOption, DbOption, DeviceOption, DisplayOption, DtypeOption, EnforceEagerOption,
    ExecutorOption, FewshotSeedOption, GenKwargsOption, GpuMemoryOption, IncludePathOption, LimitOption,
    MaxModelLenOption, ModelsOption, MultiturnOption, NumFewshotOption, RayAddressOption, ShardsOption, SuiteOption,
    SeedOption, SystemInstructionOption, TargetSeOption, TasksOption, TensorParallelOption, TrustRemoteCodeOption,
    parse_gen_kwargs, split_list,
)
from harness.common.paths import default_db

# eval_'s parameters that are EvalSettings fields of the same name.
_SETTINGS = ("backend", "batch_size", "limit", "device", "dtype", "chunk_size", "tensor_parallel_size",
             "data_parallel_size", "gpu_memory_utilization", "max_model_len", "enforce_eager", "num_fewshot",
             "fewshot_seed", "fewshot_as_multiturn", "system_instruction")


def eval_(
    ctx: typer.Context,
    models: ModelsOption = None,
    tasks: TasksOption = None,
    suite: SuiteOption = None,
    include_path: IncludePathOption = None,
    db: DbOption = default_db(),
    limit: LimitOption = None,
    batch_size: BatchSizeOption = 16,
    backend: BackendOption = "auto",
    device: DeviceOption = "cpu",
    dtype: DtypeOption = "auto",
    chunk_size: ChunkOption = 256,
    display: DisplayOption = "rich",
    num_fewshot: NumFewshotOption = None,
    fewshot_seed: FewshotSeedOption = 1234,
    apply_chat_template: ApplyChatTemplateOption = False,
    chat_template: ChatTemplateOption = None,
    fewshot_as_multiturn: MultiturnOption = None,
    system_instruction: SystemInstructionOption = None,
    gen_kwargs: GenKwargsOption = None,
    tensor_parallel_size: TensorParallelOption = 1,
    data_parallel_size: DataParallelOption = 1,
    gpu_memory_utilization: GpuMemoryOption = 0.9,
    max_model_len: MaxModelLenOption = None,
    enforce_eager: EnforceEagerOption = False,
    trust_remote_code: TrustRemoteCodeOption = False,
    allow_pickle: AllowPickleOption = False,
    allow_outside_links: AllowOutsideLinksOption = False,
    busy_timeout: BusyTimeoutOption = 0.0,
    executor: ExecutorOption = "local",
    shards: ShardsOption = 1,
    ray_address: RayAddressOption = None,
    adaptive: AdaptiveOption = False,
    budget: BudgetOption = 0.25,
    target_se: TargetSeOption = None,
    adaptive_batch: AdaptiveBatchOption = None,
    seed: SeedOption = 0,
) -> None:
    """Evaluate every model on every task; finished runs are skipped, interrupted ones resume.

    With --suite, every setting given on the command line overrides the file's."""
    os.environ.setdefault("TQDM_DISABLE", "1")  # lm-eval's and datasets' own bars would fight ours
    from pydantic import ValidationError

    from harness.common.display import DISPLAYS, Display

    from harness.api import evaluate
    from harness.evaluation.config import EvalSettings, ModelSpec, SuiteSpec, load_suite
    from harness.weights import models as model_registry

    if display not in DISPLAYS:
        raise HarnessError(f"--display '{display}': choose one of {', '.join(DISPLAYS)}")
    given = {name: value for name, value in locals().items() if name in _SETTINGS}
    given["gen_kwargs"] = parse_gen_kwargs(gen_kwargs)
    given["apply_chat_template"] = chat_template or apply_chat_template
    # by the enum's name: typer ships its own click, whose ParameterSource is not click's
    typed = {name for name in (*_SETTINGS, "gen_kwargs", "apply_chat_template", "chat_template")
             if getattr(ctx.get_parameter_source(name), "name", "DEFAULT") != "DEFAULT"}
    typed |= {"apply_chat_template"} if "chat_template" in typed else set()
    spec = load_suite(suite) if suite is not None else None
    try:
        if spec is None:
            settings = EvalSettings(**given)
        else:  # the file's settings, then what the command line says explicitly
            settings = EvalSettings(**(spec.settings.model_dump() | {k: v for k, v in given.items() if k in typed}))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise HarnessError(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}") from None
    if spec is None:
        names = split_list(models) or [model_registry.DEFAULT_MODEL]
        try:
            specs = [ModelSpec.parse(n) for n in names]
        except ValueError as exc:
            raise HarnessError(str(exc)) from None
        try:
            spec = SuiteSpec(models=specs, tasks=split_list(tasks) or ["core"], settings=settings)
        except ValidationError as exc:  # e.g. two models given one name
            raise HarnessError(f"--models: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    elif models or tasks:
        raise HarnessError("--suite: give models and tasks in the suite file, not also with --models/--tasks")
    options = dict(include_path=(*spec.include_path, *(include_path or [])), trust_remote_code=trust_remote_code,
                   allow_pickle=allow_pickle, allow_outside_links=allow_outside_links, executor=executor,
                   shards=shards, ray_address=ray_address, busy_timeout=busy_timeout)
    if adaptive:
        from harness.evaluation.adaptive import evaluate_adaptive

        _print_estimates(evaluate_adaptive(spec.models, spec.tasks, db, settings, budget=budget, target_se=target_se,
                                           batch=adaptive_batch, seed=seed, display=Display(display, err),
                                           **options))
        return
    if target_se is not None or adaptive_batch is not None:
        raise HarnessError("--target-se and --adaptive-batch: only with --adaptive")
    outcomes = evaluate(spec.models, spec.tasks, db, settings=settings, display=Display(display, err), **options)
    _print_outcomes(outcomes)
    if any(o.status == "failed" for o in outcomes):
        raise typer.Exit(1)


def _print_estimates(estimates) -> None:
    table = Table(title="adaptive evaluation: estimated task scores", header_style="bold")
    for column in ("model", "task", "metric", "estimate", "± se", "items", "method", "computed"):
        table.add_column(column, justify="left" if column in {"model", "task", "metric", "method"} else "right")
    for e in estimates:
        table.add_row(Text(e.model), Text(e.task), e.metric, f"{e.estimate:.4f}",
                      "–" if e.stderr != e.stderr else f"{e.stderr:.4f}", f"{len(e.items)}/{e.n_total}", e.method,
                      str(e.computed))
    out.print(table)


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
            err.print(Text(f"{o.model} · {o.task}: {o.error}", style="red"), soft_wrap=True)
