"""Which modulator carries the emotion: ``auto|steer|embed|prompt|both|off``, the rule that
settles ``auto``, and the one place modulators are built."""

from __future__ import annotations

from typing import TYPE_CHECKING

from emochat.engine.modulation.base import CombinedModulator, Modulator, NoModulation
from emochat.errors import EmochatError
from emochat.progress import Progress, no_progress

if TYPE_CHECKING:
    from emochat.engine.backends.base import Backend
    from emochat.engine.loading import ModelSource

# auto = embed for checkpoints trained with an emotion projection, else steer.
MODULATION_CHOICES = ("auto", "steer", "embed", "prompt", "both", "off")


def choose_modulation(requested: str, source: ModelSource) -> str:
    """``requested``, with ``auto`` settled for this model: its own emotion projection where it
    was trained with one (Emotional-Gemma), else steering."""
    if requested not in MODULATION_CHOICES:
        raise EmochatError(f"modulation must be one of {', '.join(MODULATION_CHOICES)}")
    if requested == "auto":
        from emochat.engine.modulation.projection import has_projection

        return "embed" if has_projection(source) else "steer"
    return requested


def check_intensity(intensity: float) -> None:
    if not 0 <= intensity <= 3:
        raise EmochatError("intensity must be between 0 and 3")


def set_intensity(modulator: Modulator, intensity: float) -> bool:
    """Change how strongly ``modulator`` steers (the steering part of ``both`` too), from the
    next reply on; False where nothing in it steers."""
    check_intensity(intensity)
    return modulator.set_intensity(intensity)


def build_modulator(
    mode: str,
    backend: Backend,
    intensity: float = 1.0,
    build_directions: bool = True,
    progress: Progress = no_progress,
    build_behind: bool = False,
) -> Modulator:
    """The modulator for ``mode`` (settled: not ``auto``) on ``backend``. Steering without
    directions builds them (and keeps them in the cache): before returning, or, with
    ``build_behind`` on a backend that reads beside its replies, in a thread while the model
    answers unsteered. With building turned off it falls back to the persona prompt, and says
    so. The ways are imported as they are chosen: the choice lists load with ``--help``."""
    from emochat.engine.directions import find_directions
    from emochat.engine.modulation.persona import PersonaModulator
    from emochat.engine.modulation.projection import (
        PROJECTION_FILE,
        EmbeddingProjectionModulator,
        load_projection,
    )

    check_intensity(intensity)
    if mode == "embed":
        folder = backend.projection_dir
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
    if mode not in ("steer", "both"):
        raise EmochatError(f"modulation must be one of {', '.join(MODULATION_CHOICES[1:])}")
    own = backend.own_steering(intensity)
    directions = None if own is not None else find_directions(backend.info)
    if own is not None:
        steering = own
    elif directions is not None:
        steering = backend.steering(directions, intensity)
    elif not build_directions:
        progress(
            f"No emotion vectors for {backend.info.name} and building is off: using the persona "
            "prompt instead (run `emochat vectors build` to steer)."
        )
        return PersonaModulator()
    elif build_behind and backend.reads_beside_replies:
        from emochat.engine.modulation.pending import PendingSteering

        progress(
            f"No emotion vectors for {backend.info.name} yet: building them behind the chat; "
            "replies are unsteered until they are ready."
        )
        steering = PendingSteering(
            lambda: _built_steering(backend, intensity, progress), intensity, progress
        )
    else:
        progress(f"No emotion vectors for {backend.info.name} yet: building them once…")
        steering = _built_steering(backend, intensity, progress)
    if mode == "steer":
        return steering
    return CombinedModulator([steering, PersonaModulator()])


def _built_steering(backend: Backend, intensity: float, progress: Progress) -> Modulator:
    from emochat.engine.extraction import build_and_cache_directions

    return backend.steering(build_and_cache_directions(backend, progress), intensity)
