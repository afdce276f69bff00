"""Streaming generation from a background thread, with cooperative cancellation.

``Engine.reply`` starts ``model.generate`` in a thread; the returned :class:`Reply` yields text
as tokens arrive and can be cancelled from any thread (a stopping criterion checks an event
between tokens, so the model stops within one token).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from emochat.emotion import EmotionVector
from emochat.engine.loading import LoadedModel, ModelInfo
from emochat.engine.modulators import Modulator, NoModulation
from emochat.engine.prompt import ChatMessage, build_prompt_ids
from emochat.errors import EmochatError


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 0.7  # 0 means greedy decoding
    top_p: float = 0.9
    top_k: int = 50
    max_new_tokens: int = 256
    repetition_penalty: float = 1.1
    seed: int | None = None

    def __post_init__(self) -> None:
        checks = [
            (self.temperature >= 0, "temperature must be >= 0"),
            (0 < self.top_p <= 1, "top-p must be in (0, 1]"),
            (self.top_k >= 0, "top-k must be >= 0"),
            (self.max_new_tokens >= 1, "max-new-tokens must be >= 1"),
            (self.repetition_penalty > 0, "repetition-penalty must be > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise EmochatError(message)

    def generate_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "repetition_penalty": self.repetition_penalty,
        }
        if self.temperature == 0:
            return {**kwargs, "do_sample": False}
        return {
            **kwargs,
            "do_sample": True,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
        }


@dataclass
class ReplyStats:
    prompt_tokens: int = 0
    new_tokens: int = 0
    seconds: float = 0.0
    first_token_seconds: float | None = None
    cancelled: bool = False

    @property
    def tokens_per_second(self) -> float:
        """Decode speed: tokens after the first over the time after the first."""
        if self.first_token_seconds is None or self.new_tokens < 2:
            return 0.0
        decode_seconds = self.seconds - self.first_token_seconds
        return (self.new_tokens - 1) / decode_seconds if decode_seconds > 0 else 0.0


class IncrementalDecoder:
    """Turns token ids into text pieces without splitting multi-byte characters or losing the
    leading spaces that tokenizers attach to words."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = []
        self._prefix = 0
        self._read = 0

    def _unread(self) -> str:
        """Text of the tokens not yet returned, decoded with the context before them."""
        decode = self._tokenizer.decode
        before = decode(self._ids[self._prefix : self._read], skip_special_tokens=True)
        after = decode(self._ids[self._prefix :], skip_special_tokens=True)
        return after[len(before) :]

    def push(self, token_id: int) -> str:
        self._ids.append(token_id)
        piece = self._unread()
        if piece and not piece.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self._ids)
            return piece
        return ""

    def flush(self) -> str:
        """Whatever is still held back at the end, incomplete characters and all."""
        piece = self._unread()
        self._prefix = self._read = len(self._ids)
        return piece

    @property
    def token_ids(self) -> list[int]:
        return list(self._ids)


_DONE = object()


class _QueueStreamer:
    """The streamer protocol of ``generate``: first the prompt ids, then one tensor a step."""

    def __init__(self, sink: queue.Queue[Any]) -> None:
        self._sink = sink
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        for token_id in value.reshape(-1).tolist():
            self._sink.put(int(token_id))

    def end(self) -> None:
        self._sink.put(_DONE)


@dataclass
class Reply:
    """An answer being generated: iterate for text pieces; ``text`` and ``stats`` fill in."""

    _tokens: queue.Queue[Any]
    _cancel: threading.Event
    _decoder: IncrementalDecoder
    _started: float
    _worker: threading.Thread
    stats: ReplyStats
    text: str = ""
    _pieces: list[str] = field(default_factory=list)
    _done: bool = False

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def token_ids(self) -> list[int]:
        return self._decoder.token_ids

    def __iter__(self) -> Iterator[str]:
        # Resumable after an interrupted loop; once finished, a new loop yields nothing (the
        # end marker is consumed, so waiting on the queue again would block forever).
        while not self._done:
            item = self._tokens.get()
            if item is _DONE:
                # The worker is past generate() now; joining keeps interpreter exit clean.
                self._worker.join()
                self._done = True
                tail = self._decoder.flush()
                if tail:
                    self._pieces.append(tail)
                self.stats.seconds = time.perf_counter() - self._started
                self.stats.cancelled = self._cancel.is_set()
                self.text = "".join(self._pieces).strip()
                if tail:
                    yield tail
                return
            if isinstance(item, BaseException):
                raise item
            if self.stats.first_token_seconds is None:
                self.stats.first_token_seconds = time.perf_counter() - self._started
            self.stats.new_tokens += 1
            piece = self._decoder.push(item)
            if piece:
                self._pieces.append(piece)
                yield piece

    def finish(self) -> str:
        """Consume the rest of the reply and return its whole text."""
        for _ in self:
            pass
        return self.text


class Engine:
    """A loaded model, a modulator, and the one reply it may be generating at a time."""

    def __init__(self, loaded: LoadedModel, modulator: Modulator | None = None) -> None:
        self._loaded = loaded
        self.modulator: Modulator = modulator or NoModulation()
        self.modulator.attach(loaded.model)
        self._busy = threading.Lock()

    @property
    def loaded(self) -> LoadedModel:
        return self._loaded

    @property
    def info(self) -> ModelInfo:
        return self._loaded.info

    @property
    def model(self) -> Any:
        return self._loaded.model

    @property
    def tokenizer(self) -> Any:
        return self._loaded.tokenizer

    @contextmanager
    def unmodulated(self) -> Iterator[None]:
        """The bare model for a moment (for reading it), with no reply running meanwhile."""
        with self._busy:
            self.modulator.detach()
            try:
                yield
            finally:
                self.modulator.attach(self._loaded.model)

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

    def reply(
        self,
        messages: list[ChatMessage],
        emotion: EmotionVector,
        settings: SamplingSettings | None = None,
    ) -> Reply:
        settings = settings or SamplingSettings()
        if not self._busy.acquire(blocking=False):
            raise EmochatError("a reply is already being generated")
        try:
            import torch

            budget = max(1, self.info.context_length - settings.max_new_tokens)
            prompt_ids = build_prompt_ids(
                self.tokenizer, self.prepare_messages(messages, emotion), budget
            )
            self.modulator.set_emotion(emotion)
        except BaseException:
            self._busy.release()
            raise
        tokens: queue.Queue[Any] = queue.Queue()
        cancel = threading.Event()
        device = next(self.model.parameters()).device
        input_ids = torch.tensor([prompt_ids], device=device)
        worker = threading.Thread(
            target=self._generate,
            args=(input_ids, settings, tokens, cancel),
            name="emochat-generate",
            daemon=True,
        )
        reply = Reply(
            _tokens=tokens,
            _cancel=cancel,
            _decoder=IncrementalDecoder(self.tokenizer),
            _started=time.perf_counter(),
            _worker=worker,
            stats=ReplyStats(prompt_tokens=len(prompt_ids)),
        )
        worker.start()
        return reply

    def _generate(
        self,
        input_ids: Any,
        settings: SamplingSettings,
        tokens: queue.Queue[Any],
        cancel: threading.Event,
    ) -> None:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        class StopOnCancel(StoppingCriteria):
            def __call__(self, ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((ids.shape[0],), cancel.is_set(), dtype=torch.bool)

        streamer = _QueueStreamer(tokens)
        try:
            if settings.seed is not None:
                torch.manual_seed(settings.seed)
            with torch.inference_mode():
                self.model.generate(
                    input_ids=input_ids,
                    attention_mask=torch.ones_like(input_ids),
                    streamer=streamer,
                    stopping_criteria=StoppingCriteriaList([StopOnCancel()]),
                    pad_token_id=self._pad_token_id(),
                    **settings.generate_kwargs(),
                )
        except torch.cuda.OutOfMemoryError:
            tokens.put(EmochatError("out of memory while generating; try --quant 4bit"))
            tokens.put(_DONE)
        except BaseException as error:  # the consumer re-raises it in its own thread
            tokens.put(error)
            tokens.put(_DONE)
        finally:
            self._busy.release()

    def _pad_token_id(self) -> int | None:
        tokenizer = self.tokenizer
        if tokenizer.pad_token_id is not None:
            return int(tokenizer.pad_token_id)
        return None if tokenizer.eos_token_id is None else int(tokenizer.eos_token_id)
