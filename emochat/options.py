"""Turn parsed command-line arguments into the engine's option objects."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from emochat.emotion import EmotionVector, parse_emotion

if TYPE_CHECKING:
    from emochat.engine.generation import Engine, SamplingSettings
    from emochat.engine.loading import LoadOptions


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


def load_options_from_args(args: argparse.Namespace) -> LoadOptions:
    from emochat.engine.loading import LoadOptions

    return LoadOptions(
        model=args.model,
        quant=args.quant,
        device=args.device,
        dtype=args.dtype,
        threads=args.threads,
    )


def sampling_from_args(args: argparse.Namespace) -> SamplingSettings:
    from emochat.engine.generation import SamplingSettings

    return SamplingSettings(
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        max_new_tokens=args.max_new_tokens,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
    )


def open_engine(
    args: argparse.Namespace, progress: Callable[[str], None] = progress_printer
) -> Engine:
    """Load the model and its modulator as the arguments say."""
    from emochat.engine.generation import Engine
    from emochat.engine.loading import load_model
    from emochat.engine.modulation import build_modulator

    loaded = load_model(load_options_from_args(args), progress)
    modulator = build_modulator(
        args.modulation, loaded, args.intensity, args.build_vectors, progress
    )
    return Engine(loaded, modulator)
