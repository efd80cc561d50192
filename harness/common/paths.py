"""Where things live by default, and the one gate every name passes before it becomes part of a path.

Names of models, variants, tasks and studies come from files other people wrote; a name like
`../../etc/x`, `a/b` or one holding a NUL or newline must never pick where the harness writes.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from harness.common.errors import HarnessError

# A single, visible path component: no separator, no leading dot (so never '.' or '..'), no control
# character, short enough for any file system. `fullmatch`, since `$` would also accept a trailing newline.
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
PLAIN_RULE = "use letters, digits, '.', '_' and '-', starting with a letter or digit (it becomes a file name)"


def results_dir() -> Path:
    return Path(os.environ.get("HARNESS_RESULTS", "results"))


def default_db() -> Path:
    return Path(os.environ.get("HARNESS_DB", results_dir() / "harness.duckdb"))


def is_plain(name: object) -> bool:
    return isinstance(name, str) and PLAIN_NAME.fullmatch(name) is not None


def plain_name(name: object, what: str) -> str:
    """`name` unchanged if it can safely be one file or folder name; otherwise one line naming it."""
    if not is_plain(name):
        raise HarnessError(f"{what} {name!r}: not usable as a file name; {PLAIN_RULE}")
    return name  # type: ignore[return-value]


def child(root: Path, name: object, what: str) -> Path:
    """root/name for a plain name: always directly inside `root`, whatever the name held."""
    return root / plain_name(name, what)


def file_stem(name: str) -> str:
    """A safe file-name stem for any name (data, never refused): plain names are kept, others become a
    slug plus a hash of the original, so two different names never share a file."""
    if is_plain(name):
        return name
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")[:60] or "name"
    return f"{slug}-{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:10]}"


def sibling(folder: Path, filename: str) -> Path | None:
    """folder/filename when `filename` (built from data) is one component naming a file in `folder`;
    None when it would reach elsewhere (a separator, '..', a NUL), so the caller treats it as absent."""
    if not filename or "\x00" in filename or "/" in filename or "\\" in filename or filename in (".", ".."):
        return None
    return folder / filename


def exists(path: Path) -> bool:
    """Path.exists that answers False for a name the file system cannot hold (longer than 255 bytes, say)
    instead of raising: a list of model names joined by commas is not a path either."""
    try:
        return path.exists()
    except OSError:
        return False
