"""F2: every saved chat, newest first, with a filter that searches their text. Enter opens one,
Ctrl+N starts a new one, F2 renames (Ctrl+R too), Delete deletes after asking."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Static

from emochat.chats import Chats, ChatSummary, clip
from emochat.errors import EmochatError
from emochat.terminal import inert
from emochat.tui.dialogs import ConfirmScreen, TextScreen

# What the screen asks the app to do when it closes: ("open", id), ("new", "") or None.
Choice = tuple[str, str] | None


class ChatsScreen(ModalScreen[Choice]):
    BINDINGS = [
        Binding("escape", "dismiss(None)", "Close", id="chats_close"),
        Binding("ctrl+n", "new_chat", "New chat", id="chats_new", priority=True),
        Binding("f2,ctrl+r", "rename", "Rename", id="chats_rename", priority=True),
        Binding("delete,ctrl+d", "delete", "Delete", id="chats_delete", priority=True),
    ]

    def __init__(self, chats: Chats) -> None:
        super().__init__()
        self.chats = chats
        self.summaries: list[ChatSummary] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="chats-body"):
            yield Static("Chats · Enter opens · Ctrl+N new · F2 rename · Del delete · Esc back")
            yield Input(placeholder="Filter: words in a title or any message", id="chat-filter")
            yield DataTable(id="chat-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Title", "Changed", "Turns", "Mood")
        self.load()
        self.query_one(Input).focus()

    @on(Input.Changed, "#chat-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.load(event.value.strip())

    @on(Input.Submitted, "#chat-filter")
    def _open_first(self) -> None:
        self._open(self.query_one(DataTable).cursor_row)

    @work(thread=True, exclusive=True, group="chat-list")
    def load(self, query: str = "") -> None:
        summaries = self.chats.summaries(query)
        self.app.call_from_thread(self._show, summaries)

    def _show(self, summaries: list[ChatSummary]) -> None:
        self.summaries = summaries
        table = self.query_one(DataTable)
        table.clear()
        current = self.chats.current.id
        for summary in summaries:
            marker = "▸ " if summary.id == current else ""
            title = marker + summary.title
            if summary.snippet and summary.snippet != summary.title:
                title += f"  · {summary.snippet}"
            table.add_row(inert(clip(title, 44)), summary.updated, str(summary.turns), summary.mood)
        if not summaries:
            table.add_row("(no saved chats)" if not self.query_one(Input).value else "(none match)")

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self._open(event.cursor_row)

    def _selected(self, row: int | None = None) -> ChatSummary | None:
        row = self.query_one(DataTable).cursor_row if row is None else row
        return self.summaries[row] if 0 <= row < len(self.summaries) else None

    def _open(self, row: int) -> None:
        summary = self._selected(row)
        if summary is not None:
            self.dismiss(("open", summary.id))

    def action_new_chat(self) -> None:
        self.dismiss(("new", ""))

    def action_rename(self) -> None:
        summary = self._selected()
        if summary is None:
            return

        def rename(title: str | None) -> None:
            if title:
                self._attempt(lambda: self.chats.rename(summary.id, title))

        self.app.push_screen(TextScreen("New title", inert(summary.title)), rename)

    def action_delete(self) -> None:
        summary = self._selected()
        if summary is None:
            return

        def delete(sure: bool | None) -> None:
            if sure:
                self._attempt(lambda: self.chats.delete(summary.id))

        title = inert(summary.title)
        question = f"Delete “{title}” ({summary.turns} turns)? This cannot be undone."
        self.app.push_screen(ConfirmScreen(question, yes="Delete"), delete)

    def _attempt(self, change) -> None:  # type: ignore[no-untyped-def]
        try:
            change()
        except EmochatError as error:
            self.notify(str(error), severity="error")
        self.load(self.query_one(Input).value.strip())
