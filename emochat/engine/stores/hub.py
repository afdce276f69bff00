"""GGUF repos on the Hugging Face hub, as llama.cpp's ``-hf`` names them: ``OWNER/REPO:QUANT``
(or ``OWNER/REPO``, which takes Q4_K_M). The file is picked by its quantization, downloaded
into the ordinary Hugging Face cache (with huggingface_hub's progress bar), and read from the
cache when the hub cannot be reached. Split GGUFs (``-00001-of-00003``) come whole."""

from __future__ import annotations

import os
import re
from pathlib import Path

from emochat.errors import EmochatError, first_line

DEFAULT_QUANT = "Q4_K_M"
HUB_PREFIXES = ("hf.co/", "huggingface.co/")  # how Ollama writes hub GGUFs
# The quantization at the end of a file name: "…-Q4_K_M.gguf", "….q8_0.gguf", "…-F16.gguf"
QUANT_PATTERN = re.compile(r"(?:^|[-._])((?:UD-)?I?Q\d[A-Z0-9_]*|BF16|F16|F32)$", re.IGNORECASE)
SHARD_PATTERN = re.compile(r"-(\d{5})-of-(\d{5})$")
REPO_PATTERN = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def split_name(model: str) -> tuple[str, str | None] | None:
    """``(repo, quant)`` where ``model`` is written as a hub GGUF (``OWNER/REPO:QUANT``, or
    ``hf.co/OWNER/REPO[:QUANT]``), else ``None``. ``OWNER/REPO`` alone is ambiguous (a
    transformers model, or a GGUF repo): :func:`gguf_files` tells."""
    for prefix in HUB_PREFIXES:
        if model.startswith(prefix):
            repo, _, quant = model.removeprefix(prefix).partition(":")
            return (repo, quant or None) if REPO_PATTERN.fullmatch(repo) else None
    repo, colon, quant = model.partition(":")
    if colon and quant and REPO_PATTERN.fullmatch(repo) and ":" not in quant:
        return repo, quant
    return None


def quant_of(filename: str) -> str | None:
    """The quantization a GGUF's file name says ("Q4_K_M"), upper case; None if it says none."""
    stem = SHARD_PATTERN.sub("", Path(filename).name.removesuffix(".gguf"))
    match = QUANT_PATTERN.search(stem)
    return match.group(1).upper() if match else None


def is_model_file(filename: str) -> bool:
    """A GGUF holding a language model (not a vision projector), first shard of a split."""
    name = Path(filename).name.lower()
    if not name.endswith(".gguf") or "mmproj" in name:
        return False
    shard = SHARD_PATTERN.search(name.removesuffix(".gguf"))
    return shard is None or shard.group(1) == "00001"


def pick_file(repo: str, files: list[str], quant: str | None) -> str:
    """The model file of ``quant`` (Q4_K_M by default; the only one, where there is one)."""
    models = sorted(name for name in files if is_model_file(name))
    if not models:
        raise EmochatError(f"{repo} has no GGUF files")
    by_quant = {quant_of(name): name for name in models}
    wanted = (quant or DEFAULT_QUANT).upper()
    if wanted in by_quant:
        return by_quant[wanted]
    if quant is None and len(models) == 1:
        return models[0]
    known = ", ".join(sorted(q for q in by_quant if q)) or "none named"
    raise EmochatError(f"{repo} has no {wanted} GGUF; its quantizations: {known}")


def shards_of(first: str, files: list[str]) -> list[str]:
    """Every file of the split model whose first shard is ``first`` (just ``first`` if whole)."""
    stem = first.removesuffix(".gguf")
    shard = SHARD_PATTERN.search(stem)
    if shard is None:
        return [first]
    base, count = stem[: shard.start()], int(shard.group(2))
    return [f"{base}-{index:05d}-of-{count:05d}.gguf" for index in range(1, count + 1)]


HUB_TIMEOUT_SECONDS = 3.0


def hub_reachable() -> bool:
    """Whether the model hub answers at all (a TCP connection within 3 s): without this check,
    a download attempt offline retries for about a minute before it fails."""
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        socket.create_connection((endpoint.hostname or "", port), HUB_TIMEOUT_SECONDS).close()
    except OSError:
        return False
    return True


def repo_cache_dir(repo: str) -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}"


def cached_snapshot(repo: str) -> Path | None:
    """The cached snapshot of ``repo`` that ``main`` points at (else the newest one)."""
    folder = repo_cache_dir(repo)
    try:
        commit = (folder / "refs" / "main").read_text().strip()
        if (folder / "snapshots" / commit).is_dir():
            return folder / "snapshots" / commit
    except OSError:
        pass
    snapshots = sorted(
        (path for path in (folder / "snapshots").glob("*") if path.is_dir()),
        key=lambda path: path.stat().st_mtime,
    )
    return snapshots[-1] if snapshots else None


def snapshot_files(snapshot: Path) -> list[str]:
    return sorted(
        str(path.relative_to(snapshot)) for path in snapshot.rglob("*") if not path.is_dir()
    )


def hub_files(repo: str) -> list[str]:
    """Every file of ``repo`` as the hub lists it."""
    from huggingface_hub import list_repo_files

    try:
        return list_repo_files(repo)
    except Exception as error:  # not found, gated, or the network went
        raise EmochatError(f"cannot list the files of {repo}: {first_line(error)}") from None


def fetch(repo: str, quant: str | None) -> tuple[Path, str]:
    """The local path of ``repo``'s GGUF for ``quant`` (downloaded the first time), and the
    file's name in the repo."""
    if hub_reachable():
        files = hub_files(repo)
        chosen = pick_file(repo, files, quant)
        return _download(repo, chosen, files), chosen
    snapshot = cached_snapshot(repo)
    files = snapshot_files(snapshot) if snapshot is not None else []
    if snapshot is None or not any(is_model_file(name) for name in files):
        raise EmochatError(
            f"{repo} is not downloaded yet and the model hub cannot be reached; connect "
            "to the internet, or point --model at a local .gguf file"
        )
    chosen = pick_file(repo, files, quant)
    if any(name not in files for name in shards_of(chosen, files)):
        raise EmochatError(f"{repo}: {chosen} is only partly downloaded; connect to finish it")
    return snapshot / chosen, chosen


def _download(repo: str, chosen: str, files: list[str]) -> Path:
    """Download every shard of ``chosen``: huggingface_hub writes each to an ``.incomplete``
    file and moves it into place only when whole, so a download cut off is never used."""
    from huggingface_hub import hf_hub_download

    paths = []
    for name in shards_of(chosen, files):
        try:
            paths.append(Path(hf_hub_download(repo, name)))
        except Exception as error:
            raise EmochatError(f"download of {repo}/{name} failed: {first_line(error)}") from None
    return paths[0]
