"""The `harness` command line: one Typer app whose verbs are thin wrappers over the Python API."""

from harness.cli.app import app, main

__all__ = ["app", "main"]
