"""Every model emochat can find on this machine, without loading one: the bundled default,
Ollama's store, the Hugging Face cache (GGUF repos and transformers models) and LM Studio's
folders, each with the name to pass to ``--model``, what its header says, and whether its
steering directions are shipped, built, or not yet."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from emochat.engine.directions import directions_status
from emochat.engine.loading import DEFAULT_MODEL, default_model_path
from emochat.engine.stores import hub, lmstudio, ollama
from emochat.engine.stores.gguf_header import SummaryCache
from emochat.errors import EmochatError


@dataclass(frozen=True)
class FoundModel:
    name: str  # what --model takes
    store: str  # "bundled", "ollama", "hf-cache", "lmstudio"
    path: str
    architecture: str
    size_label: str  # the model's own "135M", where its header says
    parameters: int | None  # counted where it does not (None for transformers folders)
    quantization: str
    size: int  # bytes
    vectors: str  # "shipped", "built" or "not yet"


@dataclass(frozen=True)
class Catalog:
    models: list[FoundModel]
    problems: list[str]  # what could not be read, one line each


def find_models() -> Catalog:
    headers = SummaryCache()
    models: list[FoundModel] = []
    problems: list[str] = []

    def add_gguf(name: str, store: str, path: Path, display: str) -> None:
        try:
            summary = headers.summary(path)
        except (EmochatError, OSError) as error:
            problems.append(f"{name}: {error}")
            return
        status = directions_status(display, str(path)) or "not yet"
        models.append(
            FoundModel(
                name,
                store,
                str(path),
                summary.architecture,
                summary.size_label,
                summary.parameters,
                summary.file_type,
                summary.size,
                status,
            )
        )

    try:
        add_gguf(DEFAULT_MODEL, "bundled", default_model_path(), "SmolLM2-135M-Instruct")
    except EmochatError as error:
        problems.append(str(error))
    for shown, manifest in ollama.installed():
        try:
            found = ollama.read_manifest(manifest, shown)
        except EmochatError as error:
            problems.append(str(error))
            continue
        add_gguf(f"{ollama.PREFIX}{shown}", "ollama", found.blob, found.name)
    for repo, snapshot in _cached_repos():
        files = hub.snapshot_files(snapshot)
        if "config.json" in files:
            models.append(_transformers_model(repo, snapshot, files))
            continue
        for file in files:
            if hub.is_model_file(file):
                quant = hub.quant_of(file)
                name = f"{repo}:{quant}" if quant else repo
                add_gguf(name, "hf-cache", snapshot / file, Path(file).name.removesuffix(".gguf"))
    for name, path in lmstudio.installed():
        quant = hub.quant_of(path.name)
        shown = f"{name}:{quant}" if quant else name
        add_gguf(shown, "lmstudio", path, path.name.removesuffix(".gguf"))
    headers.save()
    return Catalog(models, problems)


def _cached_repos() -> list[tuple[str, Path]]:
    """Every model repo in the Hugging Face cache with a snapshot: (owner/name, snapshot)."""
    from huggingface_hub import constants

    found = []
    for folder in sorted(Path(constants.HF_HUB_CACHE).glob("models--*")):
        repo = folder.name.removeprefix("models--").replace("--", "/", 1)
        snapshot = hub.cached_snapshot(repo)
        if snapshot is not None:
            found.append((repo, snapshot))
    return found


def _transformers_model(repo: str, snapshot: Path, files: list[str]) -> FoundModel:
    try:
        config = json.loads((snapshot / "config.json").read_text("utf-8"))
        architecture = str(config.get("model_type", "?"))
    except (OSError, ValueError, AttributeError):
        architecture = "?"
    size = sum((snapshot / name).stat().st_size for name in files if (snapshot / name).exists())
    status = directions_status(repo, repo) or "not yet"
    return FoundModel(repo, "hf-cache", str(snapshot), architecture, "", None, "-", size, status)
