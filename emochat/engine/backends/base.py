"""What every backend shares: the modulator around each reply, one reply at a time
(:class:`Backend`); and what every in-process backend shares besides (:class:`TokenBackend`):
the prompt built to fit the context, and the key/value cache of the common prefix kept between
replies, with how it runs the model (``_run``) left to it."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emochat.emotion import EmotionVector
from emochat.engine.directions import EmotionDirections
from emochat.engine.generation import (
    Emit,
    IncrementalDecoder,
    PrefixCache,
    Reply,
    ReplyStats,
    SamplingSettings,
    stream_reply,
)
from emochat.engine.loading import ModelInfo
from emochat.engine.modulation.base import Modulator, NoModulation
from emochat.engine.modulation.loop import NO_GAINS, AfterFirstSentence, SentenceEnds
from emochat.engine.prompt import ChatMessage, build_prompt_ids
from emochat.errors import EmochatError

if TYPE_CHECKING:
    from emochat.engine.framings import FramedQuestion


@dataclass(frozen=True)
class Generation:
    """One reply for a backend to run: the prompt, how many of its leading tokens it may take
    from the cache, the sampling settings, where each token goes, and the stop signal."""

    prompt_ids: list[int]
    keep: int
    settings: SamplingSettings
    emit: Emit
    cancel: threading.Event


class Backend(ABC):
    """A model that streams steered replies, one at a time. Subclasses set ``info`` and say
    how a reply starts (:meth:`_start_reply`)."""

    info: ModelInfo

    def __init__(self) -> None:
        self.modulator: Modulator = NoModulation()
        self._busy = threading.Lock()

    # ------------------------------------------------------------- modulation
    @abstractmethod
    def _modulation_target(self) -> Any:
        """What a modulator attaches to (the torch model, or the llama.cpp context)."""

    @abstractmethod
    def steering(self, directions: EmotionDirections, intensity: float) -> Modulator:
        """The modulator that steers this backend with ``directions``."""

    def own_steering(self, intensity: float) -> Modulator | None:
        """A steering modulator that needs no directions here (a server that steers with its
        own copies), or ``None``."""
        return None

    @abstractmethod
    def framed_questions(self, prompt_set: dict[str, Any]) -> list[FramedQuestion]:
        """The contrast set as this model reads it (for :meth:`read_framings`)."""

    @abstractmethod
    def read_framings(self, question: FramedQuestion, blocks: int) -> Any:
        """For each of ``question``'s framings, decoder blocks ``0..blocks-1``'s outputs
        averaged over the framing's tokens, read from the bare model: float32 numpy
        [framings, blocks, hidden] (how steering directions are measured)."""

    # Whether read_framings may run while a reply is being generated (building directions
    # behind a chat that answers meanwhile)
    reads_beside_replies = False

    @property
    def projection_dir(self) -> Path | None:
        """The checkpoint folder holding an emotion projection, where the backend can run one."""
        return None

    def use(self, modulator: Modulator) -> None:
        """Replace the modulator (the old one's hooks go, the new one's are installed)."""
        with self._busy:
            self.modulator.detach()
            modulator.attach(self._modulation_target())
            self.modulator = modulator
            self._forget()

    def _forget(self) -> None:  # noqa: B027 - a hook: most backends keep nothing
        """Drop what was kept between replies under the old modulator (nothing, by default)."""

    @contextmanager
    def unmodulated(self) -> Iterator[None]:
        """The bare model for a moment (for reading it), with no reply running meanwhile."""
        with self._busy:
            self.modulator.detach()
            try:
                yield
            finally:
                self.modulator.attach(self._modulation_target())

    def prepare_messages(
        self, messages: list[ChatMessage], emotion: EmotionVector
    ) -> list[ChatMessage]:
        """The history as the model sees it: the modulator's words joined to the system prompt."""
        persona = self.modulator.system_prompt(emotion)
        if not persona:
            return list(messages)
        if messages and messages[0]["role"] == "system":
            merged = f"{messages[0]['content']}\n\n{persona}"
            return [{"role": "system", "content": merged}, *messages[1:]]
        return [{"role": "system", "content": persona}, *messages]

    # -------------------------------------------------------------- replying
    def _acquire(self) -> None:
        if not self._busy.acquire(blocking=False):
            raise EmochatError("a reply is already being generated")

    def reply(
        self,
        messages: list[ChatMessage],
        emotion: EmotionVector,
        settings: SamplingSettings | None = None,
        after_first_sentence: AfterFirstSentence | None = None,
    ) -> Reply:
        """Stream a reply to ``messages`` carrying ``emotion``. ``after_first_sentence`` is the
        steering loop's: given the reply's first sentence, the gains for the rest of it."""
        settings = settings or SamplingSettings()
        self._acquire()
        try:
            self.modulator.set_gains(NO_GAINS)
            return self._start_reply(messages, emotion, settings, after_first_sentence)
        except BaseException:
            self._busy.release()
            raise

    @abstractmethod
    def _start_reply(
        self,
        messages: list[ChatMessage],
        emotion: EmotionVector,
        settings: SamplingSettings,
        after_first_sentence: AfterFirstSentence | None,
    ) -> Reply:
        """Under the busy lock: set the modulator and start the reply streaming
        (:func:`stream_reply`, which releases the lock when the reply ends)."""


class TokenBackend(Backend):
    """A model run in this process, token by token: the prompt built with its tokenizer
    (``tokenizer``: anything with the Hugging Face tokenizer calls that ``build_prompt_ids``
    and :class:`IncrementalDecoder` make), and the key/value cache of the common prefix kept
    between replies. A subclass adds how it runs the model (``_run``)."""

    tokenizer: Any
    # Whether keys and values kept in the cache are bit-identical to recomputed ones, so an
    # unsteered prefix (a shared system prompt) may be kept across conversations.
    exact_prefix = False

    def __init__(self) -> None:
        super().__init__()
        self._prefix = PrefixCache()

    def _forget(self) -> None:
        self._prefix = PrefixCache()  # read under the old modulator

    def framed_questions(self, prompt_set: dict[str, Any]) -> list[FramedQuestion]:
        from emochat.engine.framings import framed_questions

        return framed_questions(self.tokenizer, prompt_set)

    def _prepare(
        self, messages: list[ChatMessage], emotion: EmotionVector, new_tokens: int
    ) -> tuple[list[int], int]:
        """Under the busy lock: the prompt ids, the modulator set, and how much of the cache
        they may keep."""
        budget = max(1, self.info.context_length - new_tokens)
        prompt_ids = build_prompt_ids(
            self.tokenizer, self.prepare_messages(messages, emotion), budget
        )
        self.modulator.set_emotion(emotion)
        return prompt_ids, self._prefix.reusable(prompt_ids, self.exact_prefix)

    def _start_reply(
        self,
        messages: list[ChatMessage],
        emotion: EmotionVector,
        settings: SamplingSettings,
        after_first_sentence: AfterFirstSentence | None,
    ) -> Reply:
        prompt_ids, keep = self._prepare(messages, emotion, settings.max_new_tokens)

        def loop(emit: Emit, cancel: threading.Event, stats: ReplyStats) -> None:
            before, self._prefix = self._prefix, PrefixCache()  # unknown until the run says
            if after_first_sentence is not None:
                emit = self._watch_first_sentence(emit, after_first_sentence)
            job = Generation(prompt_ids, keep, settings, emit, cancel)
            stats.cached_tokens, cached = self._run(job)
            self._prefix = before.after(cached, len(prompt_ids), stats.cached_tokens)

        return stream_reply(
            loop,
            IncrementalDecoder(self.tokenizer),
            len(prompt_ids),
            self._busy.release,
            limit=0 if settings.ignore_eos else settings.max_new_tokens,
        )

    def _watch_first_sentence(self, emit: Emit, check: AfterFirstSentence) -> Emit:
        """``emit``, which also hands the reply's first sentence to ``check`` once it is
        written, and steers the rest with the gains it returns (in the generating thread,
        between two tokens: the next one is computed with them)."""
        decoder: IncrementalDecoder | None = IncrementalDecoder(self.tokenizer)
        written = SentenceEnds()

        def watched(token: int) -> None:
            nonlocal decoder
            emit(token)
            if decoder is None or not written.add(decoder.push(token)):
                return
            sentence = written.first_sentence()
            if sentence is None:
                return
            decoder = None  # once a reply
            try:
                gains = check(sentence)
            except EmochatError:  # a reading that failed costs the boost, not the reply
                return
            if gains is not None:
                self.modulator.set_gains(gains)

        return watched

    @abstractmethod
    def _run(self, job: Generation) -> tuple[int, list[int]]:
        """Generate after the prompt, reusing at most ``job.keep`` cached tokens, emitting each
        token id. Returns how many it reused, and the tokens the cache now holds."""
