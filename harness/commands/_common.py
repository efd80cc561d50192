"""What every verb shares: the consoles and the one-line error contract."""

from __future__ import annotations

from functools import wraps

import typer
from rich.console import Console
from rich.text import Text

from harness.errors import HarnessError
from harness.spec_files import one_line

out = Console()
err = Console(stderr=True)


def friendly(func):
    """Turn a HarnessError into one red line on stderr and exit code 2."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except HarnessError as exc:
            err.print(Text(f"error: {one_line(str(exc))}", style="bold red"), soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper
