"""``emochat`` / ``emochat chat``: build the app and the real session it connects to."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path

from emochat import paths
from emochat.config import load_config, remember
from emochat.errors import EmochatError
from emochat.session import ChatSession, conversation_header, start_transcript
from emochat.state import EmotionState
from emochat.transcripts import Conversation, TranscriptWriter, find_transcript, read_transcript

LAST_STATE_FILE = "last_state.json"


def last_state_path() -> Path:
    return paths.data_dir() / LAST_STATE_FILE


def load_last_state() -> EmotionState | None:
    """The mood the last chat ended in, so it carries over between sessions."""
    try:
        return EmotionState.from_dict(json.loads(last_state_path().read_text("utf-8")))
    except (OSError, ValueError, EmochatError):
        return None


def save_last_state(state: EmotionState) -> None:
    path = last_state_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_suffix(".tmp")
        staging.write_text(json.dumps(state.to_dict()), encoding="utf-8")
        os.replace(staging, path)
    except OSError:
        pass  # losing the carried-over mood is not worth interrupting a chat for


def starting_state(args: argparse.Namespace, resumed: Conversation | None) -> EmotionState:
    from emochat.options import emotion_from_args

    if resumed is not None:
        state = ChatSession.restore_state(resumed)
    else:
        state = load_last_state() or EmotionState()
        state.policy = "locked" if state.locked else args.policy
        if state.locked:
            state.unlocked_policy = args.policy
    if args.emotion:
        state.set(emotion_from_args(args))
    return state


def make_connect(args: argparse.Namespace) -> Callable[[Callable[[str], None]], ChatSession]:
    """The function the app runs in a worker: load everything, return the session."""
    resumed = read_transcript(find_transcript(args.resume)) if args.resume else None

    def connect(progress: Callable[[str], None]) -> ChatSession:
        from emochat.detect import BackgroundDetector, Detector, load_detector
        from emochat.options import open_engine, sampling_from_args

        detector: Detector
        if args.detector == "probe":  # it reads the chat model, so it waits for it
            engine = open_engine(args, progress)
            detector = load_detector(args.detector, engine)
        else:  # it loads beside the chat model, and only the first message waits for it
            detector = BackgroundDetector(
                args.detector, lambda: load_detector(args.detector), progress
            )
            engine = open_engine(args, progress)
        state = starting_state(args, resumed)
        settings = sampling_from_args(args)
        transcript = open_transcript(args, engine, state, settings, resumed, progress)
        return ChatSession(
            engine,
            detector,
            state,
            transcript,
            settings,
            warn=progress,
            on_state_change=save_last_state,
        )

    return connect


def open_transcript(
    args: argparse.Namespace,
    engine: object,
    state: EmotionState,
    settings: object,
    resumed: Conversation | None,
    warn: Callable[[str], None],
) -> TranscriptWriter:
    header = conversation_header(
        engine.info,  # type: ignore[attr-defined]
        modulation=engine.modulator.name,
        intensity=args.intensity,
        detector=args.detector,
        state=state,
        settings=settings,
        source="chat",
    )
    return start_transcript(header, warn, resume=resumed)


def run_chat(args: argparse.Namespace) -> int:
    from emochat.tui.app import AppOptions, EmochatApp

    config = load_config()
    options = AppOptions(
        theme=args.theme,
        keymap=config.get("keys") or None,
        export_dir=paths.data_dir() / "exports",
        remember_theme=lambda theme: remember("theme", theme),
    )
    EmochatApp(make_connect(args), options).run()
    return 0
