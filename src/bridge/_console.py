"""What every command shares on the terminal: exit statuses, the usage error, and
`note` (a line on stderr). Kept apart so that `bridge mcp` loads no chat code."""

from __future__ import annotations

import sys

from bridge import errors

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "UsageError", "note"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(errors.BridgeError):
    """A command-line argument names something that does not exist (exit status 2)."""


def note(text: str, *, end: str = "\n") -> None:
    print(text, file=sys.stderr, end=end, flush=True)
