"""How long work tells what it is doing: one line at a time, to wherever the caller shows it
(stderr for commands, the status line in the app)."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str], None]


def no_progress(_message: str) -> None:
    """For callers that want the work done silently."""
