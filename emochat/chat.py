"""``emochat`` / ``emochat chat``: build the app and the real session it connects to."""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

from emochat import paths
from emochat.chats import Chats
from emochat.config import load_config, remember
from emochat.errors import EmochatError
from emochat.options import warn
from emochat.session import ChatSession, conversation_header, start_transcript
from emochat.state import EmotionState
from emochat.transcripts import (
    Conversation,
    TranscriptWriteError,
    TranscriptWriter,
    find_transcript,
    read_transcript,
)

if TYPE_CHECKING:
    from emochat.engine.generation import SamplingSettings

LAST_STATE_FILE = "last_state.json"


def last_state_path() -> Path:
    return paths.data_dir() / LAST_STATE_FILE


def load_last_state() -> EmotionState | None:
    """The mood the last chat ended in, so it carries over between sessions."""
    try:
        return EmotionState.from_dict(json.loads(last_state_path().read_text("utf-8")))
    except (OSError, ValueError, TypeError, AttributeError, EmochatError):
        return None  # a damaged file only loses the carried-over mood


def save_last_state(state: EmotionState) -> None:
    # losing the carried-over mood is not worth interrupting a chat for
    with contextlib.suppress(OSError):
        paths.write_private(last_state_path(), json.dumps(state.to_dict()))


def starting_state(
    args: argparse.Namespace, resumed: Conversation | None, first: bool = True
) -> EmotionState:
    """A resumed chat's own mood; a new one starts in the mood the last chat ended in (and in
    the one ``--emotion`` asks for, for the chat the app opens with)."""
    from emochat.options import emotion_from_args

    if resumed is not None:
        return ChatSession.restore_state(resumed)
    state = load_last_state() or EmotionState()
    state.policy = "locked" if state.locked else args.policy
    if state.locked:
        state.unlocked_policy = args.policy
    if args.emotion and first:
        state.set(emotion_from_args(args))
    return state


def saved_sampling(conversation: Conversation, default: SamplingSettings) -> SamplingSettings:
    """The sampling a saved chat was held with (its header), where it is readable."""
    saved = conversation.header.get("sampling")
    if not isinstance(saved, dict):
        return default
    known = {key: value for key, value in saved.items() if key in asdict(default)}
    try:
        return replace(default, **known)
    except (TypeError, EmochatError):
        return default


def saved_intensity(header: dict[str, object], default: float) -> float:
    """The steering strength a chat was held with, where its header has a valid one."""
    value = header.get("intensity")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 3:
        return float(value)
    return default


def make_connect(args: argparse.Namespace) -> Callable[[Callable[[str], None]], Chats]:
    """The function the app runs in a worker: load everything, return the chats."""
    resumed = read_transcript(find_transcript(args.resume), warn) if args.resume else None
    if resumed is not None:  # open in another emochat? say so now, not after the model loads
        with contextlib.suppress(TranscriptWriteError):  # read-only: the chat says so later
            TranscriptWriter.resume(resumed).close()

    def connect(progress: Callable[[str], None]) -> Chats:
        from emochat.detect import BackgroundDetector, Detector, load_detector
        from emochat.engine.modulation import set_intensity
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
        settings = sampling_from_args(args, engine.info, progress)
        opened: list[bool] = []

        def make_session(conversation: Conversation | None) -> ChatSession:
            state = starting_state(args, conversation, first=not opened)
            opened.append(True)
            if conversation is None:
                header = conversation_header(
                    engine.info,
                    modulation=engine.modulator.name,
                    intensity=args.intensity,
                    detector=args.detector,
                    state=state,
                    settings=settings,
                    source="chat",
                    system_prompt=args.system,
                )
                chat_settings, system_prompt = settings, args.system
            else:
                header = conversation.header
                chat_settings = saved_sampling(conversation, settings)
                saved_system = header.get("system_prompt")
                system_prompt = saved_system if isinstance(saved_system, str) else None
            set_intensity(engine.modulator, saved_intensity(header, args.intensity))
            transcript = start_transcript(header, progress, resume=conversation)
            return ChatSession(
                engine,
                detector,
                state,
                transcript,
                chat_settings,
                warn=progress,
                system_prompt=system_prompt,
                on_state_change=save_last_state,
            )

        return Chats(make_session, make_session(resumed))

    return connect


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
