"""A fake chat backend and detector for driving the app and sessions without a model."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from emochat.detect import Reading
from emochat.emotion import EmotionVector, parse_emotion


@dataclass
class FakeInfo:
    name: str = "fake-model"
    source: str = "fake"
    quant: str = "none"
    device: str = "cpu"
    dtype: str = "float32"
    n_layers: int = 2
    hidden_size: int = 8
    context_length: int = 512
    backend: str = "fake-backend"


@dataclass
class FakeStats:
    new_tokens: int = 0
    tokens_per_second: float = 0.0
    cancelled: bool = False
    truncated: bool = False
    broken: str | None = None


@dataclass
class FakeReply:
    words: list[str]
    delay: float
    limit: int = 0  # the most words it writes (0: all), like max_new_tokens
    text: str = ""
    stats: FakeStats = field(default_factory=FakeStats)
    _cancel: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        self._cancel.set()

    _pieces: list[str] = field(default_factory=list)

    def __iter__(self):
        # Resumable like the engine's reply: a second iteration continues where one stopped.
        end = min(len(self.words), self.limit or len(self.words))
        while len(self._pieces) < end and not self._cancel.is_set():
            time.sleep(self.delay)
            word = self.words[len(self._pieces)]
            piece = word if not self._pieces else " " + word
            self._pieces.append(piece)
            self.stats.new_tokens += 1
            yield piece
        self.stats.cancelled = self._cancel.is_set()
        self.stats.truncated = not self.stats.cancelled and end < len(self.words)
        self.stats.tokens_per_second = 42.0
        self.text = "".join(self._pieces)

    def finish(self) -> str:
        for _ in self:
            pass
        return self.text


class FakeBackend:
    """Answers every prompt with ``answer``; a history ending with the assistant (a reply to
    continue) gets the words of ``answer`` after those already written."""

    def __init__(
        self, answer: str = "Hello **there**, friend.", delay: float = 0.0, limit: int = 0
    ) -> None:
        self.info = FakeInfo()
        self.answer = answer
        self.delay = delay
        self.limit = limit
        self.checks: list = []  # each reply's steering-loop check (after its first sentence)
        self.calls: list[tuple[list[dict], EmotionVector]] = []

    def reply(self, messages, emotion, settings, after_first_sentence=None) -> FakeReply:
        self.calls.append((list(messages), emotion))
        self.checks.append(after_first_sentence)
        words = self.answer.split(" ")
        if messages and messages[-1]["role"] == "assistant":
            words = words[len(messages[-1]["content"].split(" ")) :]
            words[0] = " " + words[0]  # a continuation starts with the space between words
        return FakeReply(words, self.delay, self.limit)


class FakeDetector:
    """Reads 'sad' and 'happy' and nothing else."""

    name = "fake"

    def read(self, text: str) -> Reading:
        if "sad" in text:
            return Reading(parse_emotion("sadness=0.8")[0], 1.0)
        if "happy" in text:
            return Reading(parse_emotion("joy=0.8")[0], 1.0)
        return Reading(EmotionVector(), 0.0)
