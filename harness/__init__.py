"""Evaluation side of the harness: specs (config), state (store) and controllers (runner)."""

__version__ = "0.1.0"
