"""Activation steering on the transformers backend: forward hooks add the emotion's offsets to
the residual stream after each decoder block in the band, at the positions of the reply.

Only the reply is steered: the prompt is read unsteered, so the model still knows what it was
asked (steering the prompt too moved the mood a little more but cost a fifth of the on-topic
score, see benchmarks/steering_eval.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from emochat.emotion import EmotionVector
from emochat.engine.directions import EmotionDirections
from emochat.engine.layers import block_hidden, find_decoder_layers
from emochat.engine.modulation.base import Modulator
from emochat.engine.modulation.loop import NO_GAINS
from emochat.errors import EmochatError


class SteeringModulator(Modulator):
    """Adds the emotion's offsets to the output of each decoder block in the band, at the
    positions of the reply."""

    name = "steer"

    def __init__(self, directions: EmotionDirections, intensity: float = 1.0) -> None:
        self.directions = directions
        self.intensity = intensity
        self._emotion = EmotionVector()
        self._gains: Sequence[float] = NO_GAINS
        self._offsets: list[Any] = [None] * directions.n_layers
        self._handles: list[Any] = []

    def attach(self, model: Any) -> None:
        layers = find_decoder_layers(model)
        if len(layers) != self.directions.n_layers:
            raise EmochatError("these emotion vectors were built for a different model")
        for index, layer in enumerate(layers):
            self._handles.append(layer.register_forward_hook(self._hook(index)))

    def _hook(self, index: int) -> Callable[..., Any]:
        def add_offset(module: Any, args: Any, output: Any) -> Any:
            offset = self._offsets[index]
            if offset is None:
                return None  # leave the output object untouched: bit-identical to no hook
            hidden = block_hidden(output)
            if offset.device != hidden.device or offset.dtype != hidden.dtype:
                offset = self._offsets[index] = offset.to(hidden.device, hidden.dtype)
            steered = hidden.clone()
            # Only the reply is steered: the prompt is read as it is, and its last position (the
            # one that chooses the reply's first token) is where steering starts. Replies are
            # then one position per pass.
            steered[:, -1] += offset
            if isinstance(output, tuple):
                return (steered, *output[1:])
            return steered

        return add_offset

    def set_emotion(self, emotion: EmotionVector) -> None:
        import torch

        self._emotion = emotion
        if emotion.is_neutral() or self.intensity == 0:
            self._offsets = [None] * self.directions.n_layers
            return
        offsets = self.directions.offsets(emotion, self.intensity, self._gains)
        self._offsets = [torch.from_numpy(row) if row.any() else None for row in offsets]

    def set_gains(self, gains: Sequence[float]) -> None:
        # the next position's hooks read the new offsets: a reply's rest changes mid-way
        if tuple(gains) == tuple(self._gains):
            return  # each reply starts by resetting them: nothing to compute again
        self._gains = gains
        self.set_emotion(self._emotion)

    def set_intensity(self, intensity: float) -> bool:
        self.intensity = intensity
        return True

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._offsets = [None] * self.directions.n_layers
