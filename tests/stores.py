"""Model stores laid out on disk as their own tools lay them out, for tests and benchmarks:
Ollama's (``ollama pull`` writes manifests and content-addressed blobs) and the Hugging Face
hub cache (``hf_hub_download`` writes blobs, snapshot symlinks and refs)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _place(source: Path, target: Path) -> None:
    """A hard link where the file system allows one (no copy of the weights), else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _blob(root: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    (root / "blobs" / f"sha256-{digest}").write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def add_ollama_model(
    root: Path,
    name: str,
    gguf: Path,
    tag: str = "latest",
    namespace: str = "library",
    params: dict[str, object] | None = None,
    system: str | None = None,
) -> Path:
    """``ollama pull``'s layout under ``root`` (what $OLLAMA_MODELS points at); the manifest."""
    digest = _sha256(gguf)
    _place(gguf, root / "blobs" / f"sha256-{digest}")
    layers = [
        {
            "mediaType": "application/vnd.ollama.image.model",
            "digest": f"sha256:{digest}",
            "size": gguf.stat().st_size,
        },
        {
            "mediaType": "application/vnd.ollama.image.template",
            **_blob(root, b"{{ .Prompt }}"),
        },
    ]
    if params is not None:
        layers.append(
            {
                "mediaType": "application/vnd.ollama.image.params",
                **_blob(root, json.dumps(params).encode()),
            }
        )
    if system is not None:
        layers.append(
            {"mediaType": "application/vnd.ollama.image.system", **_blob(root, system.encode())}
        )
    config = _blob(root, json.dumps({"model_format": "gguf", "model_family": "llama"}).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", **config},
        "layers": layers,
    }
    path = root / "manifests" / "registry.ollama.ai" / namespace / name / tag
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest))
    return path


def add_hub_repo(cache: Path, repo: str, files: dict[str, Path | bytes]) -> Path:
    """``hf_hub_download``'s layout under ``cache`` (HF_HUB_CACHE): blobs named by their
    sha256, a snapshot of symlinks to them, and refs/main; the snapshot folder."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    commit = hashlib.sha1(repo.encode()).hexdigest()
    snapshot = folder / "snapshots" / commit
    for name, content in files.items():
        if isinstance(content, bytes):
            digest = hashlib.sha256(content).hexdigest()
            blob = folder / "blobs" / digest
            blob.parent.mkdir(parents=True, exist_ok=True)
            blob.write_bytes(content)
        else:
            blob = folder / "blobs" / _sha256(content)
            _place(content, blob)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(commit)
    return snapshot
