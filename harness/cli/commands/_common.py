"""What every verb shares: the consoles and the one-line error contract."""

from __future__ import annotations

from functools import wraps

import typer
from rich.console import Console, ConsoleDimensions
from rich.table import Table
from rich.text import Text

from harness.common.errors import HarnessError
from harness.common.spec_files import one_line


def printable(text: str) -> str:
    """`text` with every control character escaped as one_line does, except its own line breaks."""
    return "\n".join(one_line(line) for line in text.split("\n"))


class SafeConsole(Console):
    """A console that never passes a control character from a string to the terminal: names printed by any verb
    come from files and stores, and an ESC or OSC sequence in one would recolour, retitle or rewrite the screen.

    It also fits tables to the width (harness.common.layout): a table too wide for the terminal is split by
    columns, never squeezed or cut; printing to no terminal with no COLUMNS set (a pipe, a log), nothing is
    wrapped at 80."""

    def render_str(self, text: str, **kwargs) -> Text:
        return super().render_str(printable(text), **kwargs)

    @property
    def size(self) -> ConsoleDimensions:
        from harness.common.layout import UNBOUNDED, unbounded

        size = Console.size.fget(self)
        return ConsoleDimensions(UNBOUNDED, size.height) if unbounded(self) else size

    @size.setter
    def size(self, new_size) -> None:
        Console.size.fset(self, new_size)

    def print(self, *objects, **kwargs) -> None:
        if len(objects) == 1 and isinstance(objects[0], Table):
            from harness.common.layout import split

            for part in split(self, objects[0]):
                super().print(part, **kwargs)
            return
        super().print(*objects, **kwargs)


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
