"""Copying text where the user can paste it. A terminal app can only ask the terminal (OSC 52),
which many drop silently (tmux by default), so the system's own clipboard tool is tried first,
and the caller is told which way worked."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

# (tool and arguments, when it applies): the first present and applicable one is used.
CLIPBOARD_TOOLS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("pbcopy",), "darwin"),
    (("wl-copy",), "WAYLAND_DISPLAY"),
    (("xclip", "-selection", "clipboard"), "DISPLAY"),
    (("xsel", "--clipboard", "--input"), "DISPLAY"),
)


def _applies(condition: str) -> bool:
    return sys.platform == condition if condition == "darwin" else bool(os.environ.get(condition))


def copy_with_system_tool(text: str) -> str | None:
    """Copy with the desktop's clipboard tool; the tool's name, or None where there is none
    (a console, an SSH session) or it failed."""
    for command, condition in CLIPBOARD_TOOLS:
        if not _applies(condition) or shutil.which(command[0]) is None:
            continue
        try:
            subprocess.run(
                command, input=text.encode("utf-8"), check=True, timeout=3, capture_output=True
            )
        except (OSError, subprocess.SubprocessError):
            continue
        return command[0]
    return None
