"""``emochat`` / ``emochat chat``: the app, connected to what the runtime builds."""

from __future__ import annotations

import argparse
import contextlib

from emochat import paths
from emochat.cli.output import warn
from emochat.cli.settings import chat_config
from emochat.config import load_config, remember
from emochat.transcripts import (
    TranscriptWriteError,
    TranscriptWriter,
    find_transcript,
    read_transcript,
)


def run_chat(args: argparse.Namespace) -> int:
    from emochat.runtime import Runtime
    from emochat.tui.app import AppOptions, EmochatApp

    resumed = read_transcript(find_transcript(args.resume), warn) if args.resume else None
    if resumed is not None:  # open in another emochat? say so now, not after the model loads
        with contextlib.suppress(TranscriptWriteError):  # read-only: the chat says so later
            TranscriptWriter.resume(resumed).close()
    # Every value checked and the model found before the window opens; loading then runs in
    # the app's worker, reporting to its status line.
    runtime = Runtime(chat_config(args))
    settings = load_config()
    options = AppOptions(
        theme=args.theme,
        keymap=settings.get("keys") or None,
        export_dir=paths.data_dir() / "exports",
        remember_theme=lambda theme: remember("theme", theme),
    )
    EmochatApp(lambda progress: runtime.chats(resumed, progress), options).run()
    return 0
