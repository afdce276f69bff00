"""The one conversion from parsed flags to the runtime's typed configuration. The commands
build their :class:`RunConfig` here; below ``emochat.cli`` nothing sees the flags."""

from __future__ import annotations

import argparse
from typing import Any

from emochat.cli.output import warn
from emochat.emotion import EmotionVector, parse_emotion
from emochat.engine.loading import DEFAULT_MODEL
from emochat.errors import EmochatError
from emochat.runtime.config import GenerationConfig, ModelConfig, RunConfig


def emotion_from_flag(spec: str | None) -> EmotionVector | None:
    """``--emotion``, parsed (its warnings said), or None where it was not given."""
    if not spec:
        return None
    vector, warnings = parse_emotion(spec)
    for message in warnings:
        warn(message)
    return vector


PROFILE_KEYS = {
    "base_url": str,
    "model": str,
    "api_key_env": str,
    "timeout": (int, float),
    "context": int,
    "steering": str,
    "steering_vectors": str,
}


def server_profile(name: str) -> dict[str, Any]:
    """config.toml's ``[servers.NAME]``, its values checked."""
    from emochat.config import load_config

    servers = load_config().get("servers", {})
    profile = servers.get(name) if isinstance(servers, dict) else None
    if not isinstance(profile, dict):
        known = ", ".join(sorted(servers)) if isinstance(servers, dict) and servers else "none"
        raise EmochatError(f"no [servers.{name}] in config.toml (profiles: {known})")
    for key, value in profile.items():
        kind = PROFILE_KEYS.get(key)
        if kind is None:
            raise EmochatError(f"[servers.{name}] {key}: not a setting ({', '.join(PROFILE_KEYS)})")
        if not isinstance(value, kind) or isinstance(value, bool):
            raise EmochatError(f"[servers.{name}] {key} = {value!r}: wrong type")
    if "base_url" not in profile:
        raise EmochatError(f"[servers.{name}] needs base_url")
    return profile


def server_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The server fields of a :class:`ModelConfig`, from ``--server``'s profile and the flags
    (which beat it); no base URL where neither names a server."""
    profile = server_profile(args.server) if getattr(args, "server", None) else {}
    timeout = getattr(args, "timeout", None) or profile.get("timeout") or ModelConfig.timeout
    return {
        "base_url": getattr(args, "base_url", None) or profile.get("base_url"),
        "api_key_env": profile.get("api_key_env"),
        "timeout": float(timeout),
        "server_context": profile.get("context", ModelConfig.server_context),
        "steering": getattr(args, "steering", None) or profile.get("steering", "none"),
        "steering_vectors": getattr(args, "steering_vectors", None)
        or profile.get("steering_vectors"),
    }


def model_config(args: argparse.Namespace) -> ModelConfig:
    """The model flags; a server's where one is named: a server makes ``auto`` the openai
    backend, and its profile's model stands in for ``default``."""
    server = server_settings(args)
    backend = args.backend
    if server["base_url"] and backend == "auto":
        backend = "openai"
    model = args.model
    if model == DEFAULT_MODEL and getattr(args, "server", None):
        model = server_profile(args.server).get("model", model)
    return ModelConfig(
        model=model,
        backend=backend,
        quant=args.quant,
        device=args.device,
        dtype=args.dtype,
        threads=args.threads,
        **server,
    )


def generation_config(args: argparse.Namespace) -> GenerationConfig:
    """The generation flags of ``chat`` and ``say``."""
    return GenerationConfig(
        emotion=emotion_from_flag(args.emotion),
        modulation=args.modulation,
        intensity=args.intensity,
        build_directions=args.build_vectors,
        steering_loop=args.steering_loop,
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
    """The mood is locked and no prompt is read; the replies are read back (by the MiniLM
    detector) unless --no-read-back."""
    return RunConfig(
        model=model_config(args),
        generation=generation_config(args),
        detector=None if args.no_read_back else "minilm",
        read_back=not args.no_read_back,
    )


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
