"""Streaming replies, whichever backend generates them.

A backend runs its generation loop in a worker thread that emits token ids; the :class:`Reply`
it returns yields text as they arrive and can be cancelled from any thread (the loop checks an
event between tokens, so the model stops within one token). :class:`PrefixCache` decides how
much of the last reply's computed prompt the next one may keep.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from emochat.errors import EmochatError


def default_reply_limit(context_length: int) -> int:
    """The most new tokens a reply gets unless told: a quarter of the context, so the history
    keeps three quarters, within [64, 1024] (long enough for a full answer from a small model,
    short enough that a runaway reply ends and can be continued)."""
    return max(64, min(1024, context_length // 4))


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 0.7  # 0 means greedy decoding
    top_p: float = 0.9
    top_k: int = 50
    max_new_tokens: int = 256
    repetition_penalty: float = 1.1
    seed: int | None = None
    ignore_eos: bool = False  # decode all max_new_tokens (benchmarks compare equal lengths)

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
        if self.ignore_eos:
            kwargs["min_new_tokens"] = self.max_new_tokens
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
    cached_tokens: int = 0  # of the prompt, taken from the last reply's key/value cache
    new_tokens: int = 0
    seconds: float = 0.0
    first_token_seconds: float | None = None
    cancelled: bool = False
    truncated: bool = False  # stopped by the token limit, not by the model or the user
    broken: str | None = None  # why the reply ended early, where it was not the user (a server)

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


class TextPieces:
    """For backends that stream text rather than token ids (a server): each piece passes
    through as it comes."""

    def push(self, piece: str) -> str:
        return piece

    def flush(self) -> str:
        return ""

    @property
    def token_ids(self) -> list[int]:
        return []


_DONE = object()

# A token id (in-process backends) or a piece of text (a server), as the reply's decoder takes
Emit = Callable[[Any], None]
# The backend's generation loop: emit each new token id, stop soon after ``cancel`` is set, and
# fill in what it knows of the stats (how much of the prompt came from the cache).
GenerationLoop = Callable[[Emit, threading.Event, "ReplyStats"], None]


@dataclass
class Reply:
    """An answer being generated: iterate for text pieces; ``text`` and ``stats`` fill in."""

    _tokens: queue.Queue[Any]
    _cancel: threading.Event
    _decoder: IncrementalDecoder | TextPieces
    _started: float
    _worker: threading.Thread
    stats: ReplyStats
    _limit: int = 0  # the most new tokens the reply may have
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
                self.stats.truncated = not self.stats.cancelled and (
                    self.stats.truncated or 0 < self._limit <= self.stats.new_tokens
                )
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


def stream_reply(
    loop: GenerationLoop,
    decoder: IncrementalDecoder | TextPieces,
    prompt_tokens: int,
    release: Callable[[], None],
    limit: int = 0,
) -> Reply:
    """Run ``loop`` in a worker thread and return the reply it streams into. ``release`` runs
    when the loop is over, before the reply reports its end; a reply of ``limit`` tokens was
    cut short by it."""
    tokens: queue.Queue[Any] = queue.Queue()
    cancel = threading.Event()
    stats = ReplyStats(prompt_tokens=prompt_tokens)

    def work() -> None:
        try:
            loop(tokens.put, cancel, stats)
        except BaseException as error:  # the consumer re-raises it in its own thread
            tokens.put(error)
        finally:
            release()
            tokens.put(_DONE)

    worker = threading.Thread(target=work, name="emochat-generate", daemon=True)
    reply = Reply(
        _tokens=tokens,
        _cancel=cancel,
        _decoder=decoder,
        _started=time.perf_counter(),
        _worker=worker,
        stats=stats,
        _limit=limit,
    )
    worker.start()
    return reply


def common_prefix_length(first: list[int], second: list[int]) -> int:
    length = 0
    for a, b in zip(first, second, strict=False):
        if a != b:
            break
        length += 1
    return length


@dataclass
class PrefixCache:
    """What the backend's key/value cache holds after a reply, and the rule for reusing it.

    The next turn of the same conversation reuses all of it: a prompt that extends the last one
    keeps everything the cache holds of it, so the time to first token does not grow with the
    conversation, and earlier replies keep the steering they were written under (recomputed,
    they would be read as prompt, unsteered). Any other prompt (another conversation, the same
    one again for a seeded replay or a regenerated reply, an evaluation under another mood) may
    keep only the leading tokens that were read unsteered, the system prompt a new
    conversation shares with the last one, say, and only on a backend whose reused keys and
    values are bit-identical to recomputed ones (``exact``): a reply never reads text steered by
    a mood it was not asked for, and is the same whatever came before it.
    """

    tokens: list[int] = field(default_factory=list)  # whose keys and values are cached
    prompt_length: int = 0  # of the reply that filled it
    unsteered: int = 0  # leading tokens whose keys and values were read with no steering

    def reusable(self, prompt: list[int], exact: bool = False) -> int:
        """How many leading tokens of ``prompt`` need no computing."""
        common = common_prefix_length(self.tokens, prompt)
        if 0 < self.prompt_length <= common < len(prompt):
            return common
        if exact:
            return max(0, min(common, self.unsteered, len(prompt) - 1))
        return 0

    def after(self, cached: list[int], prompt_length: int, reused: int) -> PrefixCache:
        """The cache after a reply to a prompt of ``prompt_length`` that kept ``reused`` of these
        tokens: the prompt is read unsteered up to its last token, unless the part it kept
        already held steered ones."""
        unsteered = prompt_length - 1 if reused <= self.unsteered else self.unsteered
        return PrefixCache(cached, prompt_length, max(0, unsteered))
