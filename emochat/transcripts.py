"""Conversation transcripts: one append-only JSON Lines file per conversation.

The first line is a header (model, settings, starting state); every later line is one event
(a user message with its reading and the state after it, an assistant reply with the vector it
carried, or a preset/manual change of the vector). Each line is flushed and fsynced as it is
written, so a crash loses at most the line being written, and readers skip such a torn line.

Files are created exclusively (never two conversations in one file), locked while a session
writes to them, and readable by their owner only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from emochat import paths
from emochat.emotion import EmotionVector
from emochat.errors import EmochatError
from emochat.progress import Progress, no_progress
from emochat.records import clean_header, is_safe_id, record_problem

FORMAT_VERSION = 1
SUFFIX = ".jsonl"


def transcripts_dir() -> Path:
    return paths.data_dir() / "transcripts"


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).astimezone().isoformat(timespec="seconds")


ID_ATTEMPTS = 20


def new_id() -> str:
    """The start time and 32 random bits: a clash needs two chats in one second drawing the same
    of four billion suffixes (and is then drawn again)."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(4)}"


class TranscriptWriteError(EmochatError):
    """The disk refused a write; the conversation goes on in memory."""


@dataclass
class Exchange:
    """One prompt and the reply to it, as the conversation shows them now: a regenerated reply
    replaces the earlier one, a continued reply joins its first part, an edited prompt replaces
    its turn (the transcript keeps every earlier version)."""

    prompt: str
    reply: str = ""
    answered: bool = False  # a reply event arrived (a crash mid-reply leaves it False)
    cancelled: bool = False
    truncated: bool = False  # stopped by the token limit; it can be continued
    emotion: list[float] | None = None  # the vector the reply was written with
    # the mood the detector read back in the reply: {"vector": [8 floats], "confidence": x}
    expressed: dict[str, Any] | None = None

    @property
    def in_history(self) -> bool:
        """Whether the model sees this turn: a stopped or unanswered one is withdrawn."""
        return self.answered and not self.cancelled and bool(self.reply)


def _apply(exchanges: list[Exchange], event: dict[str, Any]) -> None:
    """Fold one transcript event into the list of exchanges: the one place that decides what a
    conversation says."""
    kind = event.get("type")
    if kind == "user":
        exchanges.append(Exchange(prompt=str(event.get("text", ""))))
    elif kind == "assistant" and exchanges:
        last = exchanges[-1]
        text = str(event.get("text", ""))
        last.reply = last.reply + text if event.get("continues") else text
        last.answered = True
        last.cancelled = bool(event.get("cancelled"))
        last.truncated = bool(event.get("truncated"))
        emotion = event.get("emotion")
        last.emotion = emotion if isinstance(emotion, list) else None
        expressed = event.get("expressed")
        last.expressed = expressed if isinstance(expressed, dict) else None
    elif kind == "retract" and exchanges:
        if event.get("what") == "reply":
            exchanges[-1] = Exchange(prompt=exchanges[-1].prompt)
        else:
            exchanges.pop()


def history_of(exchanges: list[Exchange]) -> list[dict[str, str]]:
    """The chat history as the model should see it: the answered turns, without those whose
    reply was stopped or never came (the app withdrew those)."""
    history: list[dict[str, str]] = []
    for exchange in exchanges:
        if exchange.in_history:
            history.append({"role": "user", "content": exchange.prompt})
            history.append({"role": "assistant", "content": exchange.reply})
    return history


def title_record(title: str) -> dict[str, str]:
    """The event that gives a conversation ``title`` (whitespace folded; never empty)."""
    title = " ".join(title.split())
    if not title:
        raise EmochatError("a chat's title cannot be empty")
    return {"type": "title", "title": title}


@dataclass
class Conversation:
    """A transcript as read back: its header and its events, in order."""

    header: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    path: Path | None = None

    @property
    def id(self) -> str:
        """A safe id (the readers drop an unsafe one), so it can name files."""
        value = self.header.get("id")
        if is_safe_id(value):
            return str(value)
        return self.path.stem if self.path and is_safe_id(self.path.stem) else "conversation"

    def exchanges(self) -> list[Exchange]:
        exchanges: list[Exchange] = []
        for event in self.events:
            _apply(exchanges, event)
        return exchanges

    def messages(self) -> list[dict[str, str]]:
        return history_of(self.exchanges())

    def turns(self) -> int:
        return len(self.exchanges())

    @property
    def title(self) -> str:
        """The latest title the user gave it, else the first words of the first message."""
        for event in reversed(self.events):
            if event.get("type") == "title" and str(event.get("title", "")).strip():
                return str(event["title"]).strip()
        return self.first_words()

    def last_state(self) -> dict[str, Any] | None:
        for event in reversed(self.events):
            if isinstance(event.get("state"), dict):
                return event["state"]
        state = self.header.get("state")
        return state if isinstance(state, dict) else None

    def final_emotion(self) -> EmotionVector:
        state = self.last_state()
        try:
            return EmotionVector.from_json(state["vector"]) if state else EmotionVector()
        except (EmochatError, KeyError, TypeError):
            return EmotionVector()

    def first_words(self, count: int = 8) -> str:
        for event in self.events:
            if event.get("type") == "user":
                words = str(event.get("text", "")).split()
                return " ".join(words[:count]) + (" …" if len(words) > count else "")
        return ""

    def to_document(self) -> dict[str, Any]:
        return {"format": FORMAT_VERSION, "header": self.header, "events": self.events}


def read_transcript(path: Path, warn: Progress = no_progress) -> Conversation:
    """Read a transcript, skipping (with a warning naming file and line) any line that is torn,
    is not JSON, or holds a record of the wrong shape; only an unreadable file or a missing
    header is an error."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise EmochatError(f"cannot read {path}: {error.strerror or error}") from error
    header: dict[str, Any] | None = None
    events: list[dict[str, Any]] = []
    for number, line in enumerate(data.decode("utf-8", errors="replace").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            warn(f"{path}: line {number} is damaged and was skipped")
            continue
        if header is None:
            if not isinstance(record, dict) or record.get("type") != "header":
                break
            header = record
            for name in clean_header(header):
                warn(f"{path}: line {number}: the header's {name} is malformed and was ignored")
            continue
        problem = record_problem(record)
        if problem is not None:
            warn(f"{path}: line {number} holds {problem} and was skipped")
            continue
        events.append(record)
    if header is None:
        raise EmochatError(f"{path} is not an emochat transcript (no header line)")
    if "id" not in header and is_safe_id(path.stem):
        header["id"] = path.stem
    return Conversation(header=header, events=events, path=path)


class TranscriptWriter:
    """Appends events to one transcript file, holding an exclusive lock on it.

    A new conversation's file can wait for its first event (``deferred``), so opening the app
    and leaving leaves nothing behind. When the disk refuses a write, ``write`` raises
    :class:`TranscriptWriteError` once and the writer keeps the events in memory from then on
    (``saving`` turns false)."""

    def __init__(
        self,
        path: Path,
        handle: IO[str] | None,
        conversation: Conversation,
        pending: bool = False,
        new_id_if_taken: bool = False,
    ) -> None:
        self.path = path
        self._handle = handle
        self._pending = pending  # the file is created with the first event
        self._new_id_if_taken = new_id_if_taken  # an id emochat chose may be drawn again
        self.conversation = conversation

    @property
    def saving(self) -> bool:
        return self._handle is not None or self._pending

    @property
    def started(self) -> bool:
        """Whether the conversation has a file yet."""
        return self._handle is not None or (not self._pending and self.path.is_file())

    @classmethod
    def create(
        cls, header: dict[str, Any], path: Path | None = None, *, deferred: bool = False
    ) -> TranscriptWriter:
        header = {"type": "header", "format": FORMAT_VERSION, "created": now(), **header}
        chosen = path is not None or "id" in header
        header.setdefault("id", path.stem if path else new_id())
        if not is_safe_id(header["id"]):
            raise EmochatError(f"{header['id']!r} cannot be a conversation id")
        target = path or transcripts_dir() / f"{header['id']}{SUFFIX}"
        conversation = Conversation(header=header, path=target)
        writer = cls(target, None, conversation, pending=True, new_id_if_taken=not chosen)
        if not deferred:
            writer._open()
        return writer

    @classmethod
    def resume(cls, conversation: Conversation) -> TranscriptWriter:
        if conversation.path is None:
            raise EmochatError("this conversation has no file to continue")
        handle = _open_for_append(conversation.path)
        return cls(conversation.path, handle, conversation)

    @classmethod
    def in_memory(cls, header: dict[str, Any]) -> TranscriptWriter:
        """For ``--no-save``: the same interface, nothing on disk."""
        header = {"type": "header", "format": FORMAT_VERSION, "created": now(), **header}
        header.setdefault("id", new_id())
        return cls(Path(os.devnull), None, Conversation(header=header))

    def _open(self) -> None:
        self._pending = False
        for _ in range(ID_ATTEMPTS):
            try:
                self._handle = _open_exclusive(self.path)
                break
            except FileExistsError as error:
                if not self._new_id_if_taken:
                    raise EmochatError(f"a transcript already exists at {self.path}") from error
                # Another conversation began in the same second and drew the same suffix.
                self.conversation.header["id"] = new_id()
                self.path = self.path.with_name(f"{self.conversation.header['id']}{SUFFIX}")
                self.conversation.path = self.path
        else:
            raise EmochatError(f"no free conversation id in {self.path.parent}")
        self._append(self.conversation.header)

    def write(self, event: dict[str, Any], sync: bool = True) -> dict[str, Any]:
        """Append one event (timestamped now unless it carries its own time). ``sync=False``
        leaves it to the next synced write (or ``close``) to reach the disk: an import writes
        thousands of events and needs one fsync, not one each."""
        record = {"time": now(), **event}
        self.conversation.events.append(record)
        if self._pending:
            self._open()
        self._append(record, sync)
        return record

    def _append(self, record: dict[str, Any], sync: bool = True) -> None:
        if self._handle is None:
            return
        try:
            self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            if sync:
                self._handle.flush()
                os.fsync(self._handle.fileno())
        except OSError as error:
            self.close()
            raise TranscriptWriteError(
                f"cannot save the transcript {self.path} ({error.strerror or error}); "
                "the conversation goes on without saving"
            ) from error

    def close(self) -> None:
        self._pending = False
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.flush()
                os.fsync(self._handle.fileno())
                self._handle.close()
            self._handle = None


def _lock(handle: IO[str], path: Path) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: exclusive creation still keeps new files apart
        return
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        handle.close()
        raise EmochatError(f"{path.stem} is open in another emochat session") from error


def _open_exclusive(path: Path) -> IO[str]:
    try:
        paths.private_dir(path.parent)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
    except FileExistsError:
        raise  # the caller decides: another id, or a clear error
    except OSError as error:
        raise TranscriptWriteError(
            f"cannot create the transcript {path} ({error.strerror or error}); "
            "the conversation goes on without saving"
        ) from error
    handle = os.fdopen(descriptor, "a", encoding="utf-8")
    _lock(handle, path)
    return handle


def _open_for_append(path: Path) -> IO[str]:
    try:
        handle = path.open("a", encoding="utf-8")
    except OSError as error:
        raise TranscriptWriteError(
            f"cannot append to {path} ({error.strerror or error}); "
            "the conversation goes on without saving"
        ) from error
    _lock(handle, path)
    _end_torn_line(handle, path)
    return handle


def _end_torn_line(handle: IO[str], path: Path) -> None:
    """After a crash mid-write the file may end inside a line: end it, so the next record
    starts on a line of its own instead of joining the torn one (and being lost with it)."""
    with path.open("rb") as reader:
        reader.seek(0, os.SEEK_END)
        if reader.tell() == 0:
            return
        reader.seek(-1, os.SEEK_END)
        torn = reader.read(1) != b"\n"
    if torn:
        handle.write("\n")
        handle.flush()


def all_transcripts() -> list[Path]:
    """The conversations in the data folder (a link there is not one: it could lead anywhere)."""
    folder = transcripts_dir()
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.glob(f"*{SUFFIX}") if not path.is_symlink())


def find_transcript(key: str) -> Path:
    """``last``, an exact id, a unique id prefix, or a path; an unknown id lists close ones."""
    candidate = Path(key).expanduser()
    if candidate.suffix == SUFFIX and candidate.is_file():
        return candidate
    known = all_transcripts()
    if key == "last":
        if not known:
            raise EmochatError("there are no saved conversations yet")
        return max(known, key=lambda path: (path.stat().st_mtime, path.name))
    ids = [path.stem for path in known]
    if key in ids:
        return known[ids.index(key)]
    prefixed = [path for path in known if path.stem.startswith(key)]
    if len(prefixed) == 1:
        return prefixed[0]
    close = [p.stem for p in prefixed] or difflib.get_close_matches(key, ids, n=5, cutoff=0.5)
    hint = f"; did you mean: {', '.join(close[:5])}" if close else ""
    raise EmochatError(f"no conversation {key!r}{hint}")


def import_document(document: Any, warn: Progress = no_progress) -> Path:
    """Write an exported JSON document back as a transcript; returns the new file. An id that is
    unsafe as a file name, or already taken, is replaced by a new one; events of the wrong shape
    are skipped with a warning. One fsync for the whole file."""
    if not isinstance(document, dict) or not isinstance(document.get("header"), dict):
        raise EmochatError("not an emochat JSON export (no header)")
    events = document.get("events", [])
    if not isinstance(events, list):
        raise EmochatError("not an emochat JSON export (events must be a list)")
    header = dict(document["header"])
    header.pop("type", None)
    header.pop("format", None)
    for name in clean_header(header):
        warn(f"the header's {name} is malformed and was ignored")
    if "id" in header and (transcripts_dir() / f"{header['id']}{SUFFIX}").exists():
        del header["id"]
    writer = TranscriptWriter.create({**header, "created": header.get("created") or now()})
    try:
        for index, event in enumerate(events):
            problem = record_problem(event)
            if problem is not None:
                warn(f"event {index} holds {problem} and was skipped")
                continue
            writer.write(event, sync=False)
    finally:
        writer.close()
    return writer.path


def delete_transcript(key: str) -> Path:
    """Delete a saved conversation named by its exact id: only a transcript in the data folder,
    and not one that a running session holds open."""
    if not is_safe_id(key):
        raise EmochatError(f"{key!r} is not a conversation id (see `emochat transcripts list`)")
    path = transcripts_dir() / f"{key}{SUFFIX}"
    if not path.is_file() or path.is_symlink():
        ids = [known.stem for known in all_transcripts()]
        close = difflib.get_close_matches(key, ids, n=5)
        prefixed = [stem for stem in ids if stem.startswith(key)]
        hint = f"; did you mean: {', '.join((prefixed or close)[:5])}" if prefixed or close else ""
        raise EmochatError(f"no conversation {key!r} to delete (give its whole id){hint}")
    try:
        handle = path.open("a", encoding="utf-8")
    except OSError as error:
        raise EmochatError(f"cannot delete {key}: {error.strerror or error}") from error
    try:
        _lock(handle, path)  # raises, closing it, when a session writes to it
        path.unlink()
    except OSError as error:
        raise EmochatError(f"cannot delete {key}: {error.strerror or error}") from error
    finally:
        handle.close()
    return path
