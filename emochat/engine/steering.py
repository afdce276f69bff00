"""Activation steering: one direction per emotion axis per decoder layer, added to the residual
stream inside a band of layers while the model writes its reply.

Directions are the mean difference of decoder-block outputs between contrast pairs that hold the
topic fixed: the same question, answered with a framing sentence worded alike for the two poles
of an axis, read over the framing's tokens. Only the reply is steered: the prompt is read
unsteered, so the model still knows what it was asked (steering the prompt too moved the mood a
little more but cost a fifth of the on-topic score, see benchmarks/steering_eval.py). Strength
is relative to the residual-stream norm at each layer, so one ``intensity`` means about the same
on models of different sizes, and the total added norm is capped so mixes stay readable."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from emochat import paths
from emochat.emotion import AXES, N_AXES, EmotionVector
from emochat.engine.loading import LoadedModel, ModelInfo
from emochat.engine.prompt import render_prompt
from emochat.errors import EmochatError

FORMAT_VERSION = 1
VECTORS_FILE = "emotion_vectors"
# At |e| = 1 and intensity 1 an axis adds this fraction of the residual norm, averaged over the
# band. On the default model the raw JOY−SADNESS difference is 0.04 of the norm there; 0.03
# already turned replies sad or thrilled and 0.06 made them poetic, so 0.04 it is.
TARGET_RELATIVE_STRENGTH = 0.04
# However the axes mix, a layer never gets more than this fraction of its residual norm added.
MAX_RELATIVE_NORM = 0.08

Progress = Callable[[str], None]


def _silent(_message: str) -> None:
    pass


def find_decoder_layers(model: Any) -> Any:
    """The ``ModuleList`` of decoder blocks, for plain, PEFT-wrapped and quantized models alike:
    the list whose length is the configured layer count (the name decides ties)."""
    import torch

    config = model.config
    if hasattr(config, "get_text_config"):
        config = config.get_text_config()
    count = int(config.num_hidden_layers)
    candidates = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.ModuleList) and len(module) == count
    ]
    if not candidates:
        raise EmochatError("cannot find the decoder layers of this model to steer")
    candidates.sort(key=lambda item: (not item[0].endswith(("layers", ".h", "blocks")), item[0]))
    return candidates[0][1]


def default_band(n_layers: int) -> tuple[int, int]:
    """The middle third of the layers: early blocks barely act, late ones break the text."""
    return n_layers // 3, max(n_layers // 3 + 1, (2 * n_layers) // 3)


@dataclass
class EmotionDirections:
    """Per-axis, per-layer steering directions for one model, and how to scale them.

    Plain numpy, so the llama.cpp backend steers without importing torch."""

    directions: Any  # float32 array [N_AXES, n_layers, hidden]
    residual_norms: Any  # float32 array [n_layers]
    band: tuple[int, int]  # decoder blocks [start, stop) that get steered
    scales: list[float]  # per axis: multiplies the raw direction at |e| = 1, intensity = 1
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        return int(self.directions.shape[1])

    @property
    def hidden_size(self) -> int:
        return int(self.directions.shape[2])

    def offsets(self, emotion: EmotionVector, intensity: float = 1.0) -> Any:
        """The vector added after each decoder block, float32 [n_layers, hidden] (zero outside
        the band)."""
        import numpy as np

        weights = np.array(
            [value * scale * intensity for value, scale in zip(emotion, self.scales, strict=True)],
            dtype=np.float32,
        )
        offsets = np.einsum("k,klh->lh", weights, self.directions)
        start, stop = self.band
        offsets[:start] = 0
        offsets[stop:] = 0
        limits = MAX_RELATIVE_NORM * self.residual_norms
        norms = np.linalg.norm(offsets, axis=-1)
        shrink = np.where(norms > limits, limits / np.maximum(norms, 1e-12), 1.0)
        return (offsets * shrink[:, None]).astype(np.float32)

    def save(self, folder: Path) -> Path:
        import numpy as np
        from safetensors.numpy import save_file

        folder.mkdir(parents=True, exist_ok=True)
        tensors = {
            "directions": np.ascontiguousarray(self.directions),
            "residual_norms": np.ascontiguousarray(self.residual_norms),
        }
        save_file(tensors, str(folder / f"{VECTORS_FILE}.safetensors"))
        description = {
            "format": FORMAT_VERSION,
            "axes": [axis.name for axis in AXES],
            "band": list(self.band),
            "scales": self.scales,
            **self.metadata,
        }
        (folder / f"{VECTORS_FILE}.json").write_text(json.dumps(description, indent=2) + "\n")
        return folder

    @classmethod
    def load(cls, folder: Path) -> EmotionDirections:
        import numpy as np
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            description = json.loads((folder / f"{VECTORS_FILE}.json").read_text())
            tensors = load_file(str(folder / f"{VECTORS_FILE}.safetensors"))
            directions = tensors["directions"].astype(np.float32)
            residual_norms = tensors["residual_norms"].astype(np.float32)
        except (OSError, ValueError, KeyError, SafetensorError) as error:
            raise EmochatError(f"cannot read emotion vectors in {folder}: {error}") from error
        if description.get("format") != FORMAT_VERSION:
            raise EmochatError(f"{folder}: unsupported emotion-vector format")
        if directions.shape[0] != N_AXES:
            raise EmochatError(f"{folder}: expected {N_AXES} axes, got {directions.shape[0]}")
        metadata = {
            key: value
            for key, value in description.items()
            if key not in ("format", "axes", "band", "scales")
        }
        return cls(
            directions=directions,
            residual_norms=residual_norms,
            band=(int(description["band"][0]), int(description["band"][1])),
            scales=[float(scale) for scale in description["scales"]],
            metadata=metadata,
        )


def load_prompt_set() -> dict[str, Any]:
    text = resources.files("emochat").joinpath("data/steering_prompts.json").read_text("utf-8")
    return json.loads(text)


@contextmanager
def _capture_block_outputs(layers: Any) -> Iterator[list[Any]]:
    """While open, ``captured[i]`` holds decoder block i's output (first sequence) of the last
    forward pass."""
    captured: list[Any] = [None] * len(layers)
    handles = []
    for index, layer in enumerate(layers):

        def record(module: Any, args: Any, output: Any, index: int = index) -> None:
            hidden = output[0] if isinstance(output, tuple) else output
            captured[index] = hidden[0].detach().float()

        handles.append(layer.register_forward_hook(record))
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def _framed_states(loaded: LoadedModel, prompt_set: dict[str, Any]) -> dict[str, Any]:
    """Per pole, for every question and every framing of that pole: the block outputs averaged
    over the framing's tokens, read as the start of the assistant's reply.
    {pole: [pairs, n_layers, hidden]}"""
    import torch

    model, tokenizer = loaded.model, loaded.tokenizer
    device = next(model.parameters()).device
    rows: dict[str, list[Any]] = {pole: [] for pole in prompt_set["framings"]}
    with torch.inference_mode(), _capture_block_outputs(find_decoder_layers(model)) as captured:
        for question in prompt_set["questions"]:
            prompt, _ = render_prompt(tokenizer, [{"role": "user", "content": question}])
            start = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
            for pole, framings in prompt_set["framings"].items():
                for framing in framings:
                    text = prompt + framing
                    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
                    model(input_ids=ids["input_ids"].to(device))
                    rows[pole].append(torch.stack([h[start:].mean(0).cpu() for h in captured]))
    return {pole: torch.stack(states) for pole, states in rows.items()}


def extract_directions(loaded: LoadedModel, progress: Progress = _silent) -> EmotionDirections:
    """Build the directions for ``loaded`` from the shipped contrast pairs: the same question
    answered with the same framing sentence in each pole's words."""
    import torch

    prompt_set = load_prompt_set()
    progress(f"Reading {N_AXES} axes × 2 poles over the contrast pairs…")
    states = _framed_states(loaded, prompt_set)
    directions = torch.stack(
        [(states[axis.positive] - states[axis.negative]).mean(0) for axis in AXES]
    )
    residual_norms = torch.cat(list(states.values())).mean(0).norm(dim=-1)
    band = default_band(directions.shape[1])
    start, stop = band
    relative = directions[:, start:stop].norm(dim=-1) / residual_norms[start:stop]
    scales = (TARGET_RELATIVE_STRENGTH / relative.mean(dim=-1).clamp_min(1e-6)).tolist()
    directions, residual_norms = directions.numpy(), residual_norms.numpy()
    metadata = {
        "model": loaded.info.name,
        "model_source": loaded.info.source,
        "hidden_size": loaded.info.hidden_size,
        "n_layers": loaded.info.n_layers,
        "prompt_set_version": prompt_set["version"],
        "target_relative_strength": TARGET_RELATIVE_STRENGTH,
    }
    return EmotionDirections(directions, residual_norms, band, scales, metadata)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "model"


def shipped_vectors_dir(model_name: str) -> Path:
    return Path(str(resources.files("emochat.checkpoints"))) / _slug(model_name)


def cached_vectors_dir(info: ModelInfo) -> Path:
    """Keyed by the model's source, so both backends of one GGUF share one set."""
    source_hash = hashlib.sha256(info.source.encode()).hexdigest()[:10]
    return paths.cache_dir() / "vectors" / f"{_slug(info.name)}-{source_hash}"


def find_vectors(info: ModelInfo) -> EmotionDirections | None:
    """The shipped vectors for this model, else cached ones, else ``None``."""
    for folder in (shipped_vectors_dir(info.name), cached_vectors_dir(info)):
        if (folder / f"{VECTORS_FILE}.json").is_file():
            directions = EmotionDirections.load(folder)
            if (directions.n_layers, directions.hidden_size) == (info.n_layers, info.hidden_size):
                return directions
    return None


def build_and_cache_vectors(loaded: LoadedModel, progress: Progress = _silent) -> EmotionDirections:
    """Extract new vectors for ``loaded`` and keep them in the cache."""
    progress(f"No emotion vectors for {loaded.info.name} yet: building them once…")
    directions = extract_directions(loaded, progress)
    try:
        directions.save(cached_vectors_dir(loaded.info))
    except OSError as error:
        progress(f"Could not cache the emotion vectors: {error}")
    return directions


def vectors_for(
    loaded: LoadedModel, progress: Progress = _silent, build: bool = True
) -> EmotionDirections | None:
    """The shipped or cached vectors for this model, else (if ``build``) new ones."""
    found = find_vectors(loaded.info)
    if found is not None or not build:
        return found
    return build_and_cache_vectors(loaded, progress)


class SteeringModulator:
    """Adds the emotion's offsets to the output of each decoder block in the band, at the
    positions of the reply."""

    name = "steer"

    def __init__(self, directions: EmotionDirections, intensity: float = 1.0) -> None:
        self.directions = directions
        self.intensity = intensity
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
            hidden = output[0] if isinstance(output, tuple) else output
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

        if emotion.is_neutral() or self.intensity == 0:
            self._offsets = [None] * self.directions.n_layers
            return
        offsets = self.directions.offsets(emotion, self.intensity)
        self._offsets = [torch.from_numpy(row) if row.any() else None for row in offsets]

    def system_prompt(self, emotion: EmotionVector) -> str | None:
        return None

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._offsets = [None] * self.directions.n_layers
