"""What every verb shares: the consoles and the one-line error contract."""

from __future__ import annotations

from functools import wraps

import typer
from rich.console import Console
from rich.text import Text

from harness.common.errors import HarnessError
from harness.common.spec_files import one_line


def printable(text: str) -> str:
    """`text` with every control character escaped as one_line does, except its own line breaks."""
    return "\n".join(one_line(line) for line in text.split("\n"))


class SafeConsole(Console):
    """A console that never passes a control character from a string to the terminal: names printed by any verb
    come from files and stores, and an ESC or OSC sequence in one would recolour, retitle or rewrite the screen."""

    def render_str(self, text: str, **kwargs) -> Text:
        return super().render_str(printable(text), **kwargs)


out = SafeConsole()
err = SafeConsole(stderr=True)


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
