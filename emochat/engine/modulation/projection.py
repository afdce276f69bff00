"""Emotional-Gemma style modulation: a learned projection of the emotion vector added to every
token embedding, for checkpoints trained that way (a PEFT LoRA adapter plus
``emotion_proj_weights.pth``).

The public Emotional-Gemma code adds ``3 * emotion_proj_embed(e)`` to the token embeddings
after Gemma's embedding scaling; the projection is an MLP (8 → h/2 → LayerNorm → GELU → h) in
that code and a plain Linear (8 → h) on the model card. Which one a file holds is read from its
state-dict keys and shapes; anything else is refused rather than run with random weights.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from emochat.emotion import N_AXES, EmotionVector
from emochat.engine.directions import shipped_directions_dir
from emochat.engine.loading import ModelSource
from emochat.engine.modulation.base import Modulator
from emochat.errors import EmochatError

PROJECTION_FILE = "emotion_proj_weights.pth"
EMBEDDING_SCALE = 3.0


def _strip_prefix(state: dict[str, Any]) -> dict[str, Any]:
    """Drop a module-name prefix every key shares ("emotion_proj_embed.0.weight" → "0.weight")."""
    keys = list(state)
    while keys and all("." in key for key in keys):
        head = keys[0].split(".", 1)[0]
        if head.isdigit() or not all(key.startswith(head + ".") for key in keys):
            break
        state = {key.split(".", 1)[1]: value for key, value in state.items()}
        keys = list(state)
    return state


# "linear": 8 → h with no bias, so the zero vector adds nothing (the model card's Linear, which
# has a bias, loads too); "mlp": the public code's 8 → h/2 → LayerNorm → GELU → h.
PROJECTION_LAYOUTS = ("linear", "mlp")


def new_projection(layout: str, hidden_size: int, inner: int | None = None) -> Any:
    """A freshly initialised projection of ``layout``."""
    import torch

    if layout == "linear":
        return torch.nn.Linear(N_AXES, hidden_size, bias=False)
    if layout == "mlp":
        inner = inner or hidden_size // 2
        return torch.nn.Sequential(
            torch.nn.Linear(N_AXES, inner),
            torch.nn.LayerNorm(inner),
            torch.nn.GELU(),
            torch.nn.Linear(inner, hidden_size),
        )
    raise EmochatError(f"projection layout must be one of {', '.join(PROJECTION_LAYOUTS)}")


def build_projection(state: dict[str, Any], hidden_size: int) -> Any:
    """A torch module equal to the saved projection, or an :class:`EmochatError` naming what
    did not fit."""
    import torch

    state = _strip_prefix(state)
    shapes = {key: tuple(value.shape) for key, value in state.items()}
    linear_keys = {"weight"} | ({"bias"} if "bias" in shapes else set())
    if set(shapes) == linear_keys and shapes["weight"] == (hidden_size, N_AXES):
        module: torch.nn.Module = torch.nn.Linear(N_AXES, hidden_size, bias="bias" in shapes)
    elif set(shapes) == {"0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"}:
        inner = shapes["0.weight"][0]
        expected = {
            "0.weight": (inner, N_AXES),
            "0.bias": (inner,),
            "1.weight": (inner,),
            "1.bias": (inner,),
            "3.weight": (hidden_size, inner),
            "3.bias": (hidden_size,),
        }
        if shapes != expected:
            raise EmochatError(
                f"emotion projection shapes {shapes} do not fit hidden size {hidden_size}"
            )
        module = new_projection("mlp", hidden_size, inner)
    else:
        raise EmochatError(
            f"unrecognised emotion projection (keys {sorted(shapes)}); expected a Linear "
            f"{N_AXES}→{hidden_size} or the MLP 0/1/3 of Emotional-Gemma"
        )
    module.load_state_dict({key: value.float() for key, value in state.items()}, strict=True)
    return module.eval()


def shipped_embed_checkpoint(source: ModelSource) -> Path | None:
    """The emotion projection and LoRA emochat ships for a model (``<name>-embed`` beside its
    steering directions), if any; never for a model that is already such a checkpoint."""
    if source.adapter is not None:
        return None
    folder = shipped_directions_dir(f"{source.display_name}-embed")
    return folder if (folder / PROJECTION_FILE).is_file() else None


def has_projection(source: ModelSource) -> bool:
    """Whether the model is a checkpoint trained with an emotion projection (Emotional-Gemma)."""
    return source.adapter is not None and (Path(source.adapter) / PROJECTION_FILE).is_file()


def load_projection(folder: Path, hidden_size: int) -> Any:
    import torch

    path = folder / PROJECTION_FILE
    try:
        # weights_only: a .pth is a pickle, and only tensors may come out of it.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as error:
        message = str(error).strip()
        first_line = message.splitlines()[0] if message else "empty or cut short"
        raise EmochatError(f"cannot read {path}: {first_line}") from error
    if not isinstance(state, dict):
        raise EmochatError(f"{path} is not a state dict")
    return build_projection(state, hidden_size)


class EmbeddingProjectionModulator(Modulator):
    """Adds ``3 * projection(e)`` to the output of the input-embedding module."""

    name = "embed"

    def __init__(self, projection: Any, scale: float = EMBEDDING_SCALE) -> None:
        self.projection = projection
        self.scale = scale
        self._offset: Any = None
        self._handle: Any = None

    def attach(self, model: Any) -> None:
        self._handle = model.get_input_embeddings().register_forward_hook(self._add)

    def _add(self, module: Any, args: Any, output: Any) -> Any:
        if self._offset is None:
            return None
        return output + self._offset.to(output.device, output.dtype)

    def set_emotion(self, emotion: EmotionVector) -> None:
        import torch

        # The checkpoint was trained with the projection always present, so even the neutral
        # vector goes through it.
        with torch.inference_mode():
            vector = torch.tensor([list(emotion)], dtype=torch.float32)
            self._offset = self.scale * self.projection(vector)[0]

    def detach(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
