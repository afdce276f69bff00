"""What every detector returns and promises; the package face re-exports these, so the
detectors import them from here, never from the face that imports them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from emochat.emotion import EmotionVector


@dataclass(frozen=True)
class Reading:
    vector: EmotionVector
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {"vector": self.vector.to_list(), "confidence": round(self.confidence, 4)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reading:
        return cls(EmotionVector.from_json(data["vector"]), float(data["confidence"]))


class Detector(Protocol):
    name: str

    def read(self, text: str) -> Reading: ...
