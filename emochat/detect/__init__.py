"""Detectors read a text's emotion: eight values in [-1, 1] (axis order as everywhere) and a
confidence in [0, 1]. They never import Textual; the app and the CLI pick one by name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from emochat.emotion import EmotionVector
from emochat.errors import EmochatError

DETECTOR_CHOICES = ("minilm", "vader", "probe")


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


def read_many(detector: Detector, texts: list[str]) -> list[Reading]:
    """Read a batch in one go where the detector can (MiniLM batches), else one by one."""
    batched = getattr(detector, "read_many", None)
    return batched(texts) if batched else [detector.read(text) for text in texts]


def load_detector(name: str, loaded_model: Any = None, guard: Any = None) -> Detector:
    """The detector called ``name``; ``probe`` reads the chat model's own hidden states and so
    needs the loaded chat model (and ``guard``, a context manager factory that switches its
    modulation off while reading, such as ``Engine.unmodulated``)."""
    if name == "vader":
        from emochat.detect.vader import VaderDetector

        return VaderDetector()
    if name == "minilm":
        from emochat.detect.embedding import MiniLMDetector

        return MiniLMDetector()
    if name == "probe":
        if loaded_model is None:
            raise EmochatError("the probe detector needs the chat model loaded")
        from emochat.detect.probe import ProbeDetector

        if guard is None:
            return ProbeDetector(loaded_model)
        return ProbeDetector(loaded_model, guard=guard)
    raise EmochatError(f"unknown detector {name!r}; choose one of {', '.join(DETECTOR_CHOICES)}")
