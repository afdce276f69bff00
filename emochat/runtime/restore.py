"""What a chat starts with: a reopened chat gets its own mood, sampling and steering strength
back from its transcript; a new one starts in the mood the last chat ended in."""

from __future__ import annotations

from dataclasses import asdict, replace

from emochat.emotion import EmotionVector
from emochat.engine.generation import SamplingSettings
from emochat.errors import EmochatError
from emochat.last_mood import load_last_state
from emochat.session import ChatSession
from emochat.state import EmotionState
from emochat.transcripts import Conversation


def starting_state(
    policy: str, emotion: EmotionVector | None, resumed: Conversation | None
) -> EmotionState:
    """A resumed chat's own mood; a new one starts in the mood the last chat ended in, set to
    ``emotion`` where one is given."""
    if resumed is not None:
        return ChatSession.restore_state(resumed)
    state = load_last_state() or EmotionState()
    state.policy = "locked" if state.locked else policy
    if state.locked:
        state.unlocked_policy = policy
    if emotion is not None:
        state.set(emotion)
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
