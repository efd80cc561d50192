"""The variant recipe: a TOML list of `[[variant]]` tables, each naming its parents and one method.

Every method has its own pydantic spec with extra="forbid", so a misspelt parameter is an error rather
than a silently used default; validated specs dump every parameter, defaults included, for the manifest.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.common.errors import HarnessError
from harness.common.paths import PLAIN_NAME as NAME  # variant names become folder names
from harness.common.spec_files import first_error, one_line, read_toml

PATTERN = re.compile(r"^(\d+):(\d+)$")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)
    kind: ClassVar[str]

    name: str
    method: str
    seed: int = Field(0, ge=0, lt=2**32)  # torch and numpy seed generators take 0 .. 2**32 - 1

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not NAME.fullmatch(value):
            raise ValueError("use letters, digits, '.', '_' and '-' only (it becomes a folder name)")
        return value

    @property
    def parents(self) -> list[str]:
        raise NotImplementedError

    def params(self) -> dict:
        """Every method parameter, defaults included (what the manifest records and the id hashes)."""
        return self.model_dump(by_alias=True, exclude={"name", "method", "seed", "parent", "base", "models"})


class _MergeSpec(_Spec):
    kind = "merge"
    models: list[str] = Field(min_length=1)
    weights: list[float] | None = None

    @model_validator(mode="after")
    def _one_weight_per_model(self):
        if self.weights is not None and len(self.weights) != len(self.models):
            raise ValueError(f"weights: {len(self.weights)} values for {len(self.models)} models")
        if len(set(self.parents)) != len(self.parents):
            raise ValueError("a model is listed twice among base and models")
        return self

    @property
    def parents(self) -> list[str]:
        return list(self.models)

    def params(self) -> dict:
        values = super().params()
        values["weights"] = self.weights or [1.0] * len(self.models)
        return values


class LinearSpec(_MergeSpec):
    """Weighted average of the models (model soup); no base."""

    method: Literal["linear"]
    normalize: bool = True


class _TaskVectorSpec(_MergeSpec):
    """Methods that add a combination of task vectors (model - base) back onto the base."""

    base: str
    lambda_: float = Field(1.0, alias="lambda")

    @property
    def parents(self) -> list[str]:
        return [self.base, *self.models]


class TaskArithmeticSpec(_TaskVectorSpec):
    method: Literal["task_arithmetic"]
    normalize: bool = False


class TiesSpec(_TaskVectorSpec):
    method: Literal["ties"]
    density: float = Field(0.2, gt=0, le=1)
    normalize: bool = True


class DareTiesSpec(_TaskVectorSpec):
    method: Literal["dare_ties"]
    density: float = Field(0.5, gt=0, le=1)
    normalize: bool = False


def _task_with_held_out(name: str) -> str:
    """A built-in task name that has train and validation splits (checked when the recipe is read)."""
    from harness.tasks.registry import builtin_tasks
    from harness.tasks.spec import tasks_with_held_out

    if name not in builtin_tasks():
        close = difflib.get_close_matches(name, list(builtin_tasks()), n=1)
        raise ValueError(f"unknown task '{name}'" + (f"; did you mean '{close[0]}'?" if close else ""))
    if builtin_tasks()[name].build_held_out is None:
        raise ValueError(f"task '{name}' has no train/validation split (use one of {', '.join(tasks_with_held_out())})")
    return name


class PcbSearch(BaseModel):
    """A seeded (1+λ) evolution strategy over the per-model coefficients (the `weights`), scored by mean
    accuracy on the validation split of `tasks` (the first `limit` items of each), as in the PCB paper."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    tasks: list[str] = Field(min_length=1)
    generations: int = Field(4, ge=1, le=100)
    population: int = Field(4, ge=1, le=64)
    limit: int | None = Field(100, ge=1)
    sigma: float = Field(0.1, gt=0)
    low: float = Field(0.8, ge=0)
    high: float = Field(1.3, gt=0)

    @field_validator("tasks")
    @classmethod
    def _tasks_with_validation(cls, value: list[str]) -> list[str]:
        return [_task_with_held_out(name) for name in value]

    @model_validator(mode="after")
    def _ordered_bounds(self):
        if self.low >= self.high:
            raise ValueError(f"low {self.low:g} must be below high {self.high:g}")
        return self


class PcbSpec(_TaskVectorSpec):
    method: Literal["pcb"]
    ratio: float = Field(0.1, gt=0, le=1)
    exclude: list[str] = ["embed_tokens", "lm_head", "norm"]
    search: PcbSearch | None = None

    @model_validator(mode="after")
    def _start_inside_bounds(self):
        if self.search is not None:
            start = self.weights or [1.0] * len(self.models)
            if not all(self.search.low <= w <= self.search.high for w in start):
                raise ValueError(f"weights {start} must lie within search bounds "
                                 f"[{self.search.low:g}, {self.search.high:g}] (they are where the search starts)")
        return self

    def params(self) -> dict:
        values = super().params()
        if values["search"] is None:
            del values["search"]  # recipes without a search keep the variant_id they always had
        return values


class FinetuneSpec(_Spec):
    """An expert: a short, seeded AdamW fine-tune of `parent` on the train split of a built-in task, with
    the loss on the answer tokens only; tensors named in `frozen` are not trained."""

    kind = "finetune"
    method: Literal["finetune"]
    parent: str
    task: str
    steps: int = Field(100, ge=1)
    batch_size: int = Field(16, ge=1)
    lr: float = Field(5e-5, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup: float = Field(0.1, ge=0, lt=1)
    frozen: list[str] = ["embed_tokens", "lm_head", "norm"]

    @field_validator("task")
    @classmethod
    def _task_with_train_split(cls, value: str) -> str:
        return _task_with_held_out(value)

    @property
    def parents(self) -> list[str]:
        return [self.parent]


class _PruneSpec(_Spec):
    kind = "prune"
    parent: str

    @property
    def parents(self) -> list[str]:
        return [self.parent]


class _CalibratedSpec(_PruneSpec):
    n_samples: int = Field(32, ge=1)
    seqlen: int = Field(512, ge=8)


class _MaskSpec(_PruneSpec):
    sparsity: float | None = Field(None, ge=0, lt=1)
    pattern: str = "unstructured"

    @model_validator(mode="after")
    def _sparsity_matches_pattern(self):
        nm = self.n_m
        if nm is None and self.sparsity is None:
            raise ValueError("sparsity is required for unstructured pruning")
        if nm is not None:
            implied = nm[0] / nm[1]
            if self.sparsity is not None and abs(self.sparsity - implied) > 1e-9:
                raise ValueError(f"pattern {self.pattern} means sparsity {implied:g}, not {self.sparsity:g}")
            self.sparsity = implied
        return self

    @field_validator("pattern")
    @classmethod
    def _known_pattern(cls, value: str) -> str:
        match = PATTERN.match(value)
        if value != "unstructured" and (match is None or not 0 < int(match[1]) < int(match[2])):
            raise ValueError("use 'unstructured' or N:M with 0 < N < M, e.g. '2:4'")
        return value

    @property
    def n_m(self) -> tuple[int, int] | None:
        match = PATTERN.match(self.pattern)
        return (int(match[1]), int(match[2])) if match else None


class MagnitudeSpec(_MaskSpec):
    """|W| per matrix (unstructured) or per group of M inputs in a row (N:M); no data."""

    method: Literal["magnitude"]


class WandaSpec(_MaskSpec, _CalibratedSpec):
    """|W|·‖X_j‖₂ per output row (unstructured) or per group of M inputs (N:M), block by block."""

    method: Literal["wanda"]


class SparseGptSpec(_MaskSpec, _CalibratedSpec):
    """OBS column sweep with weight updates (SparseGPT), calibrated like Wanda; see variants/sparsegpt.py."""

    method: Literal["sparsegpt"]
    sparsity: float | None = Field(None, gt=0, lt=1)  # 0 would make the parent again
    block_size: int = Field(128, gt=0)
    dampening: float = Field(0.01, gt=0)  # a fraction of the mean diagonal of H

    @model_validator(mode="after")
    def _groups_inside_blocks(self):
        if self.n_m is not None and self.block_size % self.n_m[1]:
            raise ValueError(f"block_size {self.block_size} must be a multiple of M={self.n_m[1]} "
                             f"(pattern {self.pattern}): an N:M group may not straddle two blocks")
        return self


class LayerDropSpec(_CalibratedSpec):
    """Remove the n layers with the lowest Block Influence; default a quarter of them."""

    method: Literal["layer_drop"]
    n_layers: int | None = Field(None, ge=1)


class MlpWidthSpec(_CalibratedSpec):
    """Remove the same number of MLP neurons in every layer, scored by ‖a_j‖₂·‖down[:, j]‖₂; or, with
    `adaptive = true`, the same total number chosen per layer by AMP's search (variants/adaptive_width.py)."""

    method: Literal["mlp_width"]
    ratio: float = Field(0.2, gt=0, lt=1)
    multiple: int = Field(64, ge=1)
    adaptive: bool = False
    search_samples: int | None = Field(None, ge=1)  # adaptive only: calibration windows the search's loss reads
    search_rounds: int | None = Field(None, ge=1, le=40)  # adaptive only: bisection steps of the tolerance

    @model_validator(mode="after")
    def _search_only_when_adaptive(self):
        for key in ("search_samples", "search_rounds"):
            if getattr(self, key) is not None and not self.adaptive:
                raise ValueError(f"{key} applies to adaptive = true only")
        if self.adaptive:
            self.search_samples = self.search_samples if self.search_samples is not None else min(4, self.n_samples)
            self.search_rounds = self.search_rounds if self.search_rounds is not None else 10
            if self.search_samples > self.n_samples:
                raise ValueError(f"search_samples {self.search_samples} is more than n_samples {self.n_samples}")
        return self

    def params(self) -> dict:
        values = super().params()
        if not self.adaptive:  # uniform recipes keep the variant_id they always had
            for key in ("adaptive", "search_samples", "search_rounds"):
                del values[key]
        return values


def _domain_source(value: str) -> str:
    """A built-in task with a train split, or a UTF-8 text file (relative to the working directory)."""
    from harness.tasks.registry import builtin_tasks

    if value in builtin_tasks():
        return _task_with_held_out(value)
    path = Path(value).expanduser()
    if not path.is_file():
        raise ValueError(f"'{value}' is neither a built-in task with a train split nor a text file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read '{value}' as UTF-8 text ({type(exc).__name__})") from None
    if not text.strip():
        raise ValueError(f"'{value}' holds no text")
    return value


class DomainPruneSpec(_MaskSpec, _CalibratedSpec):
    """D-Pruner-style dual importance (variants/domain_prune.py): a weight's score is the layer-wise output
    error removing it causes on the `domain` text plus `general_weight` times that on FLORES+ English."""

    method: Literal["domain_prune"]
    sparsity: float | None = Field(None, gt=0, lt=1)
    domain: str
    general_weight: float = Field(0.1, ge=0)  # README: 1 kept no more of the domain than Wanda
    n_samples: int = Field(16, ge=1)
    seqlen: int = Field(256, ge=8)

    @field_validator("domain")
    @classmethod
    def _known_domain(cls, value: str) -> str:
        return _domain_source(value)


def _expert_text(value: str) -> str:
    return value if value == "flores" else _task_with_held_out(value)


class ExpertMergingSpec(_MergeSpec):
    """Expert Merging (variants/expert_merging.py): per-tensor (or per-chunk) coefficients on each expert's
    task vector, learnt by aligning the merged model's logits and hidden states with each expert's on
    unlabeled calibration text; `weights` are the per-expert loss weights (the paper's alphas)."""

    method: Literal["expert_merging"]
    base: str
    calibration: list[str] | None = None  # one per model: a built-in task (its train questions) or "flores"
    n_samples: int = Field(8, ge=1, le=4096)
    seqlen: int = Field(64, ge=8)
    continuation: int = Field(4, ge=0, le=256)
    init: float | None = Field(None, gt=0, lt=1)
    steps: int = Field(40, ge=1, le=100_000)
    lr: float = Field(0.5, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    temperature: float = Field(1.0, gt=0)
    hidden_weight: float = Field(1.0, ge=0)
    hidden_layers: list[int] | None = None
    reg_weight: float = Field(5.0, ge=0)
    chunks: int = Field(1, ge=1, le=4096)
    chunking: Literal["uniform", "importance"] = "uniform"  # importance: Expert Merging++ (chunks is the most)
    exclude: list[str] = ["embed_tokens", "lm_head", "norm", "bias"]

    @field_validator("calibration")
    @classmethod
    def _known_texts(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [_expert_text(name) for name in value]

    @field_validator("hidden_layers")
    @classmethod
    def _layer_indices(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (not value or any(i < 0 for i in value) or len(set(value)) != len(value)):
            raise ValueError("give distinct layer indices >= 0 (or leave it out for the middle layer)")
        return value

    @model_validator(mode="after")
    def _one_text_per_model(self):
        n = len(self.models)
        if self.calibration is None:
            self.calibration = ["flores"] * n
        if len(self.calibration) != n:
            raise ValueError(f"calibration: {len(self.calibration)} entries for {n} models (one per model)")
        if self.weights is not None and (any(w < 0 for w in self.weights) or not any(w > 0 for w in self.weights)):
            raise ValueError("weights: loss weights must be >= 0 and not all 0")
        if self.init is None:
            self.init = 1.0 / n if n > 1 else 0.5
        if self.chunking == "importance" and self.chunks < 2:
            raise ValueError("chunks: chunking = \"importance\" needs chunks >= 2 (the most a tensor may get)")
        return self

    @property
    def parents(self) -> list[str]:
        return [self.base, *self.models]


METHODS: dict[str, type[_Spec]] = {
    "linear": LinearSpec, "task_arithmetic": TaskArithmeticSpec, "ties": TiesSpec, "dare_ties": DareTiesSpec,
    "pcb": PcbSpec, "magnitude": MagnitudeSpec, "wanda": WandaSpec, "sparsegpt": SparseGptSpec,
    "layer_drop": LayerDropSpec, "mlp_width": MlpWidthSpec, "domain_prune": DomainPruneSpec,
    "expert_merging": ExpertMergingSpec, "finetune": FinetuneSpec,
}
VariantSpec = _Spec


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variant: list[dict] = Field(min_length=1)


def load_recipe(path: Path) -> list[VariantSpec]:
    """Parse and validate a recipe file; every problem is one HarnessError naming the variant and field."""
    raw = read_toml(path, "recipe")
    return parse_recipe(raw, str(path))


def parse_recipe(raw: dict, where: str = "recipe") -> list[VariantSpec]:
    where = one_line(where)
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        raise HarnessError(f"{where}: {_first_error(exc)} (expected one or more [[variant]] tables)") from None
    specs = [parse_variant(entry, f"{where}: variant {index + 1}") for index, entry in enumerate(recipe.variant)]
    names = [spec.name for spec in specs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise HarnessError(f"{where}: variant name {duplicates[0]!r} is used twice")
    return specs


def parse_variant(entry: dict, where: str) -> VariantSpec:
    name = entry.get("name")
    label = f"{where} ({one_line(repr(name))})" if isinstance(name, str) else where
    method = entry.get("method")
    if not isinstance(method, str):
        raise HarnessError(f"{label}: no method (choose one of {', '.join(METHODS)})")
    if method not in METHODS:
        close = difflib.get_close_matches(method, METHODS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f" (choose one of {', '.join(METHODS)})"
        raise HarnessError(f"{label}: unknown method {one_line(repr(method))}{hint}")
    try:
        return METHODS[method].model_validate(entry)
    except ValidationError as exc:
        raise HarnessError(f"{label}: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    field, message = first_error(exc)
    return f"{field}: {message}" if field else message
