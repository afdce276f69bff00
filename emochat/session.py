"""One conversation: its transcript, emotion state and detector around a chat backend.

The session owns a whole turn: ``ask`` reads the message, moves the mood, streams the reply and
records it, or, when the model fails, rolls all of that back (the mood returns, the turn is
withdrawn from the history). ``regenerate``, ``continue_reply`` and ``edit_last`` change the
last turn the same way. What the model sees comes from the transcript's conversation, so a
resumed chat and a running one agree, and the app reads everything through read-only
properties. Nothing here imports Textual; one lock keeps the app's thread and the turn's
worker thread from changing the state at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from emochat.detect import Detector, Reading
from emochat.emotion import EmotionVector
from emochat.engine.modulation.loop import SentenceEnds
from emochat.engine.prompt import ChatMessage
from emochat.errors import EmochatError
from emochat.progress import Progress
from emochat.state import EmotionState
from emochat.transcripts import (
    Conversation,
    Exchange,
    TranscriptWriteError,
    TranscriptWriter,
    history_of,
    title_record,
)

if TYPE_CHECKING:
    from emochat.engine.modulation.loop import AfterFirstSentence, SteeringLoop

OnPiece = Callable[[str], None]


def _ignore(_piece: str) -> None:
    pass


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

    def reply(
        self,
        messages: list[ChatMessage],
        emotion: EmotionVector,
        settings: Any,
        after_first_sentence: AfterFirstSentence | None = None,
    ) -> Any: ...


def conversation_header(
    info: Any,
    *,
    modulation: str,
    intensity: float,
    detector: str | None,
    state: EmotionState,
    settings: Any,
    source: str,
    system_prompt: str | None = None,
) -> dict[str, Any]:
    """The first line of a transcript: the model and every per-chat setting, restored when the
    chat is opened again."""
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
        "system_prompt": system_prompt,
        "emotion": state.vector.to_list(),
        "state": state.to_dict(),
    }


def start_transcript(
    header: dict[str, Any],
    warn: Progress,
    *,
    path: Path | None = None,
    resume: Conversation | None = None,
    save: bool = True,
    deferred: bool = True,
) -> TranscriptWriter:
    """A new transcript (its file made with the first message when ``deferred``) or the resumed
    one; where the disk refuses, one warning and a transcript kept in memory, so the
    conversation still happens."""
    if not save:
        return TranscriptWriter.in_memory(header)
    try:
        if resume is not None:
            return TranscriptWriter.resume(resume)
        return TranscriptWriter.create(header, path, deferred=deferred)
    except TranscriptWriteError as error:
        warn(str(error))
        return TranscriptWriter.in_memory(header)


class LiveReading:
    """A reply read back while it streams: each time a sentence of it is finished, at most once
    a second (a reading takes the detector about 10 ms beside the model writing the next
    sentence: on a 2-core machine, reading at every sentence end slowed the stream by about 8%,
    once a second by about 6%; benchmarks/read_back_cost.py)."""

    INTERVAL = 1.0  # seconds

    def __init__(self, detector: Detector, written: str = "") -> None:
        self._detector = detector
        self._reply = SentenceEnds(written)
        self._unread = 0  # sentences finished since the last reading
        self._last = -self.INTERVAL

    def push(self, piece: str) -> Reading | None:
        """The reading of the reply so far, where a sentence was finished and it is time."""
        self._unread += self._reply.add(piece)
        if not self._unread or time.monotonic() - self._last < self.INTERVAL:
            return None
        self._unread = 0
        self._last = time.monotonic()
        return self._detector.read(self._reply.text.strip())


@dataclass(frozen=True)
class TurnResult:
    """How a turn ended: the exchange as it now stands, and the reply's speed."""

    exchange: Exchange
    tokens_per_second: float
    new_tokens: int
    broken: str | None = None  # why the reply stopped short, where no one stopped it (a server)


class ChatSession:
    def __init__(
        self,
        backend: ChatBackend,
        detector: Detector | None,
        state: EmotionState,
        transcript: TranscriptWriter,
        settings: Any,
        warn: Progress,
        system_prompt: str | None = None,
        on_state_change: Callable[[EmotionState], None] | None = None,
        remember: bool = True,
        read_back: Detector | None = None,
        loop: SteeringLoop | None = None,
    ) -> None:
        self._backend = backend
        self._detector = detector
        self._state = state
        self._transcript = transcript
        self._settings = settings
        self._warn = warn
        self._system_prompt = system_prompt
        self._on_state_change = on_state_change
        self._remember = remember  # False: every prompt is answered on its own (``say``)
        # reads each finished reply: the mood it carries, beside the one that steered it
        self._read_back = read_back
        # reads each reply's first sentence: the axes it falls short of are steered harder
        self._loop = loop
        self._last_expressed = self._expressed_of_last_reply()
        self._last_reading: Reading | None = None
        self._lock = threading.RLock()  # the state and the transcript
        self._turn = threading.Lock()  # one turn at a time
        self._reply: ReplyStream | None = None

    @classmethod
    def restore_state(cls, conversation: Conversation) -> EmotionState:
        saved = conversation.last_state()
        try:
            return EmotionState.from_dict(saved) if saved else EmotionState()
        except EmochatError:  # a state of the right shape but out of range
            return EmotionState()

    # ------------------------------------------------------------ read-only
    @property
    def model(self) -> Any:
        """The backend's ``ModelInfo`` (name, backend, quantization, device…)."""
        return self._backend.info

    @property
    def detector_name(self) -> str:
        return self._detector.name if self._detector else "off"

    @property
    def settings(self) -> Any:
        return self._settings

    @property
    def system_prompt(self) -> str | None:
        return self._system_prompt

    @property
    def emotion(self) -> EmotionVector:
        return self._state.vector

    @property
    def policy(self) -> str:
        return self._state.policy

    @property
    def locked(self) -> bool:
        return self._state.locked

    @property
    def last_reading(self) -> Reading | None:
        return self._last_reading

    @property
    def last_expressed(self) -> tuple[EmotionVector, Reading] | None:
        """The last reply's mood as asked (the vector it was written with) and as read back,
        where it was read back."""
        return self._last_expressed

    def _expressed_of_last_reply(self) -> tuple[EmotionVector, Reading] | None:
        exchanges = self.exchanges()
        last = exchanges[-1] if exchanges else None
        if last is None or last.expressed is None or last.emotion is None:
            return None
        try:
            asked = EmotionVector.from_json(last.emotion)
            read = EmotionVector.from_json(last.expressed.get("vector"))
            confidence = float(last.expressed.get("confidence", 0.0))
        except (EmochatError, TypeError, ValueError):
            return None
        return asked, Reading(read, confidence)

    @property
    def conversation(self) -> Conversation:
        return self._transcript.conversation

    @property
    def id(self) -> str:
        return self.conversation.id

    @property
    def saving(self) -> bool:
        return self._transcript.saving

    @property
    def transcript_path(self) -> Path:
        return self._transcript.path

    @property
    def busy(self) -> bool:
        return self._turn.locked()

    def exchanges(self) -> list[Exchange]:
        return self.conversation.exchanges()

    def history(self) -> list[ChatMessage]:
        """What the model reads before the next message."""
        if not self._remember:
            return []
        return cast(list[ChatMessage], self.conversation.messages())

    # ---------------------------------------------------------------- turns
    def ask(
        self,
        text: str,
        on_piece: OnPiece = _ignore,
        on_read: Callable[[], None] | None = None,
    ) -> TurnResult:
        """One whole turn. The message is recorded before the reply (a crash keeps it); if the
        model fails, the mood goes back to where it was and the turn is withdrawn."""
        with self._hold_turn():
            history = self.history()
            reading = self._detector.read(text) if self._detector else None
            with self._lock:
                before = self._state.to_dict()
                if reading is not None:
                    self._state.observe(reading)
                self._last_reading = reading
                event: dict[str, Any] = {
                    "type": "user",
                    "text": text,
                    "state": self._state.to_dict(),
                }
                if reading is not None:
                    event["reading"] = reading.to_dict()
                self._write(event)
            self._state_changed()
            if on_read is not None:
                on_read()
            try:
                messages = [*history, {"role": "user", "content": text}]
                reply, _ = self._stream(messages, on_piece, on_read)
            except Exception as error:
                with self._lock:
                    self._state = EmotionState.from_dict(before)
                    self._write({"type": "retract", "what": "turn", "reason": str(error)})
                self._state_changed()
                raise
            return self._record(reply, reply.text)

    def regenerate(
        self, on_piece: OnPiece = _ignore, on_read: Callable[[], None] | None = None
    ) -> TurnResult:
        """A new sample for the last prompt. The earlier reply stays in the transcript; a
        regeneration that is stopped or fails leaves it in place."""
        with self._hold_turn():
            earlier, last = self._split_last("regenerate")
            messages = [*earlier, {"role": "user", "content": last.prompt}]
            reply, _ = self._stream(messages, on_piece, on_read)
            if reply.stats.cancelled and last.in_history:
                return TurnResult(last, 0.0, 0)
            with self._lock:
                self._write({"type": "retract", "what": "reply"})
            return self._record(reply, reply.text)

    def continue_reply(
        self, on_piece: OnPiece = _ignore, on_read: Callable[[], None] | None = None
    ) -> TurnResult:
        """Carry on the last reply where the token limit cut it."""
        with self._hold_turn():
            earlier, last = self._split_last("continue")
            if not last.truncated:
                raise EmochatError("the last reply is complete; there is nothing to continue")
            messages = [
                *earlier,
                {"role": "user", "content": last.prompt},
                {"role": "assistant", "content": last.reply},
            ]
            reply, raw = self._stream(messages, on_piece, on_read, written=last.reply)
            return self._record(reply, raw.rstrip(), continues=True, whole=last.reply + raw)

    def edit_last(self) -> str:
        """Withdraw the last turn (the transcript keeps it) and return its prompt to edit."""
        with self._hold_turn():
            _, last = self._split_last("edit")
            with self._lock:
                self._write({"type": "retract", "what": "turn"})
            return last.prompt

    def stop(self) -> None:
        """Stop the reply being written, if any; its turn then ends as stopped."""
        reply = self._reply
        if reply is not None:
            reply.cancel()

    def _split_last(self, what: str) -> tuple[list[ChatMessage], Exchange]:
        """The history before the last turn, and that turn (one pass over the transcript)."""
        exchanges = self.exchanges()
        if not exchanges:
            raise EmochatError(f"there is no turn to {what} yet")
        earlier = history_of(exchanges[:-1]) if self._remember else []
        return cast(list[ChatMessage], earlier), exchanges[-1]

    @contextmanager
    def _hold_turn(self) -> Iterator[None]:
        if not self._turn.acquire(blocking=False):
            raise EmochatError("a reply is still being written")
        try:
            yield
        finally:
            self._last_expressed = self._expressed_of_last_reply()  # a live reading ends here
            self._turn.release()

    def _stream(
        self,
        messages: list[ChatMessage],
        on_piece: OnPiece,
        on_read: Callable[[], None] | None = None,
        written: str = "",
    ) -> tuple[ReplyStream, str]:
        """Run the reply, passing each piece on; returns it and its text as written (pieces
        joined without trimming, so a continuation keeps its leading space). Ctrl+C stops the
        model and records the stopped reply before it goes on up. With ``on_read``, the reply
        (after what was ``written`` before) is read back each time a sentence of it is
        finished, here, beside the model writing the next one: ``last_expressed`` follows it,
        and ``on_read`` is told."""
        if self._system_prompt:
            messages = [{"role": "system", "content": self._system_prompt}, *messages]
        emotion = self._state.vector
        check = self._loop.for_reply(emotion) if self._loop is not None else None
        reply = self._backend.reply(messages, emotion, self._settings, check)
        self._reply = reply
        pieces: list[str] = []
        live = None
        if on_read is not None and self._read_back is not None:
            live = LiveReading(self._read_back, written)
        try:
            for piece in reply:
                pieces.append(piece)
                on_piece(piece)
                if live is not None and (reading := live.push(piece)) is not None:
                    self._last_expressed = (emotion, reading)
                    on_read()
        except KeyboardInterrupt:
            reply.cancel()
            reply.finish()
            self._record(reply, reply.text)
            raise
        except BaseException:
            reply.cancel()
            reply.finish()
            raise
        finally:
            self._reply = None
        return reply, "".join(pieces)

    def _record(
        self, reply: ReplyStream, text: str, continues: bool = False, whole: str | None = None
    ) -> TurnResult:
        """Write the reply's event: its text, the vector it carried, how it ended, and (read
        back after the stream has ended) the mood it expresses."""
        stats = reply.stats
        event: dict[str, Any] = {
            "type": "assistant",
            "text": text,
            "emotion": self._state.vector.to_list(),
            "new_tokens": stats.new_tokens,
            "tokens_per_second": round(stats.tokens_per_second, 2),
            "cancelled": bool(stats.cancelled) and not continues,
            # a stopped continuation can be continued again
            "truncated": bool(stats.truncated) or (continues and bool(stats.cancelled)),
        }
        if continues:
            event["continues"] = True
        if stats.broken:
            event["broken"] = stats.broken
        read = (whole if whole is not None else text).strip()
        if self._read_back is not None and read:
            event["expressed"] = self._read_back.read(read).to_dict()
        with self._lock:
            self._write(event)
        return TurnResult(
            self.exchanges()[-1], stats.tokens_per_second, stats.new_tokens, stats.broken
        )

    # ----------------------------------------------------------------- mood
    def set_emotion(self, vector: EmotionVector, source: str) -> None:
        """A preset, nudge or manual edit."""
        with self._lock:
            self._state.set(vector)
            self._write(
                {
                    "type": "emotion",
                    "source": source,
                    "emotion": vector.to_list(),
                    "state": self._state.to_dict(),
                }
            )
        self._state_changed()

    def set_policy(self, policy: str) -> None:
        with self._lock:
            self._state.set_locked(False)
            self._state.policy = policy
            self.set_emotion(self._state.vector, f"policy {policy}")

    def set_locked(self, locked: bool) -> None:
        with self._lock:
            self._state.set_locked(locked)
            self.set_emotion(self._state.vector, "lock" if locked else "unlock")

    def rename(self, title: str) -> None:
        record = title_record(title)
        with self._lock:
            self._write(record)

    def _write(self, event: dict[str, Any]) -> None:
        """Record an event; a disk that refuses it is reported once and the chat goes on. Mood
        changes before the first message wait for it, so an unused chat leaves no file."""
        if event["type"] == "emotion" and not self._transcript.started:
            self.conversation.header["state"] = self._state.to_dict()
            self.conversation.header["policy"] = self._state.policy
            self.conversation.header["emotion"] = self._state.vector.to_list()
            return
        try:
            self._transcript.write(event)
        except TranscriptWriteError as error:
            self._warn(str(error))

    def _state_changed(self) -> None:
        if self._on_state_change is not None:
            self._on_state_change(self._state)

    def close(self) -> None:
        self.stop()
        self._transcript.close()
