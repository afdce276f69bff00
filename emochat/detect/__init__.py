"""Detectors read a text's emotion: eight values in [-1, 1] (axis order as everywhere) and a
confidence in [0, 1]. They never import Textual; the app and the CLI pick one by name."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from emochat.detect.types import Detector, Reading
from emochat.emotion import EmotionVector
from emochat.errors import EmochatError
from emochat.progress import Progress, no_progress

if TYPE_CHECKING:
    from emochat.engine.backends.transformers_backend import TransformersBackend

__all__ = [
    "DETECTOR_CHOICES",
    "BackgroundDetector",
    "Detector",
    "Reading",
    "load_detector",
    "read_many",
]

DETECTOR_CHOICES = ("minilm", "vader", "probe")


def read_many(detector: Detector, texts: list[str]) -> list[Reading]:
    """Read a batch in one go where the detector can (MiniLM batches), else one by one."""
    batched = getattr(detector, "read_many", None)
    return batched(texts) if batched else [detector.read(text) for text in texts]


def load_detector(
    name: str, backend: TransformersBackend | None = None, progress: Progress = no_progress
) -> Detector:
    """The detector called ``name``; ``probe`` reads the chat model's own hidden states and so
    needs the transformers backend that runs it (its modulation is switched off while reading;
    the runtime decides which backend a probe gets)."""
    if name == "vader":
        from emochat.detect.vader import VaderDetector

        return VaderDetector()
    if name == "minilm":
        return _minilm(progress)
    if name == "probe":
        if backend is None:
            raise EmochatError(
                "the probe detector needs the chat model on the transformers backend"
            )
        from emochat.detect.probe import ProbeDetector

        return ProbeDetector(backend.loaded, guard=backend.unmodulated)
    raise EmochatError(f"unknown detector {name!r}; choose one of {', '.join(DETECTOR_CHOICES)}")


def _minilm(progress: Progress) -> Detector:
    """The fine-tuned MiniLM on llama.cpp (no torch: a message in a few ms, a fraction of the
    memory); on torch where llama-cpp-python is missing or cannot run it, said once."""
    from emochat.engine.backends import llama_cpp_installed

    reason = "llama-cpp-python is not installed"
    if llama_cpp_installed():
        from emochat.detect.llamacpp_detector import LlamaCppDetector

        try:
            return LlamaCppDetector()
        except EmochatError as error:
            reason = str(error)
    from emochat.detect.tuned import TunedDetector

    progress(f"the detector runs on torch, slower to start ({reason})")
    return TunedDetector()


class BackgroundDetector:
    """A detector that loads in a thread (while the chat model loads) and is waited for only
    when the first message is read. One that fails to load is reported once through ``warn``;
    after that it reads nothing, so the mood moves only by hand."""

    def __init__(
        self, name: str, load: Callable[[], Detector], warn: Callable[[str], None]
    ) -> None:
        self.name = name
        self._warn = warn
        self._detector: Detector | None = None
        self._error: str | None = None
        self._thread = threading.Thread(
            target=self._load, args=(load,), name=f"emochat-{name}", daemon=True
        )
        self._thread.start()

    def _load(self, load: Callable[[], Detector]) -> None:
        try:
            self._detector = load()
        except Exception as error:
            self._error = str(error) if isinstance(error, EmochatError) else repr(error)

    def read(self, text: str) -> Reading:
        self._thread.join()
        if self._detector is not None:
            return self._detector.read(text)
        if self._error is not None:
            self._warn(
                f"the {self.name} detector could not load ({self._error}); "
                "the mood now moves only by hand"
            )
            self._error = None
        return Reading(EmotionVector(), 0.0)
