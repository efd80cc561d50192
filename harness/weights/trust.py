"""What a model folder may make us do: run its own Python code, or unpickle its weights.

Both run code chosen by whoever wrote the folder, so both are refused unless the user says otherwise
(`--trust-remote-code`, `--allow-pickle`). The check reads only config files and file names, before
any library sees the folder.
"""

from __future__ import annotations

import json
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


def remote_code_reason(path: Path) -> str | None:
    """Why loading this folder would run its own code (an auto_map entry, or *.py files), or None."""
    for name in AUTO_MAP_FILES:
        file = path / name
        if not file.is_file():
            continue
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            continue  # not ours to judge here; the loader reports a broken config
        if isinstance(data, dict) and data.get("auto_map"):
            return f"{name} asks for remote code (auto_map)"
    modules = sorted(p.name for p in path.glob("*.py"))
    if modules:
        return f"it ships Python code ({', '.join(modules[:3])}{', ...' if len(modules) > 3 else ''})"
    return None


def pickle_weights(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_file() and p.suffix in PICKLE_SUFFIXES)


def check_model_folder(path: Path, label: str, policy: LoadPolicy) -> str:
    """Refuse what the policy does not allow; returns the weight format ('safetensors' or 'pickle').

    Safetensors win when both are present (pickle files beside them, such as training_args.bin, are
    never read).
    """
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
