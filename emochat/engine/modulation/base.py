"""What every modulator is: the interface the backends call around each reply, with a no-op
default for each call, so a modulator writes only what it does and no caller tests types.
:class:`NoModulation` leaves the model alone; :class:`CombinedModulator` runs several."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any, Protocol

from emochat.emotion import EmotionVector


class Modulator(Protocol):
    """Subclass it to inherit the no-op defaults."""

    name: str

    def attach(self, model: Any) -> None:
        """Called once after loading: install whatever hooks the modulator needs (on the torch
        model, or the llama.cpp context)."""

    def set_emotion(self, emotion: EmotionVector) -> None:
        """Called before each reply with the vector that reply should carry."""

    def set_gains(self, gains: Sequence[float]) -> None:
        """Each axis's strength multiplier (the steering loop's), from now on: before a reply,
        or between two of its tokens. Only steering has a strength to scale."""

    def system_prompt(self, emotion: EmotionVector) -> str | None:
        """Text to add to the system prompt for this reply, if the modulator speaks in words."""
        return None

    def set_intensity(self, intensity: float) -> bool:
        """How strongly to steer from the next reply on; False where nothing here steers."""
        return False

    @contextmanager
    def prompt_phase(self) -> Iterator[None]:
        """Held while the backend reads the prompt: only the reply is steered, so a modulator
        that cannot tell prompt from reply positions by itself pauses here."""
        yield

    def detach(self) -> None:
        """Remove every hook, leaving the model as it was loaded."""


class NoModulation(Modulator):
    name = "off"


class CombinedModulator(Modulator):
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

    def set_gains(self, gains: Sequence[float]) -> None:
        for part in self.parts:
            part.set_gains(gains)

    def system_prompt(self, emotion: EmotionVector) -> str | None:
        texts = [text for part in self.parts if (text := part.system_prompt(emotion))]
        return "\n\n".join(texts) or None

    def set_intensity(self, intensity: float) -> bool:
        changed = [part.set_intensity(intensity) for part in self.parts]  # every part, no short cut
        return any(changed)

    @contextmanager
    def prompt_phase(self) -> Iterator[None]:
        with ExitStack() as stack:
            for part in self.parts:
                stack.enter_context(part.prompt_phase())
            yield

    def detach(self) -> None:
        for part in self.parts:
            part.detach()
