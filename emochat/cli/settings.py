"""The one conversion from parsed flags to the runtime's typed configuration. The commands
build their :class:`RunConfig` here; below ``emochat.cli`` nothing sees the flags."""

from __future__ import annotations

import argparse

from emochat.cli.output import warn
from emochat.emotion import EmotionVector, parse_emotion
from emochat.runtime.config import GenerationConfig, ModelConfig, RunConfig


def emotion_from_flag(spec: str | None) -> EmotionVector | None:
    """``--emotion``, parsed (its warnings said), or None where it was not given."""
    if not spec:
        return None
    vector, warnings = parse_emotion(spec)
    for message in warnings:
        warn(message)
    return vector


def model_config(args: argparse.Namespace) -> ModelConfig:
    return ModelConfig(
        model=args.model,
        backend=args.backend,
        quant=args.quant,
        device=args.device,
        dtype=args.dtype,
        threads=args.threads,
    )


def generation_config(args: argparse.Namespace) -> GenerationConfig:
    """The generation flags of ``chat`` and ``say``."""
    return GenerationConfig(
        emotion=emotion_from_flag(args.emotion),
        modulation=args.modulation,
        intensity=args.intensity,
        build_directions=args.build_vectors,
        system_prompt=args.system,
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        max_new_tokens=args.max_new_tokens,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
    )


def chat_config(args: argparse.Namespace) -> RunConfig:
    return RunConfig(
        model=model_config(args),
        generation=generation_config(args),
        detector=args.detector,
        policy=args.policy,
    )


def say_config(args: argparse.Namespace) -> RunConfig:
    return RunConfig(model=model_config(args), generation=generation_config(args))


def detect_config(args: argparse.Namespace) -> RunConfig:
    """The probe reads the bare model (nothing modulates it); the other detectors need none."""
    return RunConfig(
        model=model_config(args),
        generation=GenerationConfig(modulation="off"),
        detector=args.detector,
        uses_model=args.detector == "probe",
    )


def vectors_config(args: argparse.Namespace) -> RunConfig:
    """The bare model: vectors are read from it, not applied to it."""
    return RunConfig(model=model_config(args), generation=GenerationConfig(modulation="off"))


def train_data_config(args: argparse.Namespace) -> RunConfig:
    """The data recipe distils steered replies, read back by the MiniLM detector."""
    return RunConfig(
        model=model_config(args),
        generation=GenerationConfig(modulation="steer"),
        detector="minilm",
    )
