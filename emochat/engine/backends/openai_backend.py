"""The server backend: a model served over the OpenAI chat-completions API (Ollama,
llama-server, LM Studio, vLLM), streamed. The mood reaches it as the persona prompt, or, on an
engine that steers per request (EasySteer), as steering vectors sent with every request; the
detector still runs here."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from emochat.emotion import EmotionVector
from emochat.engine.backends.base import Backend
from emochat.engine.directions import EmotionDirections
from emochat.engine.generation import (
    Reply,
    ReplyStats,
    SamplingSettings,
    TextPieces,
    stream_reply,
)
from emochat.engine.loading import ModelInfo
from emochat.engine.modulation.base import Modulator
from emochat.engine.modulation.loop import AfterFirstSentence
from emochat.engine.prompt import ChatMessage
from emochat.engine.server_api import ServerAPI
from emochat.errors import EmochatError
from emochat.progress import Progress

if TYPE_CHECKING:
    from emochat.engine.framings import FramedQuestion

# What a model entry of GET /models may say about its context, by server
CONTEXT_KEYS = ("max_model_len", "context_length", "max_context_length", "n_ctx")
# Sampling settings the chat-completions API has no field for
NOT_SENT = ("top_k", "repetition_penalty")
CHARS_PER_TOKEN = 3
NOT_STEERABLE = (
    "a plain OpenAI-compatible server cannot be steered from here: use the persona prompt "
    "(--modulation prompt), or --steering easysteer on an EasySteer server"
)
NOT_READABLE = (
    "a server's model cannot be read from here: build the vectors from a local copy of the "
    "model (emochat vectors build --model FILE), then export them"
)  # a cautious estimate: the server's tokenizer is not here to count with


def _context_of(entry: dict[str, Any]) -> int | None:
    for key in CONTEXT_KEYS:
        value = entry.get(key)
        if isinstance(value, int) and value > 0:
            return value
    meta = entry.get("meta")  # llama-cpp-python's server
    if isinstance(meta, dict):
        value = meta.get("n_ctx_train")
        if isinstance(value, int) and value > 0:
            return value
    return None


class OpenAIBackend(Backend):
    kind = "openai"

    def __init__(
        self, api: ServerAPI, model: str, context_length: int, steering_vectors: str | None = None
    ) -> None:
        super().__init__()
        self.api = api
        self._steering_vectors = steering_vectors
        self.request_fields: dict[str, Any] = {}  # what a steering modulator adds to a request
        self.info = ModelInfo(
            name=model,
            source=api.base_url,
            quant="server",
            device=api.base_url,
            dtype="server",
            n_layers=0,
            hidden_size=0,
            context_length=context_length,
            backend=self.kind,
        )

    @classmethod
    def connect(
        cls,
        api: ServerAPI,
        model: str,
        fallback_context: int,
        progress: Progress,
        steering_vectors: str | None = None,
    ) -> OpenAIBackend:
        """The model ``model`` on the server: checked against the server's list, its context
        taken from it where the server says (else ``fallback_context``)."""
        progress(f"Connecting to {api.base_url}…")
        try:
            offered = api.models()
        except EmochatError as error:
            if "(404" not in str(error):  # a server without the list still chats
                raise
            offered = []
        names = [str(entry["id"]) for entry in offered]
        if offered and model not in names:
            raise EmochatError(
                f"the server at {api.base_url} has no model {model!r}; it offers: "
                + ", ".join(names)
            )
        entry = next((entry for entry in offered if entry["id"] == model), {})
        context = _context_of(entry) or fallback_context
        progress(
            f"{model} on {api.base_url}: not sent to the server (the API has no field): "
            + ", ".join(NOT_SENT)
        )
        return cls(api, model, context, steering_vectors)

    def _modulation_target(self) -> Any:
        return self

    def own_steering(self, intensity: float) -> Modulator | None:
        """EasySteer's, where the server's copies of the vectors were named."""
        if self._steering_vectors is None:
            return None
        from emochat.engine.modulation.server_steering import EasySteerModulator

        return EasySteerModulator(self._steering_vectors, intensity)

    def steering(self, directions: EmotionDirections, intensity: float) -> Modulator:
        raise EmochatError(NOT_STEERABLE)

    def framed_questions(self, prompt_set: dict[str, Any]) -> list[FramedQuestion]:
        raise EmochatError(NOT_READABLE)

    def read_framings(self, question: FramedQuestion, blocks: int) -> Any:
        raise EmochatError(NOT_READABLE)

    def _fit(self, messages: list[ChatMessage], new_tokens: int) -> list[ChatMessage]:
        """The history cut from its oldest turns (the system prompt and the last message
        stay) until it fits the context with room for the reply, by a cautious estimate."""
        budget = max(1, self.info.context_length - new_tokens) * CHARS_PER_TOKEN
        system = [m for m in messages[:1] if m["role"] == "system"]
        rest = messages[len(system) :]
        while len(rest) > 1 and sum(len(m["content"]) + 16 for m in system + rest) > budget:
            rest = rest[1:]
        return system + rest

    def _start_reply(
        self,
        messages: list[ChatMessage],
        emotion: EmotionVector,
        settings: SamplingSettings,
        after_first_sentence: AfterFirstSentence | None,
    ) -> Reply:
        # A server's reply cannot be re-steered half-way: the steering loop does not apply.
        prepared = self._fit(self.prepare_messages(messages, emotion), settings.max_new_tokens)
        self.modulator.set_emotion(emotion)
        body: dict[str, Any] = {
            "model": self.info.name,
            "messages": prepared,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "max_tokens": settings.max_new_tokens,
            **self.request_fields,
        }
        if settings.seed is not None:
            body["seed"] = settings.seed

        def loop(emit: Any, cancel: threading.Event, stats: ReplyStats) -> None:
            end = self.api.stream_chat(body, emit, cancel)
            stats.truncated = end.finish_reason == "length"
            if end.broken is not None:
                stats.broken = end.broken
                cancel.set()  # kept as a stopped reply

        return stream_reply(loop, TextPieces(), 0, self._busy.release)
