"""One conversation: history, emotion state, detector and transcript around a chat backend.

This is the narrow interface the app drives (and a fake backend can stand in for the model):
``submit`` reads the user's message and moves the emotion state, ``reply`` streams the answer,
``finish`` records it. Nothing here imports Textual.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from emochat.detect import Detector, Reading
from emochat.emotion import EmotionVector
from emochat.engine.prompt import ChatMessage
from emochat.state import EmotionState
from emochat.transcripts import Conversation, TranscriptWriteError, TranscriptWriter

Warn = Callable[[str], None]


class ReplyStream(Protocol):
    """What a backend returns for one reply (``emochat.engine.generation.Reply`` is one)."""

    text: str
    stats: Any

    def __iter__(self) -> Iterator[str]: ...

    def cancel(self) -> None: ...

    def finish(self) -> str:
        """Consume whatever is left (after an interrupted iteration too); return the text."""
        ...


class ChatBackend(Protocol):
    """The model side of a chat: a backend (``emochat.engine.backends``) or a fake in tests."""

    @property
    def info(self) -> Any: ...

    def reply(self, messages: list[ChatMessage], emotion: EmotionVector, settings: Any) -> Any: ...


def conversation_header(
    info: Any,
    *,
    modulation: str,
    intensity: float,
    detector: str | None,
    state: EmotionState,
    settings: Any,
    source: str,
) -> dict[str, Any]:
    return {
        "source": source,
        "model": info.name,
        "model_source": info.source,
        "backend": info.backend,
        "quantization": info.quant,
        "device": info.device,
        "modulation": modulation,
        "intensity": intensity,
        "detector": detector,
        "policy": state.policy,
        "sampling": asdict(settings),
        "emotion": state.vector.to_list(),
        "state": state.to_dict(),
    }


def assistant_event(reply: ReplyStream, emotion: EmotionVector) -> dict[str, Any]:
    stats = reply.stats
    return {
        "type": "assistant",
        "text": reply.text,
        "emotion": emotion.to_list(),
        "new_tokens": stats.new_tokens,
        "tokens_per_second": round(stats.tokens_per_second, 2),
        "cancelled": bool(stats.cancelled),
    }


def start_transcript(
    header: dict[str, Any],
    warn: Warn,
    *,
    path: Path | None = None,
    resume: Conversation | None = None,
    save: bool = True,
) -> TranscriptWriter:
    """A new transcript (or the resumed one); where the disk refuses, one warning and a
    transcript kept in memory, so the conversation still happens."""
    if not save:
        return TranscriptWriter.in_memory(header)
    try:
        if resume is not None:
            return TranscriptWriter.resume(resume)
        return TranscriptWriter.create(header, path)
    except TranscriptWriteError as error:
        warn(str(error))
        return TranscriptWriter.in_memory(header)


def safe_write(transcript: TranscriptWriter, event: dict[str, Any], warn: Warn) -> None:
    """Record an event; a disk that refuses it is reported once and the chat goes on."""
    try:
        transcript.write(event)
    except TranscriptWriteError as error:
        warn(str(error))


class ChatSession:
    def __init__(
        self,
        backend: ChatBackend,
        detector: Detector | None,
        state: EmotionState,
        transcript: TranscriptWriter,
        settings: Any,
        warn: Warn,
        system_prompt: str | None = None,
        on_state_change: Callable[[EmotionState], None] | None = None,
    ) -> None:
        self.backend = backend
        self.detector = detector
        self.state = state
        self.transcript = transcript
        self.settings = settings
        self.warn = warn
        self.system_prompt = system_prompt
        self._on_state_change = on_state_change
        self.history: list[ChatMessage] = transcript.conversation.messages()
        self.last_reading: Reading | None = None

    @classmethod
    def restore_state(cls, conversation: Conversation) -> EmotionState:
        saved = conversation.last_state()
        return EmotionState.from_dict(saved) if saved else EmotionState()

    def submit(self, text: str) -> Reading | None:
        """Read the user's message, move the state, and record both."""
        reading = self.detector.read(text) if self.detector else None
        if reading is not None:
            self.state.observe(reading)
        self.last_reading = reading
        self.history.append({"role": "user", "content": text})
        event: dict[str, Any] = {"type": "user", "text": text, "state": self.state.to_dict()}
        if reading is not None:
            event["reading"] = reading.to_dict()
        safe_write(self.transcript, event, self.warn)
        self._state_changed()
        return reading

    def reply(self) -> ReplyStream:
        messages = list(self.history)
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        return self.backend.reply(messages, self.state.vector, self.settings)

    def finish(self, reply: ReplyStream) -> None:
        """Record the reply. A finished one joins the history; a cancelled one is withdrawn
        with its question (the transcript keeps both, marked), so the user can ask again."""
        if reply.stats.cancelled:
            if self.history and self.history[-1]["role"] == "user":
                self.history.pop()
        elif reply.text:
            self.history.append({"role": "assistant", "content": reply.text})
        safe_write(self.transcript, assistant_event(reply, self.state.vector), self.warn)

    def set_emotion(self, vector: EmotionVector, source: str) -> None:
        """A preset, nudge or manual edit."""
        self.state.set(vector)
        event = {
            "type": "emotion",
            "source": source,
            "emotion": vector.to_list(),
            "state": self.state.to_dict(),
        }
        safe_write(self.transcript, event, self.warn)
        self._state_changed()

    def set_policy(self, policy: str) -> None:
        self.state.set_locked(False)
        self.state.policy = policy
        self.set_emotion(self.state.vector, f"policy {policy}")

    def _state_changed(self) -> None:
        if self._on_state_change is not None:
            self._on_state_change(self.state)

    def set_locked(self, locked: bool) -> None:
        self.state.set_locked(locked)
        self.set_emotion(self.state.vector, "lock" if locked else "unlock")

    def close(self) -> None:
        self.transcript.close()
