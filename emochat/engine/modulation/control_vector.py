"""Activation steering on the llama.cpp backend: the emotion's offsets applied live as the
context's control vector.

llama.cpp's layout: one float32 row of ``n_embd`` per decoder block from block 1 to
n_layers - 1, added to that block's output after its residual add (the point where emochat's
forward hooks add them on the transformers backend); block 0 is never steered there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from emochat.emotion import EmotionVector
from emochat.engine.directions import EmotionDirections
from emochat.engine.modulation.base import Modulator
from emochat.engine.modulation.loop import NO_GAINS
from emochat.errors import EmochatError


class ControlVectorModulator(Modulator):
    """Steers a llama.cpp context: the emotion's offsets become its control vector, set again
    whenever the emotion changes (a fraction of a millisecond); neutral clears it. A control
    vector acts on every position it sees, so it pauses while the prompt is read
    (:meth:`prompt_phase`): as with the forward hooks, only the reply is steered."""

    name = "steer"

    def __init__(self, directions: EmotionDirections, intensity: float = 1.0) -> None:
        if directions.band[0] < 1:
            raise EmochatError("llama.cpp cannot steer the first decoder block")
        self.directions = directions
        self.intensity = intensity
        self._emotion = EmotionVector()
        self._gains: Sequence[float] = NO_GAINS
        self._llama: Any = None
        self._active: tuple[Any, int, int] | None = None  # what the context holds now

    def attach(self, llama: Any) -> None:
        import llama_cpp

        shape = (int(llama_cpp.llama_model_n_layer(llama.model)), int(llama.n_embd()))
        if shape != (self.directions.n_layers, self.directions.hidden_size):
            raise EmochatError("these emotion vectors were built for a different model")
        self._llama = llama

    def _apply(self, data: Any, start: int, stop: int) -> None:
        import ctypes

        import llama_cpp

        pointer = None if data is None else data.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        size = 0 if data is None else int(data.size)
        status = llama_cpp.llama_set_adapter_cvec(
            self._llama.ctx, pointer, size, self.directions.hidden_size, start, stop
        )
        if status != 0:
            raise EmochatError(f"llama.cpp refused the control vector (status {status})")

    def _set(self, active: tuple[Any, int, int] | None) -> None:
        self._active = active
        self._apply(*(active or (None, -1, -1)))

    def set_emotion(self, emotion: EmotionVector) -> None:
        import numpy as np

        self._emotion = emotion
        if self._llama is None:
            return
        if emotion.is_neutral() or self.intensity == 0:
            self._set(None)
            return
        offsets = self.directions.offsets(emotion, self.intensity, self._gains)
        active = np.flatnonzero(np.abs(offsets).sum(axis=-1))
        if active.size == 0:
            self._set(None)
            return
        # Only the band's blocks get an addition at all: outside it llama.cpp adds nothing.
        self._set((np.ascontiguousarray(offsets[1:]), int(active[0]), int(active[-1])))

    def set_gains(self, gains: Sequence[float]) -> None:
        # between two tokens of a reply, too: the next token is evaluated with the new vector
        if tuple(gains) == tuple(self._gains):
            return  # each reply starts by resetting them: nothing to compute again
        self._gains = gains
        self.set_emotion(self._emotion)

    def set_intensity(self, intensity: float) -> bool:
        self.intensity = intensity
        return True

    @contextmanager
    def prompt_phase(self) -> Iterator[None]:
        """No control vector for a moment; the emotion's comes back after."""
        if self._llama is None or self._active is None:
            yield
            return
        self._apply(None, -1, -1)
        try:
            yield
        finally:
            self._apply(*self._active)

    def detach(self) -> None:
        if self._llama is not None:
            self._set(None)
        self._llama = None
