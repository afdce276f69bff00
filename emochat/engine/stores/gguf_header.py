"""What a GGUF file says about its model, read from the header alone (not the weights): fast
enough to list a hundred models, and cached by path, size and time so a second listing reads
nothing but the cache."""

from __future__ import annotations

import json
import mmap
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from emochat import paths
from emochat.errors import EmochatError

MAGIC = b"GGUF"
CACHE_FILE = "gguf-headers.json"
CACHE_VERSION = 2
# GGUF value types: their struct format, or None for a string (8) or an array (9)
SCALARS = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}
STRING, ARRAY = 8, 9
_U64 = struct.Struct("<Q")
WANTED_SUFFIXES = (".block_count", ".embedding_length", ".context_length")


@dataclass(frozen=True)
class GGUFSummary:
    architecture: str
    name: str
    size_label: str  # the model's own "135M", "8x7B", where its header gives one
    parameters: int | None  # counted from the tensors where it gives none
    file_type: str  # the quantization llama.cpp reports, "Q4_K_M"
    layers: int
    hidden_size: int
    context_length: int
    size: int  # bytes on disk


class _Reader:
    def __init__(self, data: Any) -> None:
        self.data, self.at = data, 0

    def unpack(self, form: str) -> Any:
        value = struct.unpack_from("<" + form, self.data, self.at)[0]
        self.at += struct.calcsize(form)
        return value

    def string(self) -> str:
        length = self.unpack("Q")
        text = bytes(self.data[self.at : self.at + length]).decode("utf-8", errors="replace")
        self.at += length
        return text

    def skip_string(self) -> None:
        self.at += 8 + struct.unpack_from("<Q", self.data, self.at)[0]

    def value(self, kind: int, keep: bool) -> Any:
        if kind in SCALARS:
            return self.unpack(SCALARS[kind])
        if kind == STRING:
            if keep:
                return self.string()
            self.skip_string()
            return None
        if kind == ARRAY:
            item, count = self.unpack("I"), self.unpack("Q")
            if item in SCALARS:  # skipped whole: arrays are never wanted here
                self.at += struct.calcsize(SCALARS[item]) * count
            elif item == STRING:  # a vocabulary: tens of thousands of strings, skipped fast
                length, data, at = _U64.unpack_from, self.data, self.at
                for _ in range(count):
                    at += 8 + length(data, at)[0]
                self.at = at
            else:
                for _ in range(count):
                    self.value(item, False)
            return None
        raise ValueError(f"unknown value type {kind}")


def _file_type_name(number: int) -> str:
    import gguf

    try:
        return gguf.LlamaFileType(number).name.removeprefix("MOSTLY_")
    except ValueError:
        return f"type {number}"


def read_summary(path: Path) -> GGUFSummary:
    """The header of the GGUF at ``path``; :class:`EmochatError` when it is not one."""
    try:
        with (
            path.open("rb") as handle,
            mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data,
        ):
            return _parse(_Reader(data), path.stat().st_size)
    except (OSError, ValueError, struct.error) as error:
        raise EmochatError(f"{path} is not a GGUF model file ({error})") from None


def _parse(reader: _Reader, size: int) -> GGUFSummary:
    if bytes(reader.data[:4]) != MAGIC:
        raise ValueError("no GGUF magic number")
    reader.at = 4
    reader.unpack("I")  # version
    tensors, entries = reader.unpack("Q"), reader.unpack("Q")
    values: dict[str, Any] = {}
    for _ in range(entries):
        key = reader.string()
        kind = reader.unpack("I")
        keep = key.startswith("general.") or key.endswith(WANTED_SUFFIXES)
        value = reader.value(kind, keep)
        if keep:
            values[key] = value
            if _complete(values):  # the vocabulary that follows need not be read
                break
    parameters = None if _complete(values) else _count_parameters(reader, tensors)
    architecture = str(values.get("general.architecture", "?"))
    file_type = values.get("general.file_type")
    return GGUFSummary(
        architecture=architecture,
        name=str(values.get("general.name", "")),
        size_label=str(values.get("general.size_label", "")),
        parameters=parameters,
        file_type=_file_type_name(file_type) if isinstance(file_type, int) else "?",
        layers=int(values.get(f"{architecture}.block_count", 0)),
        hidden_size=int(values.get(f"{architecture}.embedding_length", 0)),
        context_length=int(values.get(f"{architecture}.context_length", 0)),
        size=size,
    )


def _complete(values: dict[str, Any]) -> bool:
    """Whether everything a summary shows has been read (the size label standing in for a
    parameter count, which only the tensor list after the vocabulary gives)."""
    architecture = values.get("general.architecture")
    wanted = ["general.size_label", "general.file_type", "general.name"]
    wanted += [f"{architecture}{suffix}" for suffix in WANTED_SUFFIXES]
    return architecture is not None and all(key in values for key in wanted)


def _count_parameters(reader: _Reader, tensors: int) -> int:
    count = 0
    for _ in range(tensors):
        reader.skip_string()
        elements = 1
        for _ in range(reader.unpack("I")):
            elements *= reader.unpack("Q")
        reader.at += 4 + 8  # type, offset
        count += elements
    return count


class SummaryCache:
    """Summaries kept by path, size and modification time; ``save`` writes what was added."""

    def __init__(self) -> None:
        self._path = paths.cache_dir() / CACHE_FILE
        self._entries: dict[str, Any] = {}
        self._changed = False
        try:
            loaded = json.loads(self._path.read_text("utf-8"))
            if loaded.get("version") == CACHE_VERSION:
                self._entries = loaded["entries"]
        except (OSError, ValueError, KeyError, AttributeError):
            pass

    def summary(self, path: Path) -> GGUFSummary:
        stat = path.stat()
        key = str(path)
        entry = self._entries.get(key)
        if entry and entry.get("stamp") == [stat.st_size, stat.st_mtime_ns]:
            try:
                return GGUFSummary(**entry["summary"])
            except TypeError:
                pass  # written by another version: read the file again
        summary = read_summary(path)
        self._entries[key] = {"stamp": [stat.st_size, stat.st_mtime_ns], "summary": asdict(summary)}
        self._changed = True
        return summary

    def save(self) -> None:
        if not self._changed:
            return
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps({"version": CACHE_VERSION, "entries": self._entries})
            staging = self._path.with_suffix(".tmp")
            staging.write_text(text, "utf-8")
            staging.replace(self._path)
        except OSError:
            pass  # a cache that cannot be written makes the next listing slower, nothing more
