"""Choose how the emotion vector reaches the model:
``--modulation auto|steer|embed|prompt|both|off`` (auto = embed for checkpoints trained with an
emotion projection, such as Emotional-Gemma, else steer)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emochat.emotion import EmotionVector
from emochat.engine.modulators import MODULATION_CHOICES, Modulator, NoModulation
from emochat.engine.persona import PersonaModulator
from emochat.engine.projection import (
    PROJECTION_FILE,
    EmbeddingProjectionModulator,
    load_projection,
)
from emochat.engine.steering import Progress, build_and_cache_vectors, find_vectors
from emochat.errors import EmochatError

if TYPE_CHECKING:
    from emochat.engine.backends import Backend


class CombinedModulator:
    """Several modulators at once (steering and the persona prompt, for ``both``)."""

    name = "both"

    def __init__(self, parts: list[Modulator]) -> None:
        self.parts = parts

    def attach(self, model: Any) -> None:
        for part in self.parts:
            part.attach(model)

    def set_emotion(self, emotion: EmotionVector) -> None:
        for part in self.parts:
            part.set_emotion(emotion)

    def system_prompt(self, emotion: EmotionVector) -> str | None:
        texts = [text for part in self.parts if (text := part.system_prompt(emotion))]
        return "\n\n".join(texts) or None

    def detach(self) -> None:
        for part in self.parts:
            part.detach()


def modulator_parts(modulator: Modulator) -> list[Modulator]:
    """The modulators that ``modulator`` is made of (itself, unless it combines several)."""
    return modulator.parts if isinstance(modulator, CombinedModulator) else [modulator]


def check_intensity(intensity: float) -> None:
    if not 0 <= intensity <= 3:
        raise EmochatError("intensity must be between 0 and 3")


def set_intensity(modulator: Modulator, intensity: float) -> bool:
    """Change how strongly ``modulator`` steers (the steering part of ``both`` too), from the
    next reply on; False where nothing in it steers."""
    check_intensity(intensity)
    steering = [part for part in modulator_parts(modulator) if hasattr(part, "intensity")]
    for part in steering:
        part.intensity = intensity  # type: ignore[attr-defined]
    return bool(steering)


def build_modulator(
    mode: str,
    backend: Backend,
    intensity: float = 1.0,
    build_vectors: bool = True,
    progress: Progress = print,
) -> Modulator:
    """The modulator for ``mode`` on ``backend``. Steering without vectors (and building turned
    off) falls back to the persona prompt, and says so through ``progress``."""
    if mode not in MODULATION_CHOICES:
        raise EmochatError(f"modulation must be one of {', '.join(MODULATION_CHOICES)}")
    check_intensity(intensity)
    folder = backend.projection_dir
    if mode == "auto":
        mode = "embed" if folder else "steer"
    if mode == "embed":
        if folder is None:
            raise EmochatError(
                f"embedding modulation needs a checkpoint with {PROJECTION_FILE} "
                "(Emotional-Gemma) on the transformers backend"
            )
        return EmbeddingProjectionModulator(load_projection(folder, backend.info.hidden_size))
    if mode == "off":
        return NoModulation()
    if mode == "prompt":
        return PersonaModulator()
    directions = find_vectors(backend.info)
    if directions is None and build_vectors:
        directions = build_and_cache_vectors(backend.extraction_model(progress), progress)
    if directions is None:
        progress(
            f"No emotion vectors for {backend.info.name} and building is off: using the persona "
            "prompt instead (run `emochat vectors build` to steer)."
        )
        return PersonaModulator()
    steering = backend.steering(directions, intensity)
    if mode == "steer":
        return steering
    return CombinedModulator([steering, PersonaModulator()])
