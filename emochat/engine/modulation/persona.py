"""Persona-prompt modulation ("Face Your Emotions"): the emotional state, in words, in the
system prompt. Works with any model, including ones with no steering vectors."""

from __future__ import annotations

from emochat.emotion import AXES, POLE_ADJECTIVES, EmotionVector
from emochat.engine.modulation.base import Modulator

# (lower bound of |value|, adverb); values under the first bound are not mentioned.
DEGREES = ((0.85, "extremely"), (0.6, "very"), (0.35, "quite"), (0.15, "slightly"))


def describe_feelings(emotion: EmotionVector) -> list[str]:
    """Phrases such as 'very joyful', strongest first."""
    phrases = []
    for index in sorted(range(len(AXES)), key=lambda i: -abs(emotion[i])):
        value = emotion[index]
        adverb = next((word for bound, word in DEGREES if abs(value) >= bound), None)
        if adverb is None:
            break
        pole = AXES[index].positive if value > 0 else AXES[index].negative
        phrases.append(f"{adverb} {POLE_ADJECTIVES[pole]}")
    return phrases


def persona_prompt(emotion: EmotionVector) -> str | None:
    phrases = describe_feelings(emotion)
    if not phrases:
        return None
    feelings = phrases[0]
    if len(phrases) > 1:
        feelings = ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return (
        f"Right now you feel {feelings}. Let these feelings show in your tone and word choice, "
        "as a person would, while still answering what you are asked."
    )


class PersonaModulator(Modulator):
    """Leaves the model alone and speaks through the system prompt instead."""

    name = "prompt"

    def system_prompt(self, emotion: EmotionVector) -> str | None:
        return persona_prompt(emotion)
