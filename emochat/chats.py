"""Every conversation at once: the open one, starting and opening others, and the list, search,
rename and delete the chat list and ``emochat transcripts`` offer. The JSON Lines transcripts
are the only record; summaries are read from them each time. Nothing here imports Textual.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from emochat.errors import EmochatError
from emochat.progress import Progress
from emochat.session import ChatSession
from emochat.transcripts import (
    Conversation,
    TranscriptWriter,
    all_transcripts,
    delete_transcript,
    find_transcript,
    read_transcript,
    title_record,
)

# Builds the session for a saved conversation, or for a new one (None).
MakeSession = Callable[[Conversation | None], ChatSession]
SNIPPET_WIDTH = 60


@dataclass(frozen=True)
class ChatSummary:
    id: str
    path: Path
    title: str
    updated: str  # local time of the last change, "YYYY-MM-DD HH:MM"
    turns: int
    mood: str
    model: str
    snippet: str = ""  # where a search found its text


def clip(text: str, width: int) -> str:
    """At most ``width`` characters, an ellipsis marking a cut."""
    return text if len(text) <= width else text[: width - 1] + "…"


def _updated(path: Path) -> str:
    stamp = dt.datetime.fromtimestamp(path.stat().st_mtime)
    return stamp.strftime("%Y-%m-%d %H:%M")


def _snippet(text: str, query: str) -> str:
    """The words around the first match, on one line."""
    flat = " ".join(text.split())
    at = flat.lower().find(query.lower())
    start = max(0, at - SNIPPET_WIDTH // 3)
    piece = flat[start : start + SNIPPET_WIDTH]
    return ("…" if start else "") + piece + ("…" if start + SNIPPET_WIDTH < len(flat) else "")


def find_text(conversation: Conversation, query: str) -> str | None:
    """A snippet of where ``query`` (case-insensitive) occurs in the chat's title or in any
    message ever written in it, or None."""
    needle = query.lower()
    if needle in conversation.title.lower():
        return conversation.title
    for event in conversation.events:
        text = event.get("text")
        is_message = event.get("type") in ("user", "assistant") and isinstance(text, str)
        if is_message and needle in text.lower():
            return _snippet(text, query)
    return None


def summarize(conversation: Conversation, path: Path, snippet: str = "") -> ChatSummary:
    return ChatSummary(
        id=conversation.id or path.stem,
        path=path,
        title=conversation.title or "(no messages)",
        updated=_updated(path),
        turns=conversation.turns(),
        mood=conversation.final_emotion().describe(limit=2),
        model=str(conversation.header.get("model", "")),
        snippet=snippet,
    )


def list_chats(query: str = "", warn: Progress | None = None) -> list[ChatSummary]:
    """Saved conversations, most recently changed first; with ``query``, only those that
    mention it. A damaged file is skipped (``warn`` says which)."""
    paths = sorted(all_transcripts(), key=lambda path: path.stat().st_mtime, reverse=True)
    summaries = []
    for path in paths:
        try:
            conversation = read_transcript(path)
        except EmochatError as error:
            if warn is not None:
                warn(str(error))
            continue
        snippet = ""
        if query:
            found = find_text(conversation, query)
            if found is None:
                continue
            snippet = found
        summaries.append(summarize(conversation, path, snippet))
    return summaries


def rename_chat(path: Path, title: str) -> None:
    """Give a saved conversation a title (appended to its transcript, like every change)."""
    record = title_record(title)
    writer = TranscriptWriter.resume(read_transcript(path))
    try:
        writer.write(record)
    finally:
        writer.close()


class Chats:
    """The open conversation and the others: what the app's chat list drives."""

    def __init__(self, make_session: MakeSession, current: ChatSession) -> None:
        self._make_session = make_session
        self.current = current

    def summaries(self, query: str = "") -> list[ChatSummary]:
        return list_chats(query)

    def new(self) -> ChatSession:
        return self._switch(None)

    def open(self, key: str) -> ChatSession:
        path = find_transcript(key)
        if path == self.current.transcript_path:
            return self.current
        return self._switch(read_transcript(path))

    def _switch(self, conversation: Conversation | None) -> ChatSession:
        if self.current.busy:
            raise EmochatError("a reply is still being written; stop it first (Esc)")
        session = self._make_session(conversation)
        self.current.close()
        self.current = session
        return session

    def rename(self, key: str, title: str) -> None:
        path = find_transcript(key)
        if path == self.current.transcript_path:
            self.current.rename(title)
        else:
            rename_chat(path, title)

    def delete(self, key: str) -> None:
        """Delete a saved conversation (by its id); the open one is replaced by a new chat
        first, and one that another emochat holds open is refused."""
        if key == self.current.id and self.current.transcript_path.is_file():
            self.new()
        delete_transcript(key)
