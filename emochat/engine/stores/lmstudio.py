"""LM Studio's model folders (``~/.lmstudio/models``, and ``~/.cache/lm-studio/models`` of older
versions), laid out ``PUBLISHER/REPO/FILE.gguf``: ``lmstudio:PUBLISHER/REPO[:QUANT]`` names one,
picked by quantization as a hub GGUF is."""

from __future__ import annotations

from pathlib import Path

from emochat.engine.stores.hub import is_model_file, pick_file
from emochat.errors import EmochatError

PREFIX = "lmstudio:"


def model_dirs() -> list[Path]:
    home = Path.home()
    candidates = [home / ".lmstudio" / "models", home / ".cache" / "lm-studio" / "models"]
    return [folder for folder in candidates if folder.is_dir()]


def installed() -> list[tuple[str, Path]]:
    """Every model file: (the name to pass to --model, the file), sorted."""
    found = []
    for root in model_dirs():
        for path in root.glob("*/*/*.gguf"):
            if is_model_file(path.name):
                publisher, repo = path.parts[-3:-1]
                found.append((f"{PREFIX}{publisher}/{repo}", path))
    return sorted(found)


def find(model: str) -> Path:
    """The file ``lmstudio:PUBLISHER/REPO[:QUANT]`` names."""
    repo, _, quant = model.removeprefix(PREFIX).partition(":")
    for root in model_dirs():
        folder = root / repo
        if repo.count("/") == 1 and folder.is_dir():
            files = [path.name for path in folder.glob("*.gguf")]
            return folder / pick_file(f"{PREFIX}{repo}", files, quant or None)
    names = ", ".join(sorted({name for name, _ in installed()})) or "none"
    raise EmochatError(f"no LM Studio model {repo} (installed: {names})")
