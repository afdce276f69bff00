"""Turn parsed command-line arguments into the engine's option objects."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from emochat.emotion import EmotionVector, parse_emotion
from emochat.errors import EmochatError

if TYPE_CHECKING:
    from emochat.engine.backends import Backend
    from emochat.engine.generation import SamplingSettings
    from emochat.engine.loading import LoadOptions, ModelInfo


def warn(message: str) -> None:
    print(f"emochat: warning: {message}", file=sys.stderr)


def progress_printer(message: str) -> None:
    """Loading progress goes to stderr, so stdout stays clean for scripts."""
    print(message, file=sys.stderr, flush=True)


def emotion_from_args(args: argparse.Namespace) -> EmotionVector:
    if not args.emotion:
        return EmotionVector.neutral()
    vector, warnings = parse_emotion(args.emotion)
    for message in warnings:
        warn(message)
    return vector


def _backend_from_args(args: argparse.Namespace) -> str:
    """The backend asked for; the probe detector reads hidden states, which only the
    transformers backend exposes, so ``auto`` takes that one for it."""
    backend: str = getattr(args, "backend", "auto")
    if getattr(args, "detector", None) != "probe":
        return backend
    if backend == "llama.cpp":
        raise EmochatError(
            "the probe detector reads hidden states through transformers: "
            "use --backend transformers or another --detector"
        )
    return "transformers"


def load_options_from_args(args: argparse.Namespace) -> LoadOptions:
    from emochat.engine.loading import LoadOptions
    from emochat.engine.projection import model_for_modulation

    return LoadOptions(
        model=model_for_modulation(args.model, getattr(args, "modulation", "")),
        quant=args.quant,
        device=args.device,
        dtype=args.dtype,
        threads=args.threads,
        backend=_backend_from_args(args),
    )


def sampling_from_args(
    args: argparse.Namespace, info: ModelInfo, warn: Callable[[str], None] = warn
) -> SamplingSettings:
    """The sampling flags, with the reply limit (``auto`` by default) fitted to the model's
    context: a limit that would leave the prompt no room is capped at half the context."""
    from emochat.engine.generation import default_reply_limit

    limit = args.max_new_tokens
    if limit == "auto":
        limit = default_reply_limit(info.context_length)
    elif limit > info.context_length // 2:
        capped = max(1, info.context_length // 2)
        warn(
            f"--max-new-tokens {limit} would leave the prompt little or no room in "
            f"{info.name}'s context of {info.context_length} tokens; using {capped}"
        )
        limit = capped
    return _sampling(args, limit)


def _sampling(args: argparse.Namespace, limit: int) -> SamplingSettings:
    from emochat.engine.generation import SamplingSettings

    return SamplingSettings(
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        max_new_tokens=limit,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
    )


def check_generation_flags(args: argparse.Namespace) -> None:
    """The sampling and intensity flags, checked before a model loads for them."""
    from emochat.engine.modulation import check_intensity

    if hasattr(args, "intensity"):
        check_intensity(args.intensity)
    if hasattr(args, "temperature"):  # the limit itself is fitted once the context is known
        _sampling(args, 1 if args.max_new_tokens == "auto" else args.max_new_tokens)


def open_engine(
    args: argparse.Namespace, progress: Callable[[str], None] = progress_printer
) -> Backend:
    """Load the model on its backend, with the modulator the arguments say."""
    from emochat.engine.backends import open_backend
    from emochat.engine.modulation import build_modulator

    check_generation_flags(args)
    backend = open_backend(load_options_from_args(args), progress)
    backend.use(
        build_modulator(args.modulation, backend, args.intensity, args.build_vectors, progress)
    )
    return backend
