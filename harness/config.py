"""Specs: what the user asked for (validated, immutable). Computing happens in runner, state in store."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.errors import HarnessError
from harness.spec_files import first_error, one_line, read_toml


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ModelSpec(_Spec):
    """A model: an embedded name, or a display name plus a local folder."""

    name: str = Field(min_length=1)
    path: str | None = None

    @property
    def target(self) -> str:
        return self.path or self.name


class EvalSettings(_Spec):
    backend: Literal["hf", "vllm", "auto"] = "hf"
    batch_size: int = Field(default=16, ge=1)
    limit: int | None = Field(default=None, ge=1)
    device: str = "cpu"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    chunk_size: int = Field(default=256, ge=1)
    bootstrap_iters: int = Field(default=1000, ge=0)
    # vLLM engine options, passed through unchanged (ignored by the hf backend).
    tensor_parallel_size: int = Field(default=1, ge=1)
    data_parallel_size: int = Field(default=1, ge=1)
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    max_model_len: int | None = Field(default=None, ge=2)
    enforce_eager: bool = False

    def identity(self) -> dict:
        """The settings that change results (batch size, chunking and parallelism do not, by design).

        max_model_len truncates long requests, so it counts when set; unset it leaves older run ids intact.
        """
        length = {"max_model_len": self.max_model_len} if self.max_model_len is not None else {}
        return {"backend": self.backend, "dtype": self.dtype, "limit": self.limit, **length}


class SuiteSpec(_Spec):
    models: list[ModelSpec] = Field(min_length=1)
    tasks: list[str] = Field(default_factory=lambda: ["core"], min_length=1)
    settings: EvalSettings = Field(default_factory=EvalSettings)

    @field_validator("models")
    @classmethod
    def _unique_names(cls, models: list[ModelSpec]) -> list[ModelSpec]:
        names = [m.name for m in models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate model name(s): {', '.join(dupes)}")
        return models


def load_suite(path: Path) -> SuiteSpec:
    """Read a suite TOML file; any problem becomes one line naming the file and the field."""
    raw = read_toml(path, "suite file")
    try:
        return SuiteSpec.model_validate(raw)
    except ValidationError as exc:
        where, message = first_error(exc)
        raise HarnessError(f"suite file {one_line(str(path))}: field '{where or '(top level)'}': {message}") from None
