"""Every CLI option, declared once as an Annotated alias and shared by all verbs that take it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

_STORE = "Store"
_SELECT = "What to evaluate"
_BACKEND = "Backend"
_OUTPUT = "Output"
_SAFETY = "Safety"

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

ModelsOption = Annotated[Optional[list[str]], typer.Option(
    "--models", "-m", help="Model names or local HF folders (repeat, or comma-separate). "
    "Default: the embedded smollm2-135m.", rich_help_panel=_SELECT)]
TasksOption = Annotated[Optional[list[str]], typer.Option(
    "--tasks", "-t", help="Task or suite names (repeat, or comma-separate). Default: core.",
    rich_help_panel=_SELECT)]
SuiteOption = Annotated[Optional[Path], typer.Option(
    "--suite", help="TOML file listing models, tasks and settings.", rich_help_panel=_SELECT)]
LimitOption = Annotated[Optional[int], typer.Option(
    "--limit", min=1, help="Evaluate only the first N items of each task.", rich_help_panel=_SELECT)]

BackendOption = Annotated[str, typer.Option(
    "--backend", help="hf (transformers), vllm, or auto (vllm when it and a CUDA device are present).",
    rich_help_panel=_BACKEND)]
BatchSizeOption = Annotated[int, typer.Option(
    "--batch-size", min=1, help="Sequences per forward pass.", rich_help_panel=_BACKEND)]
DeviceOption = Annotated[str, typer.Option("--device", help="torch device.", rich_help_panel=_BACKEND)]
DtypeOption = Annotated[str, typer.Option("--dtype", help="float32, bfloat16 or float16.", rich_help_panel=_BACKEND)]
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

_SCALE = "Scale out"
ExecutorOption = Annotated[str, typer.Option(
    "--executor", help="local (this process) or ray (one Ray task per model and task shard, each writing "
    "Parquet shards that this process ingests; needs the `distributed` extra).", rich_help_panel=_SCALE)]
ShardsOption = Annotated[int, typer.Option(
    "--shards", min=1, help="ray: split each task's items into N shards, one Ray task each.", rich_help_panel=_SCALE)]
RayAddressOption = Annotated[Optional[str], typer.Option(
    "--ray-address", help="ray: the cluster to join (default: RAY_ADDRESS, else a new local Ray instance).",
    rich_help_panel=_SCALE)]

SeedOption = Annotated[int, typer.Option("--seed", help="Seed for every random draw.", rich_help_panel=_OUTPUT)]
FormatOption = Annotated[str, typer.Option(
    "--format", "-f", help="table, md, json or csv.", rich_help_panel=_OUTPUT)]
DisplayOption = Annotated[str, typer.Option(
    "--display", help="Progress: rich (live bars), plain (one line per chunk, for logs) or none.",
    rich_help_panel=_OUTPUT)]
CsvOption = Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.", rich_help_panel=_OUTPUT)]


def split_list(values: list[str] | None) -> list[str]:
    """Accept both repeated options and comma-separated lists."""
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]
