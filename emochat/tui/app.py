"""The emochat app: chat on the left, the emotion sidebar on the right, status at the bottom.

The app talks to the model only through :class:`~emochat.chats.Chats` and the session it holds,
which a ``connect`` function builds in a worker thread (so the window is up at once while the
model loads); tests hand it sessions around a fake backend. Every turn runs in one worker
through one session method, which commits or rolls back; the app only shows what the session
says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Button, Footer, LoadingIndicator, Markdown, Static

from emochat.chats import Chats
from emochat.clipboard import copy_with_system_tool
from emochat.emotion import AXES, EmotionVector, preset
from emochat.errors import EmochatError
from emochat.export import to_markdown
from emochat.paths import write_private
from emochat.progress import Progress
from emochat.session import ChatSession, OnPiece, TurnResult
from emochat.terminal import inert
from emochat.transcripts import Exchange
from emochat.tui.chats_screen import ChatsScreen, Choice
from emochat.tui.help_screen import HelpScreen
from emochat.tui.themes import DEFAULT_THEME, load_themes
from emochat.tui.widgets import (
    EmotionSidebar,
    ExchangeView,
    PromptInput,
    StatusLine,
    reply_markdown,
)

Connect = Callable[[Progress], Chats]
NUDGE = 0.1
# Exchanges mounted at once: a long conversation opens at its end at once, and "Show earlier"
# mounts the ones before, a page at a time.
PAGE = 40

# (pole or "neutral", key). Alt+letter arrives as Esc+letter from xterm-compatible terminals,
# tmux and the Linux console alike, except b and f (readline's word moves, which Textual reads
# as Ctrl+←/→) and digits (read as symbols such as º): fear is W(orry), boredom is O, neutral
# is Z(ero). The same letters set the presets while the mood panel has focus.
PRESET_KEYS: tuple[tuple[str, str], ...] = (
    ("neutral", "alt+z"),
    ("joy", "alt+j"),
    ("sadness", "alt+s"),
    ("courage", "alt+c"),
    ("fear", "alt+w"),
    ("acceptance", "alt+a"),
    ("disgust", "alt+d"),
    ("calmness", "alt+m"),
    ("anger", "alt+g"),
    ("expectation", "alt+e"),
    ("surprise", "alt+u"),
    ("trust", "alt+t"),
    ("distrust", "alt+x"),
    ("interest", "alt+i"),
    ("boredom", "alt+o"),
    ("empathy", "alt+y"),
    ("indifference", "alt+n"),
)
PANEL_LETTERS: dict[str, str] = {key.removeprefix("alt+"): pole for pole, key in PRESET_KEYS}
PANEL_LETTERS["0"] = "neutral"

APP_BINDINGS: list[Binding] = [
    Binding("f1", "help", "Keys", id="help"),
    Binding("f2", "chats", "Chats", id="chats"),
    Binding("ctrl+n", "new_chat", "New", id="new_chat", priority=True),
    # Not a priority: while no reply streams, Esc closes help, the palette and dialogs.
    Binding("escape", "cancel_reply", "Stop", id="cancel_reply"),
    Binding("ctrl+g", "continue_reply", "Go on", id="continue_reply", priority=True),
    Binding("ctrl+r", "regenerate", "Retry", id="regenerate", priority=True),
    Binding("f3", "edit_last", "Edit last", id="edit_last", show=False),
    Binding("ctrl+l", "toggle_lock", "Lock mood", id="toggle_lock", show=False, priority=True),
    Binding("alt+up", "select_axis(-1)", "Previous axis", id="axis_previous", show=False),
    Binding("alt+down", "select_axis(1)", "Next axis", id="axis_next", show=False),
    Binding("alt+left", "nudge(-1)", "Nudge axis −", id="nudge_down", show=False, priority=True),
    Binding("alt+right", "nudge(1)", "Nudge axis +", id="nudge_up", show=False, priority=True),
    Binding("ctrl+y", "copy_reply", "Copy reply", id="copy_reply", show=False, priority=True),
    Binding("ctrl+s", "export", "Export", id="export", show=False, priority=True),
    Binding("ctrl+t", "next_theme", "Theme", id="next_theme", show=False, priority=True),
    *(
        Binding(
            key,
            f"preset('{pole}')",
            f"Mood: {pole}",
            id=f"preset_{pole}",
            show=False,
            priority=True,
        )
        for pole, key in PRESET_KEYS
    ),
]

HINT = (
    "Say something. The mood on the right follows what you write and steers the reply.\n"
    "Tab moves to it (↑↓ axis, ←→ nudge, letters presets) · F2 your chats · F1 every key"
)


@dataclass
class AppOptions:
    theme: str = DEFAULT_THEME
    keymap: dict[str, str] | None = None
    export_dir: Path | None = None  # where Ctrl+S exports and Ctrl+Y's fallback write
    remember_theme: Callable[[str], None] | None = None
    system_copy: Callable[[str], str | None] = copy_with_system_tool


class EmochatApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "emochat"
    BINDINGS = APP_BINDINGS
    # Under 100 columns or 34 rows the sidebar turns compact: one line per axis.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (34, "-tall")]

    generating: reactive[bool] = reactive(False, bindings=True)
    selected_axis: reactive[int] = reactive(0)

    def __init__(self, connect: Connect, options: AppOptions | None = None) -> None:
        super().__init__()
        self.options = options or AppOptions()
        self._connect = connect
        self.chats: Chats | None = None
        self._speed = ""
        self._hidden = 0  # exchanges before the first one mounted
        self._shown: ChatSession | None = None  # the session on screen
        for theme in load_themes(lambda message: self.notify(message, severity="warning")):
            self.register_theme(theme)
        self._unknown_theme = self.options.theme not in self.available_themes
        self.theme = DEFAULT_THEME if self._unknown_theme else self.options.theme
        if self.options.keymap:
            self.set_keymap(self.options.keymap)

    @property
    def session(self) -> ChatSession | None:
        return self.chats.current if self.chats else None

    # ----------------------------------------------------------------- layout
    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="chat-column"):
                with VerticalScroll(id="chat"):
                    yield LoadingIndicator(id="loading")
                yield PromptInput()
            yield EmotionSidebar(id="sidebar")
        yield StatusLine(id="status")
        yield Footer()

    def on_mount(self) -> None:
        if self._unknown_theme:
            themes = ", ".join(sorted(n for n in self.available_themes if n.startswith("emochat")))
            self.notify(f"No theme {self.options.theme!r}; try {themes}", severity="warning")
        self.query_one(PromptInput).focus()
        self.refresh_sidebar()
        self.connect_session()

    # ---------------------------------------------------------------- loading
    @work(thread=True, exclusive=True, group="connect")
    def connect_session(self) -> None:
        def progress(message: str) -> None:
            self.call_from_thread(self.set_status, message)

        try:
            chats = self._connect(progress)
        except EmochatError as error:
            self.call_from_thread(self._connect_failed, str(error))
            return
        except Exception as error:
            self.call_from_thread(self._connect_failed, f"{type(error).__name__}: {error}")
            return
        self.call_from_thread(self._connected, chats)

    def _connected(self, chats: Chats) -> None:
        self.chats = chats
        self.query_one("#loading").remove()
        self.show_session()

    def _connect_failed(self, message: str) -> None:
        self.query_one("#loading").remove()
        self.set_status(f"Model not loaded: {message}")
        self.notify(message, title="Could not load the model", severity="error", timeout=30)

    def show_session(self) -> None:
        """Show the current chat as it stands: its last page of exchanges, stopped and cut
        replies marked, and its mood."""
        session = self.session
        assert session is not None
        self._shown = session
        chat = self.query_one("#chat", VerticalScroll)
        chat.remove_children()
        exchanges = session.exchanges()
        self._hidden = max(0, len(exchanges) - PAGE)
        if self._hidden:
            chat.mount(self._earlier_button())
        chat.mount_all(ExchangeView(exchange) for exchange in exchanges[self._hidden :])
        if not exchanges:
            chat.mount(Static(HINT, id="hint"))
        chat.scroll_end(animate=False)
        self.sub_title = inert(session.conversation.title) or "new chat"
        self._speed = ""
        self.refresh_sidebar()
        self.refresh_status()
        self.refresh_bindings()

    def _earlier_button(self) -> Button:
        return Button(f"Show earlier ({self._hidden} more)", id="earlier", variant="default")

    @on(Button.Pressed, "#earlier")
    def show_earlier(self) -> None:
        session = self.session
        assert session is not None
        chat = self.query_one("#chat", VerticalScroll)
        start = max(0, self._hidden - PAGE)
        views = [ExchangeView(exchange) for exchange in session.exchanges()[start : self._hidden]]
        self._hidden = start
        self.query_one("#earlier").remove()
        chat.mount_all(views, before=0)
        if self._hidden:
            chat.mount(self._earlier_button(), before=0)

    # ----------------------------------------------------------------- status
    def set_status(self, text: str) -> None:
        self.query_one(StatusLine).forms = (text,)

    def refresh_status(self) -> None:
        session = self.session
        if session is None:
            return
        info = session.model
        saving = [] if session.saving else ["not saving"]
        speed = [self._speed] if self._speed else []
        self.query_one(StatusLine).forms = (
            " · ".join(
                [
                    info.name,
                    info.backend,
                    info.quant,
                    info.device,
                    *speed,
                    f"detector {session.detector_name}",
                    f"policy {session.policy}",
                    *saving,
                ]
            ),
            " · ".join(
                [info.name, f"{info.backend} {info.quant}", *speed, session.policy, *saving]
            ),
            " · ".join([info.name, *speed, session.policy]),
        )

    def refresh_sidebar(self) -> None:
        sidebar = self.query_one(EmotionSidebar)
        session = self.session
        if session is None:
            sidebar.show(EmotionVector(), None, "mirror", self.selected_axis)
            return
        reading = session.last_reading
        expressed = session.last_expressed
        sidebar.show(
            session.emotion,
            reading.vector if reading else None,
            session.policy,
            self.selected_axis,
            None if expressed is None else (expressed[0], expressed[1].vector),
        )

    def watch_selected_axis(self) -> None:
        self.refresh_sidebar()

    # ------------------------------------------------------------------ turns
    def _idle_session(self) -> ChatSession | None:
        if self.session is None:
            self.notify("The model is still loading.", severity="warning")
            return None
        if self.generating:
            self.notify("A reply is still coming; Esc stops it.", severity="warning")
            return None
        return self.session

    def _last_view(self) -> ExchangeView | None:
        views = self.query(ExchangeView)
        return views.last() if views else None

    @on(PromptInput.Submitted)
    def send(self, event: PromptInput.Submitted) -> None:
        session = self._idle_session()
        if session is None:
            return
        self.query_one(PromptInput).clear()
        for hint in self.query("#hint"):
            hint.remove()
        view = ExchangeView(Exchange(prompt=event.text), live=True)
        chat = self.query_one("#chat", VerticalScroll)
        chat.mount(view)
        chat.anchor()
        text = event.text
        self._start(lambda on_piece: session.ask(text, on_piece, self._read), view, text)

    def _read(self) -> None:
        """The detector has read the message (show where the mood went, before the reply), or
        another finished sentence of the reply (show the mood it expresses so far)."""
        self.call_from_thread(self.refresh_sidebar)

    def _start(
        self, turn: Callable[[OnPiece], TurnResult], view: ExchangeView, prompt: str | None
    ) -> None:
        self.generating = True
        self.run_turn(turn, view, prompt)

    @work(thread=True, exclusive=True, group="turn")
    def run_turn(
        self, turn: Callable[[OnPiece], TurnResult], view: ExchangeView, prompt: str | None
    ) -> None:
        """Run one session turn, streaming its pieces into ``view``. ``prompt`` is the text
        sent (for a new turn), which comes back to the prompt if the turn does not stand."""
        stream: Any = None

        def on_piece(piece: str) -> None:
            nonlocal stream
            try:
                if stream is None:
                    stream = self.call_from_thread(Markdown.get_stream, view.reply_view)
                self.call_from_thread(stream.write, inert(piece))
            except RuntimeError:  # the app has closed; the session records the stopped reply
                pass

        try:
            result = turn(on_piece)
        except Exception as error:
            message = str(error) if isinstance(error, EmochatError) else repr(error)
            if self.is_running:
                self.call_from_thread(self._turn_failed, message, view, prompt, stream)
            return
        if self.is_running:
            self.call_from_thread(self._turn_done, result, view, prompt, stream)

    async def _turn_done(
        self, result: TurnResult, view: ExchangeView, prompt: str | None, stream: Any
    ) -> None:
        if stream is not None:
            await stream.stop()
        self.generating = False
        view.exchange = result.exchange
        await view.reply_view.update(reply_markdown(result.exchange))
        speed = result.tokens_per_second
        self._speed = f"{speed:.1f} tok/s" if speed else self._speed
        prompt_input = self.query_one(PromptInput)
        if result.broken:
            self.notify(f"{result.broken}; the reply is kept as stopped", severity="warning")
        if result.exchange.cancelled and prompt is not None and not prompt_input.text:
            # Like the turn never happened for the model: the prompt comes back to edit.
            prompt_input.restore(prompt)
        self.sub_title = inert(self.session.conversation.title) if self.session else ""
        self.refresh_status()
        self.refresh_sidebar()

    async def _turn_failed(
        self, message: str, view: ExchangeView, prompt: str | None, stream: Any
    ) -> None:
        if stream is not None:
            await stream.stop()
        self.generating = False
        if prompt is not None:  # the session withdrew the turn
            await view.remove()
            self.query_one(PromptInput).restore(prompt)
        elif self.session is not None:  # the last reply stands as it was
            await view.reply_view.update(reply_markdown(self.session.exchanges()[-1]))
        self.refresh_sidebar()
        self.notify(message, title="Reply failed", severity="error", timeout=15)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_reply":
            return self.generating
        if action == "continue_reply":
            last = self._last_view()
            return not self.generating and last is not None and last.exchange.truncated
        if action in ("regenerate", "edit_last"):
            return not self.generating and self._last_view() is not None
        return True

    # ---------------------------------------------------------------- actions
    def action_cancel_reply(self) -> None:
        if self.session is not None:
            self.session.stop()

    def action_regenerate(self) -> None:
        session, view = self._idle_session(), self._last_view()
        if session is None or view is None:
            return
        view.reply_view.update("")
        self._start(lambda on_piece: session.regenerate(on_piece, self._read), view, None)

    async def action_continue_reply(self) -> None:
        session, view = self._idle_session(), self._last_view()
        if session is None or view is None:
            return
        await view.reply_view.update(inert(view.exchange.reply))
        self._start(lambda on_piece: session.continue_reply(on_piece, self._read), view, None)

    async def action_edit_last(self) -> None:
        session, view = self._idle_session(), self._last_view()
        if session is None or view is None:
            return
        try:
            prompt = session.edit_last()
        except EmochatError as error:
            self.notify(str(error), severity="warning")
            return
        await view.remove()
        self.query_one(PromptInput).restore(prompt)
        self.refresh_bindings()

    def on_unmount(self) -> None:
        # Quitting mid-reply stops the model; the turn worker then records the stopped reply.
        self.action_cancel_reply()

    def _set_mood(self, vector: EmotionVector, source: str) -> None:
        if self.session is None:
            self.notify("The model is still loading.", severity="warning")
            return
        self.session.set_emotion(vector, source)
        self.refresh_sidebar()

    def action_preset(self, name: str) -> None:
        self._set_mood(preset(name), f"preset {name}")

    @on(EmotionSidebar.PresetKey)
    def _panel_letter(self, event: EmotionSidebar.PresetKey) -> None:
        pole = PANEL_LETTERS.get(event.character)
        if pole is not None:
            self.action_preset(pole)

    def action_toggle_lock(self) -> None:
        if self.session is None:
            return
        self.session.set_locked(not self.session.locked)
        self.notify("Mood locked" if self.session.locked else "Mood follows the chat again")
        self.refresh_sidebar()
        self.refresh_status()

    def action_select_axis(self, step: int) -> None:
        self.selected_axis = (self.selected_axis + step) % len(AXES)

    def action_nudge(self, direction: int) -> None:
        if self.session is None:
            return
        vector = self.session.emotion
        index = self.selected_axis
        self._set_mood(vector.with_axis(index, vector[index] + direction * NUDGE), "nudge")

    def action_copy_reply(self) -> None:
        replies = [e.reply for e in self.session.exchanges() if e.reply] if self.session else []
        if not replies:
            self.notify("No reply to copy yet.", severity="warning")
            return
        text = replies[-1]
        tool = self.options.system_copy(text)
        if tool is not None:
            self.notify(f"Copied the last reply ({tool}).")
            return
        # Only the terminal can reach the clipboard now, and it may drop the request unseen.
        self.copy_to_clipboard(text)
        saved = self._write_export("last-reply.md", text)
        where = f" It is also in {saved}." if saved else ""
        self.notify(
            "Asked the terminal to copy the last reply (OSC 52; tmux passes it on only with "
            f"set-clipboard on).{where}",
            timeout=10,
        )

    def _write_export(self, name: str, text: str) -> Path | None:
        folder = self.options.export_dir
        if folder is None:
            return None
        target = folder / name
        try:
            write_private(target, text)
        except OSError as error:
            self.notify(f"Cannot write {target}: {error.strerror}", severity="error")
            return None
        return target

    def action_export(self) -> None:
        if self.session is None:
            return
        if self.options.export_dir is None:
            self.notify("No export folder configured.", severity="warning")
            return
        conversation = self.session.conversation
        target = self._write_export(f"{conversation.id}.md", to_markdown(conversation))
        if target is not None:
            self.notify(f"Exported to {target}")

    def action_next_theme(self) -> None:
        names = sorted(name for name in self.available_themes if name.startswith("emochat-"))
        current = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(current + 1) % len(names)]
        self.notify(f"Theme: {self.theme}")

    def watch_theme(self, theme: str) -> None:
        if not self.is_running:  # the theme set in __init__ is already the remembered one
            return
        if self.options.remember_theme is not None:
            self.options.remember_theme(theme)
        self.refresh_sidebar()

    def action_help(self) -> None:
        rows = [
            (self.get_key_display(binding), binding.description, binding.id or "")
            for binding in APP_BINDINGS
        ]
        self.push_screen(HelpScreen(rows))

    # ------------------------------------------------------------------ chats
    def action_chats(self) -> None:
        if self.chats is None:
            self.notify("The model is still loading.", severity="warning")
            return
        self.push_screen(ChatsScreen(self.chats), self._chosen)

    def action_new_chat(self) -> None:
        self._chosen(("new", ""))

    def _chosen(self, choice: Choice) -> None:
        """After the chat list (or Ctrl+N): switch chats as asked; a chat deleted from the list
        while open has already been replaced, so show whichever is current."""
        if self.chats is None:
            return
        try:
            if choice is not None and choice[0] == "new":
                self.chats.new()
            elif choice is not None:
                self.chats.open(choice[1])
        except EmochatError as error:
            self.notify(str(error), severity="error")
            return
        if self._shown is not self.chats.current:
            self.show_session()
        self.sub_title = inert(self.chats.current.conversation.title) or "new chat"

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        commands = [
            ("Chats", "Open, rename or delete a saved chat", self.action_chats),
            ("New chat", "Start a new conversation", self.action_new_chat),
            ("Stop reply", "Stop the reply being written", self.action_cancel_reply),
            ("Regenerate reply", "A new sample for the last prompt", self.action_regenerate),
            ("Continue reply", "Go on where the length limit cut it", self.action_continue_reply),
            ("Edit last prompt", "Take the last turn back to edit it", self.action_edit_last),
            ("Lock or unlock mood", "Freeze the mood", self.action_toggle_lock),
            ("Copy last reply", "To the clipboard", self.action_copy_reply),
            ("Export conversation", "As Markdown", self.action_export),
            ("Next theme", "Cycle emochat's themes", self.action_next_theme),
            ("Show keys", "Every key and its id", self.action_help),
        ]
        for title, help_text, callback in commands:
            yield SystemCommand(title, help_text, callback)
        for pole, _ in PRESET_KEYS:
            yield SystemCommand(
                f"Mood: {pole}",
                f"Set the mood to {pole}",
                lambda pole=pole: self.action_preset(pole),
            )
        for policy in ("mirror", "soothe"):
            yield SystemCommand(
                f"Policy: {policy}",
                f"The mood {'mirrors' if policy == 'mirror' else 'soothes'} what you write",
                lambda policy=policy: self._set_policy(policy),
            )

    def _set_policy(self, policy: str) -> None:
        if self.session is None:
            return
        self.session.set_policy(policy)
        self.refresh_sidebar()
        self.refresh_status()
