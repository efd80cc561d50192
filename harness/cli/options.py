"""Every CLI option, declared once as an Annotated alias and shared by all verbs that take it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from harness.common import paths
from harness.common.errors import HarnessError

_STORE = "Store"
_SELECT = "What to evaluate"
_BACKEND = "Backend"
_OUTPUT = "Output"
_SAFETY = "Safety"
INPUT_PANEL = "Input"
METHOD_PANEL = "Method"

VerboseOption = Annotated[bool, typer.Option(
    "--verbose", "-v", envvar="HARNESS_VERBOSE", help="Also show the libraries' own output: lm-eval's and "
    "transformers' progress bars and log lines, Python warnings (matplotlib, scipy, torch), which are hidden by "
    "default. Give it before the verb: harness -v eval ...")]

DbOption = Annotated[Path, typer.Option(
    "--db", envvar="HARNESS_DB", help="DuckDB file holding every result.", rich_help_panel=_STORE)]
BusyTimeoutOption = Annotated[float, typer.Option(
    "--busy-timeout", min=0, envvar="HARNESS_BUSY_TIMEOUT", help="Seconds to wait while another process holds "
    "the database (DuckDB allows one writer); 0 fails at once with a 'database is busy' line.",
    rich_help_panel=_STORE)]

TrustRemoteCodeOption = Annotated[bool, typer.Option(
    "--trust-remote-code", help="Accept checkpoints that ask to run their own Python code (auto_map in their "
    "config, *.py files). That code runs with your rights: only for authors you trust.", rich_help_panel=_SAFETY)]
AllowPickleOption = Annotated[bool, typer.Option(
    "--allow-pickle", help="Accept pickle weights (*.bin, *.pt, *.pth, *.ckpt); they are read with torch's "
    "weights-only unpickler and converted once to safetensors. Only for authors you trust.",
    rich_help_panel=_SAFETY)]
AllowOutsideLinksOption = Annotated[bool, typer.Option(
    "--allow-outside-links", help="Accept model folders whose files are links to places outside the folder "
    "(a hub snapshot's links into its own cache are always fine). Refused by default because a folder's author "
    "could point its weights or config at any file you can read; devices and fifos are refused even so.",
    rich_help_panel=_SAFETY)]

ModelsOption = Annotated[Optional[list[str]], typer.Option(
    "--models", "-m", help="Embedded model names, local HF folders, variants, or hub ids (org/name or "
    "org/name@revision), each optionally stored under another name as TARGET=NAME "
    "(repeat, or comma-separate). Default: the embedded smollm2-135m.", rich_help_panel=_SELECT)]
TasksOption = Annotated[Optional[list[str]], typer.Option(
    "--tasks", "-t", help="Built-in tasks or suites, or any lm-eval task, group or tag (repeat, or comma-separate); "
    "a group runs as its leaf tasks. 'builtin:NAME' / 'lm-eval:NAME' pick one where both know NAME. Default: core.",
    rich_help_panel=_SELECT)]
SuiteOption = Annotated[Optional[Path], typer.Option(
    "--suite", help="TOML file listing models, tasks and settings.", rich_help_panel=_SELECT)]
IncludePathOption = Annotated[Optional[list[Path]], typer.Option(
    "--include-path", help="A folder of your own lm-eval task YAMLs (repeatable); its tasks and groups join "
    "lm-eval's registry.", rich_help_panel=_SELECT)]
LimitOption = Annotated[Optional[int], typer.Option(
    "--limit", min=1, help="Evaluate only the first N items of each task.", rich_help_panel=_SELECT)]

BackendOption = Annotated[str, typer.Option(
    "--backend", help="hf (transformers), vllm, or auto (vllm when it and a CUDA device are present, else hf); "
    "the backend used is recorded.", rich_help_panel=_BACKEND)]
BatchSizeOption = Annotated[int, typer.Option(
    "--batch-size", min=1, help="Sequences per forward pass.", rich_help_panel=_BACKEND)]
DeviceOption = Annotated[str, typer.Option("--device", help="torch device.", rich_help_panel=_BACKEND)]
DtypeOption = Annotated[str, typer.Option(
    "--dtype", help="auto (bfloat16 on a CUDA device that supports it, else float32), float32, bfloat16 or float16; "
    "the dtype used is recorded.", rich_help_panel=_BACKEND)]
ChunkOption = Annotated[int, typer.Option(
    "--chunk-size", min=1, help="Requests per committed chunk (a crash loses at most one).",
    rich_help_panel=_BACKEND)]
TensorParallelOption = Annotated[int, typer.Option(
    "--tensor-parallel-size", min=1, help="vLLM: GPUs per model replica.", rich_help_panel=_BACKEND)]
DataParallelOption = Annotated[int, typer.Option(
    "--data-parallel-size", min=1, help="vLLM: model replicas.", rich_help_panel=_BACKEND)]
GpuMemoryOption = Annotated[float, typer.Option(
    "--gpu-memory-utilization", min=0.01, max=1.0, help="vLLM: share of GPU memory the engine may take.",
    rich_help_panel=_BACKEND)]
MaxModelLenOption = Annotated[Optional[int], typer.Option(
    "--max-model-len", min=2, help="vLLM: context length (default: the model's).", rich_help_panel=_BACKEND)]
EnforceEagerOption = Annotated[bool, typer.Option(
    "--enforce-eager", help="vLLM: no CUDA graphs (faster start, slower steps).", rich_help_panel=_BACKEND)]

_PROMPT = "Prompting (as lm-eval's simple_evaluate; each is part of the run's identity)"
NumFewshotOption = Annotated[Optional[int], typer.Option(
    "--num-fewshot", min=0, help="Few-shot examples per prompt (default: each task's own).", rich_help_panel=_PROMPT)]
FewshotSeedOption = Annotated[int, typer.Option(
    "--fewshot-seed", min=0, help="Seed that picks the few-shot examples.", rich_help_panel=_PROMPT)]
ApplyChatTemplateOption = Annotated[bool, typer.Option(
    "--apply-chat-template", help="Wrap prompts in the model's chat template.", rich_help_panel=_PROMPT)]
ChatTemplateOption = Annotated[Optional[str], typer.Option(
    "--chat-template", help="With several templates in the tokenizer: which one (implies --apply-chat-template).",
    rich_help_panel=_PROMPT)]
MultiturnOption = Annotated[Optional[bool], typer.Option(
    "--fewshot-as-multiturn/--no-fewshot-as-multiturn", help="Each few-shot example its own chat turn (default: "
    "on exactly when a chat template is applied).", rich_help_panel=_PROMPT)]
SystemInstructionOption = Annotated[Optional[str], typer.Option(
    "--system-instruction", help="A system message (without a chat template: text before the prompt).",
    rich_help_panel=_PROMPT)]
GenKwargsOption = Annotated[Optional[str], typer.Option(
    "--gen-kwargs", help="Generation settings for generate_until tasks, as key=value,... or a JSON object "
    "(e.g. max_gen_toks=128,temperature=0). Generation is greedy unless these say otherwise.",
    rich_help_panel=_PROMPT)]

_SCALE = "Scale out"
ExecutorOption = Annotated[str, typer.Option(
    "--executor", help="local (this process) or ray (one Ray task per model and task shard, each writing "
    "Parquet shards that this process ingests; needs the `distributed` extra).", rich_help_panel=_SCALE)]
ShardsOption = Annotated[int, typer.Option(
    "--shards", min=1, help="ray: split each task's items into N shards, one Ray task each.", rich_help_panel=_SCALE)]
RayAddressOption = Annotated[Optional[str], typer.Option(
    "--ray-address", help="ray: the cluster to join (default: RAY_ADDRESS, else a new local Ray instance).",
    rich_help_panel=_SCALE)]

SourceOption = Annotated[Optional[str], typer.Option(
    "--source", help="Read an imported source (see `harness import`) instead of the evaluated runs. irt fit, "
    "adaptive replay and race: a per-item import (`harness import items`). snr: a per-checkpoint import, for checkpoint noise (default: item-bootstrap noise from the runs' per-item samples).",
    rich_help_panel=INPUT_PANEL)]
AverageCheckpointsOption = Annotated[Optional[int], typer.Option(
    "--average", min=1, help="snr --source: average each run's last N checkpoints (paper 5.2): signal from the "
    "averaged final scores, noise from each run's trailing N-checkpoint mean.", show_default=False,
    rich_help_panel=INPUT_PANEL)]
SnrFilterOption = Annotated[Optional[int], typer.Option(
    "--snr-filter", min=1, help="Rank on only the K benchmarks with the highest signal-to-noise ratio (report: "
    "the others are shown as dropped).", rich_help_panel=METHOD_PANEL)]
AllowMixedOption = Annotated[bool, typer.Option(
    "--allow-mixed", help="Compare models even where they ran another task version, other run settings or other "
    "items: each model's own score, with a note saying where (default: such models are refused, and models "
    "evaluated on different items are scored on the items they share).", rich_help_panel=INPUT_PANEL)]
RankLimitOption = Annotated[Optional[int], typer.Option(
    "--limit", min=1, help="Use only runs made with --limit N (default: each model's run covering the most items).",
    rich_help_panel=INPUT_PANEL)]
# 20 is the fewest resamples whose bootstrap p-value floor 1/(n_boot+1) is below 0.05
# (tournaments.stats.min_bootstrap_resamples(1)); with fewer, no percentile test can come out significant.
NBootOption = Annotated[int, typer.Option(
    "--n-boot", min=20, help="Bootstrap resamples for the confidence intervals. compare: its bootstrap p-values "
    "cannot go below 1/(n_boot+1), so with m tasks Holm needs n_boot >= m/0.05 to reach 0.05; the output says "
    "when too few resamples held a task back.")]

SeedOption = Annotated[int, typer.Option("--seed", help="Seed for every random draw.", rich_help_panel=_OUTPUT)]
_SAFE_CSV = ("Text cells that start with =, +, -, @, tab or CR get a leading ' (OWASP), so a spreadsheet shows "
             "them rather than running them as formulas; numbers stay numbers.")
FormatOption = Annotated[str, typer.Option(
    "--format", "-f", help="table, md, json or csv. Names are data: control characters show escaped (\\x1b) and "
    "Markdown syntax in md is escaped; json keeps them exact. csv: " + _SAFE_CSV, rich_help_panel=_OUTPUT)]
DisplayOption = Annotated[str, typer.Option(
    "--display", help="Progress: rich (live bars), plain (one line per chunk, for logs) or none.",
    rich_help_panel=_OUTPUT)]
CsvOption = Annotated[bool, typer.Option(
    "--csv", help="Print CSV instead of a table. " + _SAFE_CSV, rich_help_panel=_OUTPUT)]


def parse_gen_kwargs(text: str | None) -> dict | None:
    """`key=value,...` (numbers and true/false understood) or a JSON object; anything else is one line."""
    import json

    if text is None or not text.strip():
        return None
    if text.lstrip().startswith("{"):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise HarnessError(f"--gen-kwargs {text!r}: not a JSON object")
        return value
    parsed: dict = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, raw = part.partition("=")
        if not sep or not key.strip():
            raise HarnessError(f"--gen-kwargs {text!r}: expected key=value pairs, got {part!r}")
        try:
            parsed[key.strip()] = json.loads(raw.strip().lower() if raw.strip().lower() in ("true", "false")
                                             else raw.strip())
        except ValueError:
            parsed[key.strip()] = raw.strip()
    return parsed


def split_list(values: list[str] | None) -> list[str]:
    """Accept both repeated options and comma-separated lists; a value that is an existing path is kept whole, so a
    folder whose name holds a comma can be given (alone, as its own --models)."""
    return [part.strip() for value in values or []
            for part in ([value] if "," in value and paths.exists(Path(value)) else value.split(",")) if part.strip()]


# `harness samples`
ItemOption = Annotated[Optional[int], typer.Option(
    "--item", min=0, help="Show only this item (the task's document number).", rich_help_panel=_OUTPUT)]
WrongOption = Annotated[bool, typer.Option(
    "--wrong", help="Show only the items the model got wrong.", rich_help_panel=_OUTPUT)]
SampleLimitOption = Annotated[Optional[int], typer.Option(
    "--limit", min=1, help="Show only the first K items (after --wrong).", rich_help_panel=_OUTPUT)]
SamplesFormatOption = Annotated[str, typer.Option(
    "--format", "-f", help="table, or json (exact texts, for programs).", rich_help_panel=_OUTPUT)]

# `harness rank`
SaveOption = Annotated[Optional[str], typer.Option(
    "--save", help="Also store the ranking in the store's `rankings` and `ranking_rows` tables under NAME (with its "
    "method, parameters, input hash and this command line); saving NAME again replaces it. With --method all: one "
    "ranking per method, as NAME/METHOD.", rich_help_panel=_OUTPUT)]

# `harness adaptive replay`
BudgetOption = Annotated[float, typer.Option(
    "--budget", min=0.0, max=1.0, help="Fraction of each task's items a method may evaluate per model, in (0, 1].",
    rich_help_panel=METHOD_PANEL)]
# `harness eval --adaptive`
AdaptiveOption = Annotated[bool, typer.Option(
    "--adaptive", help="Answer only the items that say most about each model, in small batches, until --budget (a "
    "fraction of each task) is spent or the estimate's standard error is under --target-se. Items come from the "
    "task's latest item response fit (`harness irt fit`), else a seeded random subset; the estimate, its standard "
    "error and the items are stored in `estimates`, and a later full run reuses every answer.",
    rich_help_panel=_SELECT)]
TargetSeOption = Annotated[Optional[float], typer.Option(
    "--target-se", help="With --adaptive: stop a (model, task) once its estimate's standard error is at most this.",
    rich_help_panel=_SELECT)]
AdaptiveBatchOption = Annotated[Optional[int], typer.Option(
    "--adaptive-batch", min=1, help="With --adaptive: items per batch (default: an eighth of the budget, at least "
    "4).", rich_help_panel=_SELECT)]
FoldsOption = Annotated[int, typer.Option(
    "--folds", min=2, help="K: models split into K folds, each held out once (split top: the best ceil(n/K) "
    "models are held out).", rich_help_panel=METHOD_PANEL)]
SplitOption = Annotated[str, typer.Option(
    "--split", help="random (K folds) or top (the best models by full score held out: extrapolation).",
    rich_help_panel=METHOD_PANEL)]
RepeatsOption = Annotated[int, typer.Option(
    "--repeats", min=1, help="Random subsets (and CAT randomisations) per fold; MAE and tau are their means.",
    rich_help_panel=METHOD_PANEL)]
ReplayMethodsOption = Annotated[Optional[list[str]], typer.Option(
    "--methods", help="random, random+regression, irt, cat (repeat, or comma-separate). Default: all four.",
    rich_help_panel=METHOD_PANEL)]
IrtModelOption = Annotated[str, typer.Option(
    "--model", help="Item response model: 2pl (difficulty and discrimination per item) or 1pl (difficulty only).",
    rich_help_panel=METHOD_PANEL)]
TopOption = Annotated[int, typer.Option(
    "--top", min=1, help="Race for the top K: models stop getting items once they are surely in or out.",
    rich_help_panel=METHOD_PANEL)]
StartOption = Annotated[int, typer.Option(
    "--start", min=2, help="Items per task every model gets in a race's first round (then 2x, 4x, ... for the "
    "models still racing).", rich_help_panel=METHOD_PANEL)]
ConfidenceOption = Annotated[float, typer.Option(
    "--confidence", min=0.5, max=1.0, help="How sure the race must be of each model's side of the top-K boundary "
    "(its item-bootstrap probability of a top-K place).", rich_help_panel=METHOD_PANEL)]
ReplayTasksOption = Annotated[Optional[list[str]], typer.Option(
    "--tasks", "-t", help="Tasks of the import to replay (repeat, or comma-separate). Default: all.",
    rich_help_panel=INPUT_PANEL)]
