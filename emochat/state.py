"""The persistent emotion state: each detector reading nudges it, it drifts back toward a
baseline between turns, and presets or manual edits set it outright.

The update, per turn, from the user's message (the bot's own steered reply would feed back):

    decayed = baseline + DECAY * (vector - baseline)        # half-life ~4.3 turns
    step    = RATE * confidence * (target - decayed)         # per axis, bounded to ±MAX_STEP,
                                                            # none where |target| < DEAD_ZONE
    vector  = clamp(decayed + step)

``target`` is the reading itself (``mirror``), its comforting counterpart (``soothe``), or there
is no update at all (``locked``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from emochat.detect import Reading
from emochat.emotion import AXES, N_AXES, EmotionVector
from emochat.errors import EmochatError

DECAY = 0.85
RATE = 0.5
MAX_STEP = 0.35
DEAD_ZONE = 0.08
POLICIES = ("mirror", "soothe", "locked")

_AXIS = {axis.positive: index for index, axis in enumerate(AXES)}


def soothing_target(reading: EmotionVector) -> EmotionVector:
    """Share the user's positive poles, meet each negative one gently with its counterpart
    (sadness with some joy, distrust with some trust, …), and answer distress with calm,
    courage and empathy in full."""
    values = [value if value > 0 else -0.5 * value for value in reading]
    distress = max([-value for value in reading if value < 0], default=0.0)
    fear = max(0.0, -reading[_AXIS["courage"]])
    values[_AXIS["calmness"]] = max(values[_AXIS["calmness"]], distress)
    values[_AXIS["empathy"]] = max(values[_AXIS["empathy"]], distress)
    values[_AXIS["courage"]] = max(values[_AXIS["courage"]], fear)
    # Surprise is not distress: mirror that axis as it is.
    values[_AXIS["expectation"]] = reading[_AXIS["expectation"]]
    return EmotionVector(tuple(values))


@dataclass
class EmotionState:
    vector: EmotionVector = field(default_factory=EmotionVector)
    baseline: EmotionVector = field(default_factory=EmotionVector)
    policy: str = "mirror"
    unlocked_policy: str = "mirror"  # what unlocking returns to

    def __post_init__(self) -> None:
        for policy in (self.policy, self.unlocked_policy):
            if policy not in POLICIES:
                choices = ", ".join(POLICIES)
                raise EmochatError(f"unknown policy {policy!r}; choose one of {choices}")

    @property
    def locked(self) -> bool:
        return self.policy == "locked"

    def set_locked(self, locked: bool) -> None:
        if locked and not self.locked:
            self.unlocked_policy = self.policy
            self.policy = "locked"
        elif not locked and self.locked:
            self.policy = self.unlocked_policy

    def set(self, vector: EmotionVector) -> None:
        """A preset or manual edit: takes effect at once, locked or not."""
        self.vector = vector

    def observe(self, reading: Reading) -> EmotionVector:
        """Fold one detector reading in (one turn) and return the new vector."""
        if self.locked:
            return self.vector
        target = reading.vector if self.policy == "mirror" else soothing_target(reading.vector)
        confidence = reading.confidence if math.isfinite(reading.confidence) else 0.0
        confidence = min(1.0, max(0.0, confidence))
        values = []
        for index in range(N_AXES):
            base = self.baseline[index]
            decayed = base + DECAY * (self.vector[index] - base)
            step = 0.0
            if abs(target[index]) >= DEAD_ZONE:
                step = RATE * confidence * (target[index] - decayed)
                step = max(-MAX_STEP, min(MAX_STEP, step))
            values.append(decayed + step)
        self.vector = EmotionVector(tuple(values))
        return self.vector

    def to_dict(self) -> dict[str, Any]:
        return {
            "vector": self.vector.to_list(),
            "baseline": self.baseline.to_list(),
            "policy": self.policy,
            "unlocked_policy": self.unlocked_policy,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmotionState:
        try:
            return cls(
                vector=EmotionVector.from_json(data["vector"]),
                baseline=EmotionVector.from_json(data.get("baseline", [0.0] * N_AXES)),
                policy=data.get("policy", "mirror"),
                unlocked_policy=data.get("unlocked_policy", "mirror"),
            )
        except (KeyError, TypeError) as error:
            raise EmochatError(f"not an emotion state: {error}") from error
