"""The emotion directions of one model, as stored: one direction per axis per decoder layer
(the [8, layers, hidden] ``values``), the residual-stream norms that scale them, the file format
they are kept in, where shipped and cached ones are found, and their export as llama.cpp
control-vector GGUF files.

Plain numpy throughout, so the llama.cpp backend steers without importing torch. How the
directions are measured is :mod:`emochat.engine.extraction`; how they act on a model is the
steering modulators' (:mod:`emochat.engine.modulation`)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from emochat import paths
from emochat.emotion import AXES, N_AXES, EmotionVector
from emochat.engine.loading import ModelInfo
from emochat.errors import EmochatError

FORMAT_VERSION = 1
# The files keep the user-facing name ("emochat vectors"): emotion_vectors.{json,safetensors}.
DIRECTIONS_FILE = "emotion_vectors"
# However the axes mix, a layer never gets more than this fraction of its residual norm added.
MAX_RELATIVE_NORM = 0.08


@dataclass
class EmotionDirections:
    """Per-axis, per-layer steering directions for one model, and how to scale them."""

    values: Any  # float32 array [N_AXES, n_layers, hidden]
    residual_norms: Any  # float32 array [n_layers]
    band: tuple[int, int]  # decoder blocks [start, stop) that get steered
    scales: list[float]  # per axis: multiplies the raw direction at |e| = 1, intensity = 1
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        return int(self.values.shape[1])

    @property
    def hidden_size(self) -> int:
        return int(self.values.shape[2])

    def offsets(
        self,
        emotion: EmotionVector,
        intensity: float = 1.0,
        gains: Sequence[float] | None = None,
    ) -> Any:
        """The vector added after each decoder block, float32 [n_layers, hidden] (zero outside
        the band); ``gains`` scales each axis (the steering loop's)."""
        import numpy as np

        gains = gains or (1.0,) * len(self.scales)
        weights = np.array(
            [
                value * scale * intensity * gain
                for value, scale, gain in zip(emotion, self.scales, gains, strict=True)
            ],
            dtype=np.float32,
        )
        offsets = np.einsum("k,klh->lh", weights, self.values)
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
            "directions": np.ascontiguousarray(self.values),
            "residual_norms": np.ascontiguousarray(self.residual_norms),
        }
        save_file(tensors, str(folder / f"{DIRECTIONS_FILE}.safetensors"))
        description = {
            "format": FORMAT_VERSION,
            "axes": [axis.name for axis in AXES],
            "band": list(self.band),
            "scales": self.scales,
            **self.metadata,
        }
        (folder / f"{DIRECTIONS_FILE}.json").write_text(json.dumps(description, indent=2) + "\n")
        return folder

    @classmethod
    def load(cls, folder: Path) -> EmotionDirections:
        import numpy as np
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            description = json.loads((folder / f"{DIRECTIONS_FILE}.json").read_text())
            tensors = load_file(str(folder / f"{DIRECTIONS_FILE}.safetensors"))
            values = tensors["directions"].astype(np.float32)
            residual_norms = tensors["residual_norms"].astype(np.float32)
        except (OSError, ValueError, KeyError, SafetensorError) as error:
            raise EmochatError(f"cannot read emotion vectors in {folder}: {error}") from error
        if description.get("format") != FORMAT_VERSION:
            raise EmochatError(f"{folder}: unsupported emotion-vector format")
        if values.shape[0] != N_AXES:
            raise EmochatError(f"{folder}: expected {N_AXES} axes, got {values.shape[0]}")
        metadata = {
            key: value
            for key, value in description.items()
            if key not in ("format", "axes", "band", "scales")
        }
        return cls(
            values=values,
            residual_norms=residual_norms,
            band=(int(description["band"][0]), int(description["band"][1])),
            scales=[float(scale) for scale in description["scales"]],
            metadata=metadata,
        )


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "model"


def shipped_directions_dir(model_name: str) -> Path:
    return Path(str(resources.files("emochat.checkpoints"))) / _slug(model_name)


def cached_directions_dir(info: ModelInfo) -> Path:
    """Keyed by the model's source, so both backends of one GGUF share one set."""
    return _cached_dir(info.name, info.source)


def _cached_dir(name: str, source: str) -> Path:
    source_hash = hashlib.sha256(source.encode()).hexdigest()[:10]
    return paths.cache_dir() / "vectors" / f"{_slug(name)}-{source_hash}"


def _shipped_for_file(path: Path) -> Path | None:
    """The shipped directions made for this very GGUF file, under whatever name it is found
    (an Ollama blob, a renamed copy): the shipped sets name the files they were made from."""
    from emochat.engine.loading import content_fingerprint

    try:
        size = path.stat().st_size
    except OSError:
        return None
    root = Path(str(resources.files("emochat.checkpoints")))
    fingerprint = None
    for description in root.glob(f"*/{DIRECTIONS_FILE}.json"):
        try:
            files = json.loads(description.read_text("utf-8")).get("gguf_files", [])
        except (OSError, ValueError):
            continue
        for known in files:
            if known.get("size") != size:  # the size rules out nearly all, without reading
                continue
            fingerprint = fingerprint or content_fingerprint(path)
            if known.get("fingerprint") == fingerprint:
                return description.parent
    return None


def _candidates(name: str, source: str) -> list[tuple[str, Path]]:
    """The folders holding directions for the model ``name`` at ``source``, best first."""
    found = []
    shipped = shipped_directions_dir(name)
    if not (shipped / f"{DIRECTIONS_FILE}.json").is_file() and Path(source).is_file():
        shipped = _shipped_for_file(Path(source)) or shipped
    cached = _cached_dir(name, source)
    for status, folder in (("shipped", shipped), ("built", cached)):
        if (folder / f"{DIRECTIONS_FILE}.json").is_file():
            found.append((status, folder))
    return found


def directions_status(name: str, source: str) -> str | None:
    """Whether directions for the model ``name`` at ``source`` are "shipped" or "built" (in the
    cache); ``None`` when there are none yet."""
    found = _candidates(name, source)
    return found[0][0] if found else None


def find_directions(info: ModelInfo) -> EmotionDirections | None:
    """The shipped directions for this model, else cached ones, else ``None``."""
    for _status, folder in _candidates(info.name, info.source):
        directions = EmotionDirections.load(folder)
        if (directions.n_layers, directions.hidden_size) == (info.n_layers, info.hidden_size):
            return directions
    return None


def write_control_vector(path: Path, offsets: Any, model_hint: str) -> Path:
    """A llama.cpp control-vector GGUF of ``offsets`` ([n_layers, hidden], what emochat adds
    after each decoder block): one float32 row per block from block 1 on (llama.cpp never
    steers block 0), for llama.cpp's own tools."""
    import gguf
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    n_layers = int(offsets.shape[0])
    writer = gguf.GGUFWriter(str(path), "controlvector")
    writer.add_string("controlvector.model_hint", model_hint)
    writer.add_uint32("controlvector.layer_count", n_layers - 1)
    for layer in range(1, n_layers):
        writer.add_tensor(f"direction.{layer}", np.asarray(offsets[layer], dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
