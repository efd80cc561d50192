"""Make the variants of a recipe: check everything that can be checked first, then build each variant
into a temporary folder, renamed to results/variants/<name> only when complete, and register it.

Order: a variant comes after its parents; among variants that are ready, merges go before prunes
(merging a pruned model destroys its sparsity, so the manifest flags it when a recipe asks for it).
A variant whose folder already holds the same variant_id is left alone; the same name with another
recipe or other parents is an error, never an overwrite.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from harness.weights import models as model_registry
from harness.common.errors import HarnessError
from harness.common.paths import results_dir
from harness.store import ModelRecord, Store
from harness.weights.trust import LoadPolicy
from harness.variants import manifest
from harness.weights import variant_folders
from harness.weights.folders import DEFAULT_SHARD_BYTES, WeightReader, check_folder, staging
from harness.variants.recipe import VariantSpec

DATA_AWARE = ("wanda", "sparsegpt", "layer_drop", "mlp_width")


class Steps(Protocol):
    def start(self, total: int) -> None: ...
    def advance(self) -> None: ...


@dataclass(frozen=True)
class Parent:
    ref: str  # as the recipe names it
    name: str  # as the store names it (what `harness eval` would call it too)
    path: Path
    fingerprint: str  # the model's (weights and output files), as the store keys it
    weights_sha256: str  # the weights alone, as manifests record them
    n_params: int
    kind: str
    origin: str
    weight_format: str = "safetensors"  # what the parent's own folder held
    allow_pickle: bool = False  # it, or an ancestor, was loaded from pickle weights under --allow-pickle


@dataclass(frozen=True)
class Outcome:
    name: str
    status: str  # made | up to date
    path: Path
    manifest: dict


def order(specs: list[VariantSpec]) -> list[VariantSpec]:
    """Parents first; among the ready ones merges before prunes, then recipe order. Cycles are errors."""
    for spec in specs:
        if spec.name in spec.parents:
            raise HarnessError(f"recipe: variant '{spec.name}' names itself as its parent; give the variant its own "
                               "name (a parent outside the recipe is named by its model name or folder)")
    pending = {spec.name: spec for spec in specs}
    done: list[VariantSpec] = []
    while pending:
        ready = [spec for spec in pending.values() if not set(spec.parents) & set(pending)]
        if not ready:
            raise HarnessError(f"recipe: variants {', '.join(sorted(pending))} depend on each other in a cycle")
        chosen = min(ready, key=lambda spec: (spec.kind != "merge", specs.index(spec)))
        done.append(chosen)
        del pending[chosen.name]
    return done


def make(specs: list[VariantSpec], db: Path, steps_for: Callable[[str], Steps],
         max_shard_bytes: int = DEFAULT_SHARD_BYTES, policy: LoadPolicy = LoadPolicy(),
         busy_timeout: float | None = None) -> list[Outcome]:
    """Validate the whole recipe, then make every variant in order; returns one outcome per variant."""
    planned = order(specs)
    names = {spec.name for spec in specs}
    for spec in specs:
        if spec.name in model_registry.EMBEDDED:
            raise HarnessError(f"variant '{spec.name}': the name of an embedded model; choose another")
    refs = dict.fromkeys(ref for spec in specs for ref in spec.parents if ref not in names)
    external = {ref: _external_parent(ref, policy) for ref in refs}
    for spec in specs:
        _check_existing(spec)
        if spec.kind == "merge" and not set(spec.parents) & names:
            _check_mergeable(spec, {ref: external[ref].path for ref in spec.parents})
    outcomes: list[Outcome] = []
    made: dict[str, Parent] = {}
    with Store.open(db, busy_timeout=busy_timeout) as store:
        for spec in planned:
            parents = [made[ref] if ref in made else external[ref] for ref in spec.parents]
            outcome = _make_one(spec, parents, store, steps_for(spec.name), max_shard_bytes)
            outcomes.append(outcome)
            weights = outcome.manifest["output_sha256"]
            made[spec.name] = Parent(spec.name, spec.name, outcome.path, model_registry.fingerprint(outcome.path, weights),
                                     weights, outcome.manifest["param_count"], "variant", str(outcome.path),
                                     allow_pickle=outcome.manifest.get("allow_pickle", False))
    return outcomes


def _external_parent(ref: str, policy: LoadPolicy) -> Parent:
    """A parent outside the recipe: an embedded model, a made variant, or a local HF folder."""
    resolved = model_registry.materialize(model_registry.resolve(ref, policy=policy), results_dir() / "models")
    check_folder(resolved.path, f"parent '{ref}'")
    inherited = resolved.kind == "variant" and manifest.read(resolved.path).get("allow_pickle", False)
    return Parent(ref, resolved.name, resolved.path, resolved.fingerprint, resolved.weights_sha256, resolved.n_params,
                  resolved.kind, resolved.origin, resolved.weight_format, resolved.weight_format == "pickle" or inherited)


def _check_existing(spec: VariantSpec) -> None:
    folder = variant_folders.variant_folder(spec.name)
    if folder is None:
        return
    old = manifest.read(folder)
    same = (old["method"] == spec.method and old["params"] == spec.params() and old["seed"] == spec.seed
            and [p["ref"] for p in old["parents"]] == spec.parents)
    if not same:
        raise HarnessError(f"variant '{spec.name}' already exists at {folder} with another recipe; "
                           "choose another name or remove that folder")


def _check_mergeable(spec: VariantSpec, parents: dict[str, Path]) -> None:
    from harness.variants.merge import check_compatible

    try:
        check_compatible(parents)
    except HarnessError as exc:
        raise HarnessError(f"variant '{spec.name}': {exc}") from None


def _roles(spec: VariantSpec) -> list[str]:
    if spec.kind != "merge":
        return ["parent"]
    return (["base"] if getattr(spec, "base", None) else []) + ["model"] * len(spec.models)


def _make_one(spec: VariantSpec, parents: list[Parent], store: Store, steps: Steps, max_shard_bytes: int) -> Outcome:
    records = [{"role": role, "ref": p.ref, "name": p.name, "kind": p.kind, "path": str(p.path),
                "sha256": p.weights_sha256, "param_count": p.n_params, "weight_format": p.weight_format}
               | ({"converted_from": p.origin} if p.weight_format == "pickle" else {})
               for role, p in zip(_roles(spec), parents)]
    inputs = manifest.variant_inputs(spec, records, _data_digest(spec))
    final = variant_folders.variant_path(spec.name)
    existing = variant_folders.variant_folder(spec.name)
    if existing is not None:
        old = manifest.read(existing)
        if old["variant_id"] != manifest.variant_id(inputs):
            if old.get("method_version") != inputs["method_version"]:
                raise HarnessError(f"variant '{spec.name}' at {existing} was made by {spec.method} version "
                                   f"{old.get('method_version')}, and this harness makes version "
                                   f"{inputs['method_version']}; choose another name or remove that folder")
            raise HarnessError(f"variant '{spec.name}' already exists at {existing}, made from other parent weights "
                               "or calibration text; choose another name or remove that folder")
        _register(store, spec.name, existing, old, parents)
        return Outcome(spec.name, "up to date", existing, old)
    if spec.kind == "merge":
        _check_mergeable(spec, {p.ref: p.path for p in parents})
    started = time.perf_counter()
    with staging(final) as tmp:
        result = make_weights(spec, [p.path for p in parents], tmp, steps, max_shard_bytes)
        result.notes.extend(_notes(spec, parents))
        output_sha256 = model_registry.weights_sha256(tmp)
        same = [p.ref for p in parents if p.weights_sha256 == output_sha256]
        if same:
            raise HarnessError(f"variant '{spec.name}' has exactly the weights of its parent '{same[0]}': "
                               "the same model, so nothing was made")
        made = model_registry.fingerprint(tmp, output_sha256)
        clash = store.model_clash(made[:16], spec.name, made, output_sha256)
        if clash is not None:
            raise HarnessError(f"variant '{spec.name}': the store already holds '{clash}' with "
                               f"{'the same weights' if clash != spec.name else 'other weights under this name'}")
        reader = WeightReader(tmp)
        dtype = reader.dtypes[reader.names()[0]]
        record = manifest.build(spec, records, inputs, output_sha256, result, dtype, time.perf_counter() - started)
        record["allow_pickle"] = any(p.allow_pickle for p in parents)  # made from unpickled weights, at any depth
        manifest.write(tmp, record)
    _register(store, spec.name, final.resolve(), record, parents)
    return Outcome(spec.name, "made", final.resolve(), record)


def _data_digest(spec: VariantSpec) -> str | None:
    """The data the weights depend on besides the parents (calibration text, or the train or validation
    items a fine-tune or a coefficient search reads), so that changed data means a new variant_id."""
    if spec.method in DATA_AWARE:
        from harness.variants.calibration import text_digest

        return text_digest()
    if spec.method in ("domain_prune", "expert_merging"):
        import hashlib

        from harness.variants.calibration import source_text

        sources = ["flores", spec.domain] if spec.method == "domain_prune" else spec.calibration
        return hashlib.sha256("".join(hashlib.sha256(source_text(s).encode()).hexdigest()
                                      for s in sources).encode()).hexdigest()
    if spec.method == "finetune" or getattr(spec, "search", None) is not None:
        from harness.variants.finetune import items_sha256, task_items

        reads = [(spec.task, "train", None)] if spec.method == "finetune" else [
            (task, "validation", spec.search.limit) for task in spec.search.tasks]
        return items_sha256([item for task, split, limit in reads for item in task_items(task, split, limit)])
    return None


def make_weights(spec: VariantSpec, parents: list[Path], out: Path, steps: Steps, max_shard_bytes: int):
    """Write one variant's weights into `out` from its parents' folders (the base first, where the method has one):
    the method dispatch that `variants make` and the variant benchmark share."""
    if spec.method == "expert_merging":
        from harness.variants.expert_merging import expert_merging

        return expert_merging(spec, parents[0], parents[1:], out, steps, max_shard_bytes)
    if spec.kind == "merge":
        from harness.variants.merge import merge

        has_base = getattr(spec, "base", None) is not None
        base = parents[0] if has_base else None
        models = parents[int(has_base):]
        if getattr(spec, "search", None) is not None:
            from harness.variants.pcb_search import search_then_merge

            return search_then_merge(spec, base, models, out, steps, max_shard_bytes)
        return merge(spec, base, models, out, steps, max_shard_bytes)
    if spec.method == "finetune":
        from harness.variants.finetune import finetune

        return finetune(spec, parents[0], out, steps, max_shard_bytes)
    from harness.variants import adaptive_width, domain_prune, prune, sparsegpt, structured

    mlp_width = adaptive_width.adaptive_mlp_width if getattr(spec, "adaptive", False) else structured.mlp_width
    run = {"magnitude": prune.magnitude, "wanda": prune.wanda, "sparsegpt": sparsegpt.sparsegpt,
           "layer_drop": structured.layer_drop, "mlp_width": mlp_width,
           "domain_prune": domain_prune.domain_prune}[spec.method]
    return run(spec, parents[0], out, steps)


def _notes(spec: VariantSpec, parents: list[Parent]) -> list[str]:
    notes = []
    if spec.kind == "merge":
        for parent in parents:
            folder = variant_folders.variant_folder(parent.name) if parent.kind == "variant" else None
            if folder is not None and manifest.read(folder)["kind"] == "prune":
                notes.append(f"parent '{parent.ref}' is pruned: merging does not preserve its sparsity")
    return notes


def _register(store: Store, name: str, path: Path, record: dict, parents: list[Parent]) -> None:
    for parent in parents:
        store.register_model(ModelRecord(parent.fingerprint[:16], parent.name, parent.kind, parent.origin,
                                         parent.fingerprint, parent.n_params, weights_sha256=parent.weights_sha256))
    fingerprint = model_registry.fingerprint(path, record["output_sha256"])
    store.register_model(ModelRecord(fingerprint[:16], name, "variant", str(path), fingerprint,
                                     record["param_count"], parents=tuple(p.fingerprint[:16] for p in parents),
                                     recipe=record, weights_sha256=record["output_sha256"]))
