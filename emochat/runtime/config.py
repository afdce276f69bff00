"""The run configuration: what a command asks to run, as frozen, typed values (the command line
fills it in ``emochat.cli``; a Python caller builds it directly), and the one check of every
value, made before anything loads."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from emochat.detect import DETECTOR_CHOICES
from emochat.emotion import EmotionVector
from emochat.engine.backends import BACKEND_CHOICES
from emochat.engine.generation import SamplingSettings
from emochat.engine.loading import DEFAULT_MODEL, DTYPE_CHOICES, QUANT_CHOICES
from emochat.engine.modulation import MODULATION_CHOICES, check_intensity
from emochat.errors import EmochatError
from emochat.state import POLICIES

SERVER_STEERING_CHOICES = ("none", "easysteer")
DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
DEVICE_CHOICES_TEXT = "auto, cpu, cuda, cuda:N or mps"


@dataclass(frozen=True)
class ModelConfig:
    """Which model, run how."""

    model: str = DEFAULT_MODEL  # default, a .gguf file, a folder, an adapter folder or a hub id
    backend: str = "auto"
    quant: str = "auto"
    device: str = "auto"
    dtype: str = "auto"
    threads: int | None = None
    # a model on a server (backend openai): its URL, the variable holding its API key
    # (EMOCHAT_API_KEY when None), how long to wait for it, and its context where the server
    # does not say
    base_url: str | None = None
    api_key_env: str | None = None
    timeout: float = 60.0
    server_context: int = 8192
    # a server that steers per request: the engine, and the folder of vectors on the server
    steering: str = "none"
    steering_vectors: str | None = None

    @property
    def on_server(self) -> bool:
        return self.backend == "openai"


SAMPLING_FIELDS = ("temperature", "top_p", "top_k", "repetition_penalty", "seed")


@dataclass(frozen=True)
class GenerationConfig:
    """How replies are made: the mood they start in, how it reaches the model, sampling."""

    emotion: EmotionVector | None = None
    modulation: str = "auto"
    intensity: float = 1.0
    build_directions: bool = True  # build steering directions for a model that has none
    # the steering loop: a reply's first sentence read back, and the steered axes it falls short
    # of steered harder for the rest of the reply (needs the read-back detector)
    steering_loop: bool = True
    system_prompt: str | None = None
    # Sampling: None is the model's own default where its store keeps one (Ollama's params),
    # else emochat's (SamplingSettings' defaults)
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_new_tokens: int | Literal["auto"] = "auto"  # auto: fitted to the model's context
    repetition_penalty: float | None = None
    seed: int | None = None

    def sampling(
        self, max_new_tokens: int, model_defaults: Mapping[str, Any] | None = None
    ) -> SamplingSettings:
        """The sampling settings, with the reply limit given: each one as asked, else the
        model's default, else emochat's (checked as they are built)."""
        chosen = {
            name: value
            for name in SAMPLING_FIELDS
            if (value := getattr(self, name)) is not None
            or (value := (model_defaults or {}).get(name)) is not None
        }
        return SamplingSettings(max_new_tokens=max_new_tokens, **chosen)


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    detector: str | None = None  # how user messages are read; None where none are
    policy: str = "mirror"  # how the mood follows the user's messages
    # False where the command runs no chat model (detect with a text detector): the model flags
    # are still checked, but the model is not looked for
    uses_model: bool = True
    # each finished reply read back by the detector: the mood it expresses, kept beside the
    # one that steered it (needs a detector)
    read_back: bool = True


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise EmochatError(f"{what} must be one of {', '.join(choices)} (not {value!r})")


def check_config(config: RunConfig) -> None:
    """Every value, checked: an :class:`EmochatError` naming the first that is wrong."""
    model, generation = config.model, config.generation
    _check_choice("backend", model.backend, BACKEND_CHOICES)
    _check_choice("quantization", model.quant, QUANT_CHOICES)
    _check_choice("dtype", model.dtype, DTYPE_CHOICES)
    if not DEVICE_PATTERN.fullmatch(model.device):
        raise EmochatError(f"device must be {DEVICE_CHOICES_TEXT} (not {model.device!r})")
    if model.threads is not None and model.threads < 1:
        raise EmochatError("threads must be at least 1")
    _check_choice("steering", model.steering, SERVER_STEERING_CHOICES)
    if model.on_server and not model.base_url:
        raise EmochatError("the openai backend needs the server's URL: --base-url or --server")
    if model.base_url and not model.on_server:
        raise EmochatError(f"--base-url is for the openai backend, not {model.backend}")
    if model.steering != "none" and not (model.on_server and model.steering_vectors):
        raise EmochatError(
            "--steering easysteer needs the openai backend and --steering-vectors, the folder "
            "on the server holding `emochat vectors export` files"
        )
    if model.timeout <= 0 or model.server_context < 64:
        raise EmochatError("the timeout must be above 0 and the server context at least 64")
    _check_choice("modulation", generation.modulation, MODULATION_CHOICES)
    check_intensity(generation.intensity)
    limit = generation.max_new_tokens
    generation.sampling(1 if limit == "auto" else limit)  # the limit is fitted once loaded
    if config.detector is not None:
        _check_choice("detector", config.detector, DETECTOR_CHOICES)
    _check_choice("policy", config.policy, POLICIES)
