"""The study file of `harness hpo run`: which optimizers, tasks and seeds, validated before anything runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.common.errors import HarnessError
from harness.common.spec_files import first_error, one_line, read_toml
from hpo.optimizers import OPTIMIZERS
from hpo.tasks import Task, make_task


class StudySpec(BaseModel):
    """Every optimizer on every task for every seed; n_trials=None uses carps' rule per task."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    study: str = Field(min_length=1)
    optimizers: tuple[str, ...] = Field(min_length=1)
    tasks: tuple[str, ...] = Field(min_length=1)
    # Stored as int32, and numpy refuses negative seeds: refuse both here, before any run is stored.
    seeds: tuple[Annotated[int, Field(ge=0, le=2**31 - 1)], ...] = Field(default=(0, 1, 2), min_length=1)
    n_trials: int | None = Field(default=None, ge=1)

    @field_validator("optimizers")
    @classmethod
    def _known_optimizers(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [n for n in names if n not in OPTIMIZERS]
        if unknown:
            raise ValueError(f"unknown optimizer(s) {', '.join(map(repr, unknown))} (known: {', '.join(OPTIMIZERS)})")
        return _unique(names)

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            make_task(name)
        return _unique(names)

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, seeds: tuple[int, ...]) -> tuple[int, ...]:
        return _unique(seeds)

    def budget(self, task: Task) -> int:
        return self.n_trials or task.n_trials


def _unique(values: tuple) -> tuple:
    dupes = sorted({repr(v) for v in values if values.count(v) > 1})
    if dupes:
        raise ValueError(f"listed twice: {', '.join(dupes)}")
    return values


def load_study(path: Path) -> StudySpec:
    """Read a study TOML file; any problem becomes one line naming the file and the field."""
    data = read_toml(path, "")
    try:
        return StudySpec.model_validate(data)
    except ValidationError as exc:
        where, message = first_error(exc)
        raise HarnessError(f"{one_line(str(path))}: {where or 'file'}: {message}") from None
