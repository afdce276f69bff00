"""The loop closed around steering: what the replies express, read back, sets how strongly the
next ones are steered.

- within a reply: when its first sentence is finished, it is read; the steered poles it falls
  short of are raised for the rest of the reply (:meth:`PoleGains.boosted`);
- across replies: each reply's read-back moves the model's per-pole gains toward what each pole
  needed (:meth:`PoleGains.after_reply`), kept per model (:class:`GainsFile`).

Both are deterministic given the reply, so a seeded reply stays repeatable; a loop that does not
``learn`` leaves the kept gains as they were (a seeded ``say``: run twice, the same reply).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from emochat.emotion import EmotionVector
from emochat.engine.modulation.gains import GainsFile, PoleGains

LOOP_CHOICES = ("off", "within", "across", "both")
# A first sentence needs this many words before its end counts (not "Oh." or "1.").
MIN_SENTENCE_WORDS = 4
_SENTENCE_END = re.compile(r"[.!?…](?=\s)|\n")

# Reads a text: the 8 axis values it expresses
Read = Callable[[str], Sequence[float]]


def first_sentence(text: str) -> str | None:
    """The text up to the end of its first sentence of a few words, or None while there is none
    yet (an end is only sure once the next character is a space)."""
    for match in _SENTENCE_END.finditer(text):
        sentence = text[: match.end()].strip()
        if len(sentence.split()) >= MIN_SENTENCE_WORDS:
            return sentence
    return None


def finished_sentences(text: str) -> int:
    """How many sentences of ``text`` are surely finished (their end followed by a space)."""
    return len(_SENTENCE_END.findall(text))


@dataclass(frozen=True)
class ReplySteering:
    """How one reply is steered by the loop: the gains it starts with, and what decides the
    gains for the rest of it once its first sentence is written (None: no change mid-reply)."""

    gains: PoleGains
    after_first_sentence: Callable[[str], PoleGains | None] | None = None


class SteeringLoop:
    """One model's loop: ``read`` is the detector; ``within`` turns on the mid-reply boost;
    ``kept`` holds the across-reply gains (None: no across-reply gains); ``learn`` False uses
    the kept gains without moving them."""

    def __init__(
        self, read: Read, within: bool, kept: GainsFile | None, learn: bool = True
    ) -> None:
        self.read = read
        self._within = within
        self._kept = kept
        self._learn = learn
        self.gains = kept.load() if kept is not None else PoleGains()

    def for_reply(self, emotion: EmotionVector) -> ReplySteering:
        if not self._within or emotion.is_neutral():
            return ReplySteering(self.gains)
        start = self.gains

        def after_first_sentence(sentence: str) -> PoleGains | None:
            return start.boosted(emotion, self.read(sentence))

        return ReplySteering(start, after_first_sentence)

    def learn(self, emotion: EmotionVector, expressed: Sequence[float]) -> None:
        """After a reply steered by ``emotion`` read back as ``expressed``: move and keep the
        gains (an unwritable cache raises EmochatError; the gains still move for this run)."""
        if self._kept is None or not self._learn or emotion.is_neutral():
            return
        moved = self.gains.after_reply(emotion, expressed)
        if moved == self.gains:
            return
        self.gains = moved
        self._kept.save(moved)
