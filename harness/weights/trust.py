"""What a model folder may make us do: run its own Python code, or unpickle its weights.

Both run code chosen by whoever wrote the folder, so both are refused unless the user says otherwise
(`--trust-remote-code`, `--allow-pickle`). The check reads only config files and file names, before
any library sees the folder. It also refuses links out of the folder (`--allow-outside-links`), anything
that is not a regular file, and configs nested deeply enough to crash a JSON parser.
"""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from pathlib import Path

from harness.common.errors import HarnessError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
# Files whose `auto_map` makes transformers import Python modules shipped with the checkpoint.
AUTO_MAP_FILES = ("config.json", "tokenizer_config.json", "processor_config.json", "preprocessor_config.json")


@dataclass(frozen=True)
class LoadPolicy:
    """The user's answer to both questions; the safe default is no and no."""

    trust_remote_code: bool = False
    allow_pickle: bool = False
    # A link to a file outside the folder lets a folder's author point "weights" at any file the user can read.
    allow_outside_links: bool = False


def remote_code_reason(path: Path) -> str | None:
    """Why loading this folder would run its own code (an auto_map entry, or *.py files), or None."""
    for name in AUTO_MAP_FILES:
        data = read_config(path / name)
        if isinstance(data, dict) and data.get("auto_map"):
            return f"{name} asks for remote code (auto_map)"
    modules = sorted(p.name for p in path.glob("*.py"))
    if modules:
        return f"it ships Python code ({', '.join(modules[:3])}{', ...' if len(modules) > 3 else ''})"
    return None


# JSON files that Python code (ours, transformers') parses; tokenizer.json is parsed by the Rust tokenizers library,
# which has a depth limit of its own.
JSON_FILES = (*AUTO_MAP_FILES, "generation_config.json", "special_tokens_map.json", "added_tokens.json",
              "chat_template.json", "model.safetensors.index.json")
# Far deeper than any real config (they nest a handful of levels), far below Python's recursion limit, so a file
# that passes here also parses deep inside a loader's call stack.
MAX_JSON_DEPTH = 64


def read_config(file: Path):
    """The parsed JSON of `file`, or None when it is absent or not JSON (the loader reports a broken config); a
    file nested past MAX_JSON_DEPTH is refused, as it would crash the loader with a RecursionError."""
    if not file.is_file():
        return None
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except RecursionError:
        data = _TOO_DEEP
    except (ValueError, UnicodeDecodeError):
        return None
    if data is _TOO_DEEP or _depth(data) > MAX_JSON_DEPTH:
        raise HarnessError(f"{file}: JSON nested more than {MAX_JSON_DEPTH} levels deep; refused (no model config "
                           "nests like that, and reading it would exhaust Python's recursion limit)")
    return data


_TOO_DEEP = object()


def _depth(data) -> int:
    """How deeply lists and objects nest in parsed JSON, walked without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, (dict, list)):
            deepest = max(deepest, level)
            if level > MAX_JSON_DEPTH:
                return level
            stack.extend((v, level + 1) for v in (value.values() if isinstance(value, dict) else value))
    return deepest


def check_files(path: Path, label: str, policy: LoadPolicy) -> None:
    """Refuse entries a loader must not read: links that leave the folder (unless allowed; a hub snapshot's links
    into its own blob store are fine), and anything that is not a regular file or folder, such as a device or fifo
    (always: /dev/zero as weights is endless bytes, a fifo blocks forever)."""
    inside = [path.resolve()]
    if path.parent.name == "snapshots" and path.parent.parent.name.startswith("models--"):
        inside.append((path.parent.parent / "blobs").resolve())  # the hub cache layout
    for entry in sorted(path.iterdir()):
        try:
            target, mode = entry.resolve(), entry.stat().st_mode
        except (OSError, RuntimeError):  # RuntimeError: a link loop, before Python 3.13
            raise HarnessError(f"{label}: {entry} is a broken link or a link loop") from None
        if (entry.is_symlink() and not policy.allow_outside_links
                and not any(target == root or root in target.parents for root in inside)):
            raise HarnessError(f"{label}: {entry} links outside the model folder (to {target}); refused, pass "
                               "--allow-outside-links only if you mean to read files from there")
        if stat.S_ISDIR(mode) and entry.suffix in (".safetensors", ".json", *PICKLE_SUFFIXES):
            raise HarnessError(f"{label}: {entry} is a folder, not a file")
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise HarnessError(f"{label}: {entry} is not a regular file (a device, fifo or socket); refused, "
                               "even with --allow-outside-links")


def pickle_weights(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_file() and p.suffix in PICKLE_SUFFIXES)


def check_model_folder(path: Path, label: str, policy: LoadPolicy) -> str:
    """Refuse what the policy does not allow; returns the weight format ('safetensors' or 'pickle').

    Safetensors win when both are present (pickle files beside them, such as training_args.bin, are
    never read).
    """
    check_files(path, label, policy)
    for name in JSON_FILES:
        read_config(path / name)
    reason = remote_code_reason(path)
    if reason and not policy.trust_remote_code:
        raise HarnessError(f"{label}: refused, {reason}, which would run code from {path}; "
                           "pass --trust-remote-code only if you trust its author")
    if sorted(path.glob("*.safetensors")):
        return "safetensors"
    pickles = pickle_weights(path)
    if not pickles:
        raise HarnessError(f"{label}: no *.safetensors weights in {path}")
    if not policy.allow_pickle:
        names = ", ".join(p.name for p in pickles[:3]) + (", ..." if len(pickles) > 3 else "")
        raise HarnessError(f"{label}: refused, weights are pickle files ({names}), which can run code when "
                           "loaded; convert them to safetensors, or pass --allow-pickle only if you trust their author")
    return "pickle"
