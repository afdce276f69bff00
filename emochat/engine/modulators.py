"""How an emotion vector reaches the model. The engine calls a modulator around every reply;
the steering and persona modulators (emochat.engine.steering, emochat.engine.persona) fill
this interface in, and :class:`NoModulation` leaves the model alone."""

from __future__ import annotations

from typing import Any, Protocol

from emochat.emotion import EmotionVector

# auto = embed for checkpoints trained with an emotion projection, else steer.
MODULATION_CHOICES = ("auto", "steer", "embed", "prompt", "both", "off")


class Modulator(Protocol):
    name: str

    def attach(self, model: Any) -> None:
        """Called once after loading: install whatever hooks the modulator needs."""

    def set_emotion(self, emotion: EmotionVector) -> None:
        """Called before each reply with the vector that reply should carry."""

    def system_prompt(self, emotion: EmotionVector) -> str | None:
        """Text to add to the system prompt for this reply, if the modulator speaks in words."""

    def detach(self) -> None:
        """Remove every hook, leaving the model as it was loaded."""


class NoModulation:
    name = "off"

    def attach(self, model: Any) -> None:
        pass

    def set_emotion(self, emotion: EmotionVector) -> None:
        pass

    def system_prompt(self, emotion: EmotionVector) -> str | None:
        return None

    def detach(self) -> None:
        pass
