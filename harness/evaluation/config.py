"""Specs: what the user asked for (validated, immutable). Computing happens in runner, state in store."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.common.errors import HarnessError
from harness.common.spec_files import first_error, one_line, read_toml


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ModelSpec(_Spec):
    """A model: an embedded name, or a display name plus where to load it: `path` (a local folder, variant or
    embedded model) or `hub` (`org/name@revision`)."""

    name: str = Field(min_length=1)
    path: str | None = None
    hub: str | None = None

    @model_validator(mode="after")
    def _one_location(self) -> "ModelSpec":
        if self.path is not None and self.hub is not None:
            raise ValueError("give either path or hub, not both")
        return self

    @classmethod
    def parse(cls, text: str) -> "ModelSpec":
        """`TARGET=NAME` (an embedded model, variant, folder or hub id, stored as NAME), or just TARGET."""
        target, equals, name = text.rpartition("=")
        if not equals:
            return cls(name=text)
        if not target or not name:
            raise ValueError(f"--models {text!r}: expected TARGET=NAME")
        return cls(name=name, path=target)

    @property
    def target(self) -> str:
        return self.path or self.hub or self.name

    @property
    def named(self) -> bool:
        """Whether `name` is a display name for a location rather than the model's own name."""
        return self.path is not None or self.hub is not None


class EvalSettings(_Spec):
    backend: Literal["hf", "vllm", "auto"] = "auto"
    batch_size: int = Field(default=16, ge=1)
    limit: int | None = Field(default=None, ge=1)
    device: str = "cpu"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    chunk_size: int = Field(default=256, ge=1)
    bootstrap_iters: int = Field(default=1000, ge=0)
    # vLLM engine options, passed through unchanged (ignored by the hf backend).
    tensor_parallel_size: int = Field(default=1, ge=1)
    data_parallel_size: int = Field(default=1, ge=1)
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    max_model_len: int | None = Field(default=None, ge=2)
    enforce_eager: bool = False
    # Prompting, with the meaning lm-eval 0.4.13's simple_evaluate gives them.
    num_fewshot: int | None = Field(default=None, ge=0)
    fewshot_seed: int = Field(default=1234, ge=0, lt=2**32)
    apply_chat_template: bool | str = False
    fewshot_as_multiturn: bool | None = None  # None: on exactly when a chat template is applied (lm-eval's default)
    system_instruction: str | None = None
    gen_kwargs: dict[str, str | int | float | bool] | None = None
    # Which items (doc ids), instead of the first `limit`: an adaptive evaluation's chosen items. Prompts are built
    # as in a full run (few-shot examples included) and only these are answered, so their answers serve any run.
    items: tuple[int, ...] | None = None

    @field_validator("items")
    @classmethod
    def _items(cls, items: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if items is not None and (not items or min(items) < 0):
            raise ValueError("items: give one or more doc ids, each 0 or more")
        return None if items is None else tuple(sorted(set(items)))

    @model_validator(mode="after")
    def _limit_or_items(self) -> "EvalSettings":
        if self.limit is not None and self.items is not None:
            raise ValueError("give either limit or items, not both")
        return self

    @field_validator("gen_kwargs")
    @classmethod
    def _reproducible(cls, gen_kwargs: dict | None) -> dict | None:
        from harness.backends.sampling import sampling_error

        if gen_kwargs is not None and (error := sampling_error(gen_kwargs)) is not None:
            raise ValueError(error)
        return gen_kwargs

    def answer_identity(self) -> dict:
        """The settings that change a single answer: backend, dtype, device kind (cpu, cuda) and context length.
        Batch size, chunking and parallelism do not (tests/test_eval.py checks batch size on the tiny model)."""
        device = self.device.split(":")[0]
        optional = {"device": device if device != "cpu" else None, "max_model_len": self.max_model_len}
        return {"backend": self.backend, "dtype": self.dtype, **{k: v for k, v in optional.items() if v is not None}}

    def identity(self) -> dict:
        """The settings that change a run's results: its answers' settings, which items, and how prompts are built.

        Settings left at their defaults are left out, so run ids made before a setting existed stay valid.
        """
        optional = {"num_fewshot": self.num_fewshot, "apply_chat_template": self.apply_chat_template or None,
                    "fewshot_as_multiturn": self.multiturn if self.apply_chat_template else None,
                    "system_instruction": self.system_instruction, "gen_kwargs": self.gen_kwargs,
                    "fewshot_seed": self.fewshot_seed if self.fewshot_seed != 1234 else None,
                    "items": None if self.items is None else hashlib.sha256(
                        ",".join(map(str, self.items)).encode()).hexdigest()}
        return {**self.answer_identity(), "limit": self.limit, **{k: v for k, v in optional.items() if v is not None}}

    @property
    def multiturn(self) -> bool:
        return bool(self.apply_chat_template) if self.fewshot_as_multiturn is None else self.fewshot_as_multiturn


class SuiteSpec(_Spec):
    models: list[ModelSpec] = Field(min_length=1)
    tasks: list[str] = Field(default_factory=lambda: ["core"], min_length=1)
    include_path: list[str] = Field(default_factory=list)
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
