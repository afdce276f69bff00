"""What the commands print besides their results: loading progress and warnings go to stderr,
so stdout stays clean for scripts. A progress bar ("…: █████░░░ 5/12") redraws its line in a
terminal instead of printing a line a step."""

from __future__ import annotations

import sys

_bar: dict[str, str] = {}  # the topic of the bar drawn last, while its line is open


def warn(message: str) -> None:
    _end_bar()
    print(f"emochat: warning: {message}", file=sys.stderr)


def progress_printer(message: str) -> None:
    topic, _, rest = message.partition(": ")
    if sys.stderr.isatty() and any(mark in rest for mark in "█░"):
        if _bar.get("topic") != topic:
            _end_bar()
        sys.stderr.write(f"\r\x1b[K{message}")
        sys.stderr.flush()
        _bar["topic"] = topic
        return
    _end_bar()
    print(message, file=sys.stderr, flush=True)


def _end_bar() -> None:
    if _bar.pop("topic", None) is not None:
        sys.stderr.write("\n")
        sys.stderr.flush()
