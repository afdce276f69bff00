"""The loop closed around steering, within a reply: once the reply's first sentence is written,
the detector reads it, and the steered axes it falls short of are steered harder for the rest.

Chosen by measurement (benchmarks/steering_eval.py, README "Measured quality"): against per-pole
gains learned across replies, and both together, this moved the mood most and kept replies on
topic best. It is deterministic given the reply, so a seeded reply stays repeatable, and a
neutral mood is never read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from emochat.emotion import N_AXES, EmotionVector

# Each axis's strength multiplier: steering as calibrated
NO_GAINS: tuple[float, ...] = (1.0,) * N_AXES
# An axis steered less than this is left alone: its reading is mostly other axes' spill.
STEERED = 0.25
# A steered axis has landed when the sentence reads at least this share of the value asked.
LANDED_SHARE = 0.25
# An axis that has not landed is steered this much harder for the rest of the reply (measured:
# 1.5x everywhere, intensity 1.5, costs a tenth of the on-topic score; this, spent only where
# a reply falls short, costs a thirtieth).
BOOST = 1.5
# A first sentence needs this many words before its end counts (not "Oh." or "1.").
MIN_SENTENCE_WORDS = 4
_SENTENCE_END = re.compile(r"[.!?…](?=\s)|\n")

# Reads a text: the 8 axis values it expresses
Read = Callable[[str], Sequence[float]]
# Given the reply's first sentence: each axis's multiplier for the rest, or None for no change
AfterFirstSentence = Callable[[str], "tuple[float, ...] | None"]


class SentenceEnds:
    """Where the sentences of a text end, as the text grows piece by piece (a reply as it
    streams): each piece is scanned once, not the whole text again, since this runs per token.
    An end is only sure once the next character is a space, so a final end waits for it."""

    def __init__(self, text: str = "") -> None:
        self.text = ""
        self.ends: list[int] = []  # the offset just past each sentence end
        self._scanned = 0  # everything before this is settled
        self.add(text)

    def add(self, piece: str) -> int:
        """Append ``piece``; how many sentence ends it made sure."""
        self.text += piece
        before = len(self.ends)
        for match in _SENTENCE_END.finditer(self.text, self._scanned):
            self.ends.append(match.end())
            self._scanned = match.end()
        # only the last character can still become an end (when a space follows it)
        self._scanned = max(self._scanned, len(self.text) - 1)
        return len(self.ends) - before

    def first_sentence(self) -> str | None:
        """The text up to the end of its first sentence of a few words, or None while there is
        none yet."""
        for end in self.ends:
            sentence = self.text[:end].strip()
            if len(sentence.split()) >= MIN_SENTENCE_WORDS:
                return sentence
        return None


def boosted_gains(emotion: EmotionVector, expressed: Sequence[float]) -> tuple[float, ...] | None:
    """The gains for the rest of a reply steered by ``emotion`` whose first sentence read as
    ``expressed``: ``BOOST`` for each axis steered at least ``STEERED`` that read short of
    ``LANDED_SHARE`` of the value asked (in the asked pole's direction); None where none did."""
    short = [
        abs(asked) >= STEERED and math.copysign(1.0, asked) * read < LANDED_SHARE * abs(asked)
        for asked, read in zip(emotion, expressed, strict=True)
    ]
    if not any(short):
        return None
    return tuple(BOOST if fell_short else 1.0 for fell_short in short)


@dataclass(frozen=True)
class SteeringLoop:
    """The within-reply loop for one detector: ``read`` gives a text's 8 axis values."""

    read: Read

    def for_reply(self, emotion: EmotionVector) -> AfterFirstSentence | None:
        """What the backend calls with the reply's first sentence (None: a neutral mood, which
        is never read)."""
        if emotion.is_neutral():
            return None

        def after_first_sentence(sentence: str) -> tuple[float, ...] | None:
            return boosted_gains(emotion, self.read(sentence))

        return after_first_sentence
