"""Steering gains that follow what the replies express: one multiplier per pole, bounded, by
which that pole's steering strength is scaled.

A pole that the read-back finds short of what was asked gets more strength from the next reply
on, and one that overshoots gets less (:meth:`PoleGains.after_reply`); within a reply, the axes
that the first sentence reads short of are raised for the rest of it (:meth:`PoleGains.boosted`).
Per pole rather than per axis: on the default model the negative poles (indifference, distrust,
boredom) are the ones that fall short, and their positive counterparts do not.

The gains are kept per model beside its directions (:class:`GainsFile`), tied to the directions
they were learned with (``EmotionDirections.fingerprint``): rebuilt directions start again
from 1.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from emochat.emotion import AXES, N_AXES, EmotionVector
from emochat.errors import EmochatError

GAIN_RANGE = (0.5, 2.0)
# An axis steered less than this is left alone: its reading is mostly other axes' spill.
STEERED = 0.25
# A steered pole has landed when the read-back reads it at least this share of the value asked.
LANDED_SHARE = 0.25
# Across turns: the gain moves by exp(RATE × shortfall) a reply.
RATE = 0.5
# Within a reply: an axis the first sentence reads short of gets this much more strength.
BOOST = 1.5
GAINS_FORMAT = 1


def _bounded(value: float) -> float:
    """Within the range, to 4 decimals: what is kept on disk is exactly what ran."""
    low, high = GAIN_RANGE
    return round(min(high, max(low, value)), 4)


def shortfalls(emotion: EmotionVector, expressed: Sequence[float]) -> dict[int, float]:
    """For each axis steered at least ``STEERED``: how far the reading falls short of landing
    (positive) or lands beyond it (negative), in the asked pole's direction."""
    result = {}
    for index, (asked, read) in enumerate(zip(emotion, expressed, strict=True)):
        if abs(asked) >= STEERED:
            result[index] = LANDED_SHARE * abs(asked) - math.copysign(1.0, asked) * read
    return result


@dataclass(frozen=True)
class PoleGains:
    """Two multipliers per axis, (negative pole, positive pole), each within ``GAIN_RANGE``."""

    values: tuple[tuple[float, float], ...] = field(default_factory=lambda: ((1.0, 1.0),) * N_AXES)

    def __post_init__(self) -> None:
        if len(self.values) != N_AXES or any(len(pair) != 2 for pair in self.values):
            raise EmochatError(f"gains need a pair for each of the {N_AXES} axes")
        low, high = GAIN_RANGE
        if not all(low <= value <= high for pair in self.values for value in pair):
            raise EmochatError(f"gains must lie within {low}–{high}")

    def for_emotion(self, emotion: EmotionVector) -> tuple[float, ...]:
        """Each axis's multiplier for the pole ``emotion`` leans to (1 where it is 0)."""
        return tuple(
            1.0 if value == 0 else pair[value > 0]
            for value, pair in zip(emotion, self.values, strict=True)
        )

    def _with(self, changes: dict[int, float], emotion: EmotionVector) -> PoleGains:
        pairs = [list(pair) for pair in self.values]
        for index, factor in changes.items():
            side = int(emotion[index] > 0)
            pairs[index][side] = _bounded(pairs[index][side] * factor)
        return PoleGains(tuple((low, high) for low, high in pairs))

    def after_reply(self, emotion: EmotionVector, expressed: Sequence[float]) -> PoleGains:
        """The gains for the next reply, given what this one, steered by ``emotion``, read
        back as: each steered pole's gain moves toward what it needed to land."""
        changes = {
            index: math.exp(RATE * shortfall)
            for index, shortfall in shortfalls(emotion, expressed).items()
        }
        return self._with(changes, emotion)

    def boosted(self, emotion: EmotionVector, expressed: Sequence[float]) -> PoleGains | None:
        """The gains for the rest of a reply whose first sentence read as ``expressed``: the
        steered poles it fell short of get ``BOOST`` more; None where none fell short."""
        short = [index for index, gap in shortfalls(emotion, expressed).items() if gap > 0]
        if not short:
            return None
        return self._with(dict.fromkeys(short, BOOST), emotion)

    def to_dict(self) -> dict[str, float]:
        result = {}
        for axis, (negative, positive) in zip(AXES, self.values, strict=True):
            result[axis.negative] = negative
            result[axis.positive] = positive
        return result

    @classmethod
    def from_dict(cls, data: object) -> PoleGains:
        if not isinstance(data, dict):
            raise EmochatError("gains must be an object of pole: multiplier")
        try:
            pairs = tuple(
                (float(data.get(axis.negative, 1.0)), float(data.get(axis.positive, 1.0)))
                for axis in AXES
            )
        except (TypeError, ValueError) as error:
            raise EmochatError(f"gains must be numbers: {error}") from error
        return cls(pairs)


class GainsFile:
    """One model's learned gains, at ``path``, valid for the directions whose fingerprint is
    ``identity``."""

    def __init__(self, path: Path, identity: str) -> None:
        self.path = path
        self.identity = identity

    def load(self) -> PoleGains:
        """The kept gains; fresh ones where none are kept, they were learned with other
        directions, or the file is unreadable (it is only a cache of what replies showed)."""
        try:
            data = json.loads(self.path.read_text("utf-8"))
            if data.get("format") != GAINS_FORMAT or data.get("directions") != self.identity:
                return PoleGains()
            return PoleGains.from_dict(data.get("gains"))
        except (OSError, ValueError, AttributeError, EmochatError):
            return PoleGains()

    def save(self, gains: PoleGains) -> None:
        """Write atomically; a full disk costs only the update (the chat goes on)."""
        record = {"format": GAINS_FORMAT, "directions": self.identity, "gains": gains.to_dict()}
        temporary = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(record, indent=1) + "\n", "utf-8")
            os.replace(temporary, self.path)
        except OSError as error:
            raise EmochatError(f"cannot keep the steering gains in {self.path}: {error}") from error
