"""Representation reading: the chat model's own hidden states, mean-pooled over the message,
projected on the steering directions of each axis (the same directions that steer it).

Calibrated against the shipped neutral questions: a reading is tanh of the distance from their
mean projection in units of three of their standard deviations. Reading happens with steering
switched off (``guard``), so the bot's own mood does not colour what it reads.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from emochat.detect.types import Reading
from emochat.emotion import EmotionVector
from emochat.engine.directions import EmotionDirections, find_directions
from emochat.engine.framings import load_prompt_set
from emochat.engine.layers import block_hidden, find_decoder_layers
from emochat.engine.loading import LoadedModel
from emochat.errors import EmochatError


class ProbeDetector:
    name = "probe"

    def __init__(
        self,
        loaded: LoadedModel,
        directions: EmotionDirections | None = None,
        guard: Callable[[], AbstractContextManager[Any]] = nullcontext,
    ) -> None:
        import torch

        directions = directions or find_directions(loaded.info)
        if directions is None:
            raise EmochatError(
                f"the probe detector needs emotion vectors for {loaded.info.name}; "
                "run `emochat vectors build`"
            )
        self._loaded = loaded
        self._guard = guard
        self._layers = find_decoder_layers(loaded.model)
        start, stop = directions.band
        band = torch.from_numpy(directions.values[:, start:stop])
        self._band = (start, stop)
        self._units = band / band.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        baseline = torch.stack([self._projections(text) for text in load_prompt_set()["questions"]])
        self._mean = baseline.mean(0)
        self._spread = 3 * baseline.std(0).clamp_min(1e-6)

    def _projections(self, text: str) -> Any:
        """Mean over band layers of (mean-pooled block output · unit direction), per axis."""
        import torch

        model, tokenizer = self._loaded.model, self._loaded.tokenizer
        start, stop = self._band
        pooled: list[Any] = []

        def record(module: Any, args: Any, output: Any) -> None:
            hidden = block_hidden(output)
            # Skip the first position: it soaks up attention and has an outsized norm.
            tokens = hidden[0, 1:] if hidden.shape[1] > 1 else hidden[0]
            pooled.append(tokens.float().mean(0).cpu())

        handles = [layer.register_forward_hook(record) for layer in self._layers[start:stop]]
        try:
            ids = tokenizer(text, return_tensors="pt", truncation=True, max_length=256)
            device = next(model.parameters()).device
            with torch.inference_mode():
                model(input_ids=ids["input_ids"].to(device))
        finally:
            for handle in handles:
                handle.remove()
        states = torch.stack(pooled)  # [band, hidden]
        return torch.einsum("klh,lh->k", self._units, states) / states.shape[0]

    def read(self, text: str) -> Reading:
        import torch

        with self._guard():
            projections = self._projections(text)
        values = torch.tanh((projections - self._mean) / self._spread)
        vector = EmotionVector(tuple(values.tolist()))
        return Reading(vector, confidence=min(1.0, max(abs(value) for value in vector)))
