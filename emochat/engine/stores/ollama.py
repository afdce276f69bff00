"""Ollama's model store, read in place and read-only: ``ollama:NAME[:TAG]`` names a manifest
under ``$OLLAMA_MODELS`` (else ``~/.ollama/models``) at
``manifests/REGISTRY/NAMESPACE/NAME/TAG``; its model layer is a GGUF blob under
``blobs/sha256-…``. The params and system layers become the model's own defaults; the template
layer (Go text/template) is not used: the GGUF's own chat template is."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emochat.errors import EmochatError

PREFIX = "ollama:"
DEFAULT_REGISTRY = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
MODEL_LAYER = "application/vnd.ollama.image.model"
PARAMS_LAYER = "application/vnd.ollama.image.params"
SYSTEM_LAYER = "application/vnd.ollama.image.system"
# Ollama's parameter names and emochat's
PARAMETERS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "repeat_penalty": "repetition_penalty",
    "seed": "seed",
    "num_predict": "max_new_tokens",
}


@dataclass(frozen=True)
class OllamaModel:
    name: str  # as ``ollama list`` shows it: "llama3.2:latest", "user/model:tag"
    blob: Path  # the GGUF
    defaults: dict[str, Any] = field(default_factory=dict)  # emochat's names
    unused: tuple[str, ...] = ()  # Ollama parameters emochat has no use for
    system_prompt: str | None = None


def store_dir() -> Path:
    explicit = os.environ.get("OLLAMA_MODELS")
    return Path(explicit).expanduser() if explicit else Path.home() / ".ollama" / "models"


def is_ollama_name(model: str) -> bool:
    return model.startswith(PREFIX)


def _manifest_path(name: str) -> tuple[Path, str]:
    """The manifest file for ``name`` (without the prefix), and the name as Ollama shows it."""
    path, _, tag = name.partition(":")
    parts = [part for part in path.split("/") if part]
    if not parts or len(parts) > 3 or (not tag and name.endswith(":")):
        raise EmochatError(f"not an Ollama model name: {PREFIX}{name} (try {PREFIX}llama3.2)")
    tag = tag or DEFAULT_TAG
    if len(parts) == 1:
        parts = [DEFAULT_REGISTRY, DEFAULT_NAMESPACE, *parts]
    elif len(parts) == 2:
        parts = [DEFAULT_REGISTRY, *parts]
    manifest = store_dir() / "manifests" / Path(*parts) / tag
    return manifest, _shown_name(parts, tag)


def _shown_name(parts: list[str], tag: str) -> str:
    registry, namespace, model = parts
    if registry == DEFAULT_REGISTRY and namespace == DEFAULT_NAMESPACE:
        return f"{model}:{tag}"
    if registry == DEFAULT_REGISTRY:
        return f"{namespace}/{model}:{tag}"
    return f"{registry}/{namespace}/{model}:{tag}"


def installed() -> list[tuple[str, Path]]:
    """Every model in the store: (the name as Ollama shows it, its manifest), sorted."""
    root = store_dir() / "manifests"
    if not root.is_dir():
        return []
    found = []
    for manifest in root.glob("*/*/*/*"):
        if manifest.is_file() and not manifest.name.startswith("."):
            registry, namespace, model = manifest.parts[-4:-1]
            found.append((_shown_name([registry, namespace, model], manifest.name), manifest))
    return sorted(found)


def find(model: str) -> OllamaModel:
    """The Ollama model ``model`` names (``ollama:NAME[:TAG]``), its blob checked to exist."""
    manifest, shown = _manifest_path(model.removeprefix(PREFIX))
    if not manifest.is_file():
        names = ", ".join(name for name, _ in installed()) or "none"
        raise EmochatError(
            f"no Ollama model {shown} in {store_dir()} (installed: {names}); "
            f"ollama pull {shown} fetches it"
        )
    return read_manifest(manifest, shown)


def _blob(digest: Any) -> Path:
    if not isinstance(digest, str) or not digest.startswith("sha256:"):
        raise ValueError(f"a layer digest is {digest!r}")
    return store_dir() / "blobs" / digest.replace(":", "-")


def read_manifest(manifest: Path, shown: str) -> OllamaModel:
    try:
        layers = {
            layer["mediaType"]: layer for layer in json.loads(manifest.read_bytes())["layers"]
        }
        model_layer = layers.get(MODEL_LAYER)
        if model_layer is None:
            raise ValueError("it has no model layer")
        blob = _blob(model_layer["digest"])
        params_layer, system_layer = layers.get(PARAMS_LAYER), layers.get(SYSTEM_LAYER)
        params = json.loads(_blob(params_layer["digest"]).read_bytes()) if params_layer else {}
        system = _blob(system_layer["digest"]).read_text("utf-8") if system_layer else None
        if not isinstance(params, dict):
            raise ValueError("its params layer is not a JSON object")
    except (ValueError, KeyError, TypeError) as error:
        raise EmochatError(
            f"Ollama model {shown}: {manifest} is not a manifest ({error})"
        ) from None
    except OSError as error:
        raise EmochatError(f"Ollama model {shown}: cannot read a layer ({error})") from None
    if not blob.is_file():
        raise EmochatError(
            f"Ollama model {shown}: its weights ({blob.name}) are missing from "
            f"{blob.parent}; ollama pull {shown} fetches them again"
        )
    defaults = {
        PARAMETERS[key]: value
        for key, value in params.items()
        if key in PARAMETERS and _number(value)
    }
    if defaults.get("max_new_tokens", 1) <= 0:  # Ollama's -1/-2: until the context is full
        del defaults["max_new_tokens"]
    unused = tuple(sorted(key for key in params if PARAMETERS.get(key) not in defaults))
    return OllamaModel(shown, blob, defaults, unused, system or None)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
