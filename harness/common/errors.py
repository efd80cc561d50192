"""HarnessError: a user-facing failure whose message is one line naming the culprit."""


class HarnessError(Exception):
    """Raised for bad input or environment; the CLI prints the message and exits non-zero."""
