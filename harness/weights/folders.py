"""Reading and writing HF model folders tensor by tensor, so no variant needs a whole model twice.

Every variant ends up as the same kind of folder: config.json, dense safetensors (sharded past a size
limit, with the standard index), the parent's tokenizer files, and manifest.json. Folders are built
under a temporary name next to their final place and renamed only once everything is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from contextlib import contextmanager
from math import prod
from pathlib import Path
from typing import Iterator

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from harness.common.errors import HarnessError
from harness.weights.headers import read_header

# Files copied verbatim from a parent: everything a tokenizer or generation needs, nothing with weights.
SIDE_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
              "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja", "generation_config.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json",
                   "special_tokens_map.json")
INDEX = "model.safetensors.index.json"
DEFAULT_SHARD_BYTES = 4 << 30


def check_folder(path: Path, label: str) -> None:
    """Fail with one line when a folder cannot be a parent: no config, no weights, or no tokenizer."""
    if not path.is_dir():
        raise HarnessError(f"{label}: {path} is not a folder")
    if not (path / "config.json").is_file():
        raise HarnessError(f"{label}: {path / 'config.json'} is missing")
    if not sorted(path.glob("*.safetensors")):
        raise HarnessError(f"{label}: no *.safetensors weights in {path}")
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise HarnessError(f"{label}: no tokenizer files in {path}")


def read_config(path: Path) -> dict:
    return json.loads((path / "config.json").read_text())


def tokenizer_digest(path: Path) -> str:
    """sha256 over the tokenizer files: two parents merge only if they tokenize identically."""
    digest = hashlib.sha256()
    for name in TOKENIZER_FILES:
        file = path / name
        if file.is_file():
            digest.update(name.encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


class WeightReader:
    """Lazy access to the tensors of a folder: names and shapes from the headers, data on demand."""

    def __init__(self, path: Path):
        self.path = path
        self.files: dict[str, Path] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.dtypes: dict[str, str] = {}
        for file in sorted(path.glob("*.safetensors")):
            for name, info in read_header(file).items():
                self.files[name] = file
                self.shapes[name] = tuple(info["shape"])
                self.dtypes[name] = info["dtype"]
        self._open: dict[Path, object] = {}

    def names(self) -> list[str]:
        return sorted(self.files)

    def get(self, name: str) -> torch.Tensor:
        file = self.files[name]
        if file not in self._open:
            self._open[file] = safe_open(str(file), framework="pt")
        return self._open[file].get_tensor(name)

    def n_params(self) -> int:
        return sum(prod(shape) for shape in self.shapes.values())


class ShardWriter:
    """Write tensors in the order given, flushing a shard whenever it passes `max_bytes`.

    Holding at most one shard keeps a streamed merge's memory independent of model size; a single
    shard is named model.safetensors, several get the standard -0000k-of-0000n names and an index.
    """

    def __init__(self, out: Path, max_bytes: int = DEFAULT_SHARD_BYTES):
        self.out = out
        self.max_bytes = max_bytes
        self._pending: dict[str, torch.Tensor] = {}
        self._pending_bytes = 0
        self._shards: list[list[str]] = []
        self.n_params = 0
        self.n_bytes = 0

    def add(self, name: str, tensor: torch.Tensor) -> None:
        tensor = tensor.contiguous()
        size = tensor.numel() * tensor.element_size()
        if self._pending and self._pending_bytes + size > self.max_bytes:
            self._flush()
        self._pending[name] = tensor
        self._pending_bytes += size
        self.n_params += tensor.numel()
        self.n_bytes += size

    def _flush(self) -> None:
        shard = self.out / f".shard-{len(self._shards)}.safetensors"
        save_file(self._pending, str(shard), metadata={"format": "pt"})
        shard.chmod(0o644)
        self._shards.append(sorted(self._pending))
        self._pending, self._pending_bytes = {}, 0

    def close(self) -> None:
        if self._pending or not self._shards:
            self._flush()
        count = len(self._shards)
        if count == 1:
            os.replace(self.out / ".shard-0.safetensors", self.out / "model.safetensors")
            return
        weight_map = {}
        for index, names in enumerate(self._shards):
            final = f"model-{index + 1:05d}-of-{count:05d}.safetensors"
            os.replace(self.out / f".shard-{index}.safetensors", self.out / final)
            weight_map.update({name: final for name in names})
        index = {"metadata": {"total_size": self.n_bytes}, "weight_map": dict(sorted(weight_map.items()))}
        (self.out / INDEX).write_text(json.dumps(index, indent=2) + "\n")


def write_config(out: Path, config: dict) -> None:
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def copy_side_files(parent: Path, out: Path) -> None:
    """The tokenizer and generation settings travel unchanged from the parent."""
    for name in SIDE_FILES:
        if (parent / name).is_file():
            shutil.copyfile(parent / name, out / name)


@contextmanager
def staging(final: Path) -> Iterator[Path]:
    """A temporary folder beside `final`, renamed to it only if the block finishes; removed otherwise.

    Its name carries the builder's pid and host, so the folders a killed build leaves behind (a kill -9
    skips the cleanup below; each can be as big as the model) are removed by the next build of `final`.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-{os.getpid()}@{socket.gethostname()}-", dir=final.parent))
    tmp.chmod(0o755)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _remove_abandoned(final: Path) -> None:
    """Remove staging folders of `final` whose builder was a process on this host that no longer runs."""
    pattern = re.compile(rf"\.{re.escape(final.name)}-(\d+)@(.+)-[a-z0-9_]+")
    for folder in final.parent.iterdir():
        match = pattern.fullmatch(folder.name)
        if match and match[2] == socket.gethostname() and not _alive(int(match[1])):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
