"""Steering on a server that takes steering vectors with each request: EasySteer, on vLLM
(ZJU-REAL/EasySteer, its OpenAI-compatible server's ``steering`` field). The vectors are files
on the server, one per axis, as ``emochat vectors export --out DIR`` writes them (llama.cpp's
control-vector GGUF, which EasySteer reads): each request names the axes the mood uses, each
with its value times the intensity as the scale, applied from the prompt's last position on
(the one that chooses the first token) through every generated token, as emochat steers in
process."""

from __future__ import annotations

from typing import Any

from emochat.emotion import AXES, EmotionVector
from emochat.engine.modulation.base import Modulator

# Where EasySteer applies a vector: the last prompt position and the whole generation
APPLY = {"prompt_positions": [-1], "generation": "all"}


def easysteer_fields(vectors_dir: str, emotion: EmotionVector, intensity: float) -> dict[str, Any]:
    """The request fields that steer ``emotion`` on EasySteer (none for a neutral mood)."""
    vectors = [
        {
            "source": f"{vectors_dir.rstrip('/')}/{axis.name}.gguf",
            "scale": round(value * intensity, 6),
            "normalize": False,
            "apply": APPLY,
        }
        for axis, value in zip(AXES, emotion, strict=True)
        if value != 0 and intensity != 0
    ]
    return {"steering": {"vectors": vectors}} if vectors else {}


class EasySteerModulator(Modulator):
    name = "steer"

    def __init__(self, vectors_dir: str, intensity: float = 1.0) -> None:
        self.vectors_dir = vectors_dir
        self.intensity = intensity
        self._backend: Any = None

    def attach(self, model: Any) -> None:
        self._backend = model  # the server backend: what it sends is set here

    def set_emotion(self, emotion: EmotionVector) -> None:
        if self._backend is not None:
            fields = easysteer_fields(self.vectors_dir, emotion, self.intensity)
            self._backend.request_fields = fields

    def set_intensity(self, intensity: float) -> bool:
        self.intensity = intensity
        return True

    def detach(self) -> None:
        if self._backend is not None:
            self._backend.request_fields = {}
        self._backend = None
