"""How long work reports progress: live rich bars for people, plain lines for logs and CI, or nothing."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator, Protocol

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.common.spec_files import one_line

DISPLAYS = ("rich", "plain", "none")


class JobProgress(Protocol):
    def add_total(self, n: int) -> None: ...
    def advance(self, n: int) -> None: ...
    def failed(self) -> None: ...


class _RichJob:
    def __init__(self, progress: Progress, label: str):
        self._progress = progress
        self._label = escape(one_line(label))  # a model or task name: never markup, never a terminal escape
        self._bar = progress.add_task(self._label, total=None)

    def add_total(self, n: int) -> None:
        self._progress.update(self._bar, total=(self._progress.tasks[self._bar].total or 0) + n)

    def advance(self, n: int) -> None:
        self._progress.advance(self._bar, n)

    def failed(self) -> None:
        self._progress.update(self._bar, description=f"[red]{self._label} failed")


class _PlainJob:
    """One flushed line per update: `label: done/total requests`."""

    def __init__(self, label: str, stream):
        self._label, self._stream, self._done, self._total = one_line(label), stream, 0, 0

    def add_total(self, n: int) -> None:
        self._total += n

    def advance(self, n: int) -> None:
        self._done += n
        print(f"{self._label}: {self._done}/{self._total} requests", file=self._stream, flush=True)

    def failed(self) -> None:
        print(f"{self._label}: failed", file=self._stream, flush=True)


class _NoJob:
    def add_total(self, n: int) -> None:
        pass

    def advance(self, n: int) -> None:
        pass

    def failed(self) -> None:
        pass


class Display:
    def __init__(self, kind: str = "rich", console: Console | None = None):
        if kind not in DISPLAYS:
            raise ValueError(f"display '{kind}': choose one of {', '.join(DISPLAYS)}")
        self.kind = kind
        self.console = console or Console(stderr=True)
        self._progress: Progress | None = None

    @contextmanager
    def session(self) -> Iterator["Display"]:
        if self.kind != "rich":
            yield self
            return
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("requests"), TimeElapsedColumn(), console=self.console)
        with self._progress:
            yield self
        self._progress = None

    def job(self, label: str) -> JobProgress:
        if self.kind == "plain":
            return _PlainJob(label, sys.stderr)
        if self.kind == "rich" and self._progress is not None:
            return _RichJob(self._progress, label)
        return _NoJob()

    def note(self, line: str) -> None:
        """One warning line on the console (above the live bars), whatever the progress display."""
        from rich.text import Text

        self.console.print(Text(f"warning: {one_line(line)}", style="yellow"), soft_wrap=True)
