"""Reading what users hand emochat (prompt files, stdin, config, exports, themes) as UTF-8 text,
with one clear line when it is missing, unreadable or not UTF-8."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from emochat.errors import EmochatError


def decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise EmochatError(
            f"{name} is not UTF-8 text (byte {error.start}); save it as UTF-8 and try again"
        ) from error


def read_text(path: str | Path) -> str:
    location = Path(path).expanduser()
    try:
        data = location.read_bytes()
    except OSError as error:
        raise EmochatError(f"cannot read {path}: {error.strerror or error}") from error
    return decode(data, str(path))


def read_stdin() -> str:
    return decode(sys.stdin.buffer.read(), "standard input")


def stdin_lines() -> Iterator[str]:
    """Standard input a line at a time (for streaming), each line checked as it comes."""
    for number, line in enumerate(sys.stdin.buffer, start=1):
        yield decode(line, f"standard input line {number}").rstrip("\r\n")
