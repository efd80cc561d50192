"""Specs: what the user asked for (validated, immutable). Computing happens in runner, state in store."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.errors import HarnessError


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Spec):
    """A model: an embedded name, or a display name plus a local folder."""

    name: str = Field(min_length=1)
    path: str | None = None

    @property
    def target(self) -> str:
        return self.path or self.name


class EvalSettings(_Spec):
    backend: Literal["hf"] = "hf"
    batch_size: int = Field(default=16, ge=1)
    limit: int | None = Field(default=None, ge=1)
    device: str = "cpu"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    chunk_size: int = Field(default=256, ge=1)
    bootstrap_iters: int = Field(default=1000, ge=0)

    def identity(self) -> dict:
        """The settings that change results (batch size and chunking do not, by design)."""
        return {"backend": self.backend, "dtype": self.dtype, "limit": self.limit}


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
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarnessError(f"suite file {path}: not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise HarnessError(f"suite file {path}: not valid TOML ({exc})") from None
    try:
        return SuiteSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise HarnessError(f"suite file {path}: field '{where}': {first['msg']}") from None
