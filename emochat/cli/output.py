"""What the commands print besides their results: loading progress and warnings go to stderr,
so stdout stays clean for scripts."""

from __future__ import annotations

import sys


def warn(message: str) -> None:
    print(f"emochat: warning: {message}", file=sys.stderr)


def progress_printer(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
