"""Reading the user's TOML files (suites, recipes, HPO studies) under the one-line error contract.

Whatever the file holds (a folder's name, invalid UTF-8, a BOM, a key with a line break in it), the
reader returns parsed data or raises one HarnessError line that starts with the file's name.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from harness.common.errors import HarnessError

# Line breaks (all that str.splitlines knows), C0 and C1 controls with DEL (terminal escapes, bells, cursor moves)
# and the bidi overrides that reorder what is shown: a name from a file may hold any of them.
_UNSAFE = [*range(0x20), *range(0x7F, 0xA0), 0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A),
           0x2028, 0x2029]
_ESCAPES = str.maketrans({code: repr(chr(code))[1:-1] for code in _UNSAFE})


def one_line(text: str) -> str:
    """`text` as one line of inert characters: each line break, control character or bidi override becomes its
    Python escape (ESC shows as \\x1b), so data from a file can neither split a message nor steer the terminal."""
    return text.translate(_ESCAPES)


def read_toml(path: Path, what: str) -> dict:
    """The TOML document in `path`; a missing, unreadable, non-UTF-8 or malformed file is one HarnessError.

    A UTF-8 byte-order mark (as some Windows editors write) is accepted. `what` prefixes every message.
    """
    where = one_line(f"{what} {path}".strip())
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise HarnessError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise HarnessError(f"{where}: is a folder, not a file") from None
    except UnicodeDecodeError as exc:
        raise HarnessError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise HarnessError(f"{where}: cannot read ({exc.strerror or exc})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise HarnessError(f"{where}: not valid TOML ({one_line(str(exc))})") from None
    except RecursionError:
        raise HarnessError(f"{where}: not valid TOML (nested too deeply)") from None


def first_error(exc: ValidationError) -> tuple[str, str]:
    """(dotted field, message) of the first problem pydantic found, each on one line."""
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"])
    return one_line(field), one_line(error["msg"].removeprefix("Value error, "))
