"""The emochat app: chat on the left, the emotion sidebar on the right, status at the bottom.

The app talks to the model only through a :class:`~emochat.session.ChatSession` that a
``connect`` function builds in a worker thread (so the window is up at once while the model
loads); tests hand it a session around a fake backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, LoadingIndicator, Markdown, Static

from emochat.emotion import AXES, EmotionVector, preset
from emochat.errors import EmochatError
from emochat.session import ChatSession
from emochat.transcripts_cli import to_markdown
from emochat.tui.themes import DEFAULT_THEME, load_themes
from emochat.tui.widgets import (
    AssistantMessage,
    EmotionSidebar,
    PromptInput,
    UserMessage,
)

Progress = Callable[[str], None]
Connect = Callable[[Progress], ChatSession]
NUDGE = 0.1

# (pole or "neutral", key): presets work while the prompt has focus, so they are Alt chords.
PRESET_KEYS: tuple[tuple[str, str], ...] = (
    ("neutral", "alt+0"),
    ("joy", "alt+j"),
    ("sadness", "alt+s"),
    ("courage", "alt+c"),
    ("fear", "alt+f"),
    ("acceptance", "alt+a"),
    ("disgust", "alt+d"),
    ("calmness", "alt+m"),
    ("anger", "alt+g"),
    ("expectation", "alt+e"),
    ("surprise", "alt+u"),
    ("trust", "alt+t"),
    ("distrust", "alt+x"),
    ("interest", "alt+i"),
    ("boredom", "alt+b"),
    ("empathy", "alt+y"),
    ("indifference", "alt+n"),
)

APP_BINDINGS: list[Binding] = [
    Binding("f1", "help", "Keys", id="help"),
    Binding("escape", "cancel_reply", "Stop reply", id="cancel_reply", priority=True),
    Binding("ctrl+l", "toggle_lock", "Lock mood", id="toggle_lock", priority=True),
    Binding("alt+up", "select_axis(-1)", "Previous axis", id="axis_previous", priority=True),
    Binding("alt+down", "select_axis(1)", "Next axis", id="axis_next", priority=True),
    Binding("alt+left", "nudge(-1)", "Nudge axis −", id="nudge_down", priority=True),
    Binding("alt+right", "nudge(1)", "Nudge axis +", id="nudge_up", priority=True),
    Binding("ctrl+y", "copy_reply", "Copy reply", id="copy_reply", priority=True),
    Binding("ctrl+s", "export", "Export", id="export", priority=True),
    Binding("ctrl+t", "next_theme", "Theme", id="next_theme", priority=True),
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


@dataclass
class AppOptions:
    theme: str = DEFAULT_THEME
    keymap: dict[str, str] | None = None
    export_dir: Any = None  # a Path; where Ctrl+S writes Markdown exports
    remember_theme: Callable[[str], None] | None = None


class HelpScreen(ModalScreen[None]):
    """Every key, by binding id, so users know what to remap."""

    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        text = Text("Keys  (remap in config.toml [keys] by id)\n\n", style="bold")
        for key, description, binding_id in self.rows:
            text.append(f"{key:<16}", style="bold")
            text.append(f"{description:<24}")
            text.append(f"{binding_id}\n", style="dim")
        text.append("\nEnter sends · Ctrl+J new line · Up recalls · Ctrl+P commands · Ctrl+Q quits")
        with VerticalScroll(id="help-body"):
            yield Static(text)


class EmochatApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "emochat"
    BINDINGS = APP_BINDINGS

    def __init__(self, connect: Connect, options: AppOptions | None = None) -> None:
        super().__init__()
        self.options = options or AppOptions()
        self._connect = connect
        self.session: ChatSession | None = None
        self.selected_axis = 0
        self.generating = False
        self._reply: Any = None
        self._last_reply_text = ""
        self._speed = ""
        for theme in load_themes(lambda message: self.notify(message, severity="warning")):
            self.register_theme(theme)
        self._unknown_theme = self.options.theme not in self.available_themes
        self.theme = DEFAULT_THEME if self._unknown_theme else self.options.theme
        if self.options.keymap:
            self.set_keymap(self.options.keymap)

    # ----------------------------------------------------------------- layout
    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="chat-column"):
                with VerticalScroll(id="chat"):
                    yield LoadingIndicator(id="loading")
                yield PromptInput()
            yield EmotionSidebar(id="sidebar")
        yield Static("Starting…", id="status")
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
            session = self._connect(progress)
        except EmochatError as error:
            self.call_from_thread(self._connect_failed, str(error))
            return
        except Exception as error:
            self.call_from_thread(self._connect_failed, f"{type(error).__name__}: {error}")
            return
        self.call_from_thread(self._connected, session)

    def _connected(self, session: ChatSession) -> None:
        self.session = session
        self.query_one("#loading").remove()
        chat = self.query_one("#chat", VerticalScroll)
        for message in session.history:
            widget = (
                UserMessage(message["content"])
                if message["role"] == "user"
                else (AssistantMessage())
            )
            chat.mount(widget)
            if isinstance(widget, AssistantMessage):
                widget.update(message["content"])
        chat.scroll_end(animate=False)
        self.refresh_sidebar()
        self.refresh_status()

    def _connect_failed(self, message: str) -> None:
        self.query_one("#loading").remove()
        self.set_status(f"Model not loaded: {message}")
        self.notify(message, title="Could not load the model", severity="error", timeout=30)

    # ----------------------------------------------------------------- status
    def set_status(self, text: str) -> None:
        self.query_one("#status", Static).update(text)

    def refresh_status(self) -> None:
        session = self.session
        if session is None:
            return
        info = session.backend.info
        parts = [info.name, info.backend, info.quant, info.device]
        if self._speed:
            parts.append(self._speed)
        parts.append(f"detector {session.detector.name if session.detector else 'off'}")
        parts.append(f"policy {session.state.policy}")
        if not session.transcript.saving:
            parts.append("not saving")
        self.set_status(" · ".join(parts))

    def refresh_sidebar(self) -> None:
        sidebar = self.query_one(EmotionSidebar)
        if self.session is None:
            sidebar.show(EmotionVector(), None, "mirror", self.selected_axis)
            return
        reading = self.session.last_reading
        sidebar.show(
            self.session.state.vector,
            reading.vector if reading else None,
            self.session.state.policy,
            self.selected_axis,
        )

    # ------------------------------------------------------------------ turns
    @on(PromptInput.Submitted)
    def send(self, event: PromptInput.Submitted) -> None:
        if self.session is None:
            self.notify("The model is still loading.", severity="warning")
            return
        if self.generating:
            self.notify("A reply is still coming; Esc stops it.", severity="warning")
            return
        prompt = self.query_one(PromptInput)
        prompt.clear()
        chat = self.query_one("#chat", VerticalScroll)
        chat.mount(UserMessage(event.text))
        reply_view = AssistantMessage()
        chat.mount(reply_view)
        chat.anchor()
        self.generating = True
        self.run_turn(event.text, reply_view)

    @work(thread=True, exclusive=True, group="turn")
    def run_turn(self, text: str, view: AssistantMessage) -> None:
        session = self.session
        assert session is not None
        reply = None
        try:
            session.submit(text)
            self.call_from_thread(self.refresh_sidebar)
            reply = session.reply()
            self._reply = reply
            stream = self.call_from_thread(Markdown.get_stream, view)
            for piece in reply:
                self.call_from_thread(stream.write, piece)
        except Exception as error:
            # The model failed, or the app is closing: stop, and record what was written.
            if reply is not None:
                reply.cancel()
                reply.finish()
                session.finish(reply)
            if self.is_running:
                message = str(error) if isinstance(error, EmochatError) else repr(error)
                self.call_from_thread(self._turn_failed, message, text)
            return
        session.finish(reply)
        self.call_from_thread(stream.stop)
        self.call_from_thread(self._turn_done, reply, text, view)

    def _turn_done(self, reply: Any, prompt_text: str, view: AssistantMessage) -> None:
        self.generating = False
        self._reply = None
        self._last_reply_text = reply.text
        view.update(reply.text + ("\n\n*— stopped*" if reply.stats.cancelled else ""))
        speed = reply.stats.tokens_per_second
        self._speed = f"{speed:.1f} tok/s" if speed else ""
        if reply.stats.cancelled:
            # Like the reply never happened for the model: the prompt comes back to edit.
            self.query_one(PromptInput).restore(prompt_text)
        self.refresh_status()
        self.refresh_sidebar()

    def _turn_failed(self, message: str, prompt_text: str) -> None:
        self.generating = False
        self._reply = None
        self.query_one(PromptInput).restore(prompt_text)
        self.notify(message, title="Reply failed", severity="error", timeout=15)

    # ---------------------------------------------------------------- actions
    def action_cancel_reply(self) -> None:
        if self._reply is not None:
            self._reply.cancel()

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

    def action_toggle_lock(self) -> None:
        if self.session is None:
            return
        self.session.set_locked(not self.session.state.locked)
        self.notify("Mood locked" if self.session.state.locked else "Mood follows the chat again")
        self.refresh_sidebar()
        self.refresh_status()

    def action_select_axis(self, step: int) -> None:
        self.selected_axis = (self.selected_axis + step) % len(AXES)
        self.refresh_sidebar()

    def action_nudge(self, direction: int) -> None:
        if self.session is None:
            return
        vector = self.session.state.vector
        index = self.selected_axis
        self._set_mood(vector.with_axis(index, vector[index] + direction * NUDGE), "nudge")

    def action_copy_reply(self) -> None:
        if not self._last_reply_text:
            self.notify("No reply to copy yet.", severity="warning")
            return
        self.copy_to_clipboard(self._last_reply_text)
        self.notify("Copied the last reply.")

    def action_export(self) -> None:
        if self.session is None:
            return
        conversation = self.session.transcript.conversation
        folder = self.options.export_dir
        if folder is None:
            self.notify("No export folder configured.", severity="warning")
            return
        target = folder / f"{conversation.id}.md"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            target.write_text(to_markdown(conversation), encoding="utf-8")
        except OSError as error:
            self.notify(f"Cannot write {target}: {error.strerror}", severity="error")
            return
        self.notify(f"Exported to {target}")

    def action_next_theme(self) -> None:
        names = sorted(name for name in self.available_themes if name.startswith("emochat-"))
        current = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(current + 1) % len(names)]

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

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Stop reply", "Stop the reply being written", self.action_cancel_reply)
        yield SystemCommand("Lock or unlock mood", "Freeze the mood", self.action_toggle_lock)
        yield SystemCommand("Copy last reply", "To the clipboard", self.action_copy_reply)
        yield SystemCommand("Export conversation", "As Markdown", self.action_export)
        yield SystemCommand("Next theme", "Cycle emochat's themes", self.action_next_theme)
        yield SystemCommand("Show keys", "Every key and its id", self.action_help)
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
