"""The app's widgets: the emotion sidebar, chat messages, the prompt, the status line."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.color import Color
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Markdown, Static, TextArea

from emochat.emotion import AXES, EmotionVector, expressed_gap
from emochat.terminal import inert
from emochat.transcripts import Exchange


def _blend(color: str | None, background: str | None, strength: float) -> str:
    """The pole colour, faded toward the background for weak values."""
    base = Color.parse(color or "#888888")
    back = Color.parse(background or "#000000")
    return base.blend(back, 1 - (0.35 + 0.65 * min(1.0, abs(strength)))).hex


class AxisBar(Static):
    """One bipolar axis: a bar from the centre, the value, a marker (◆) where the detector
    read your last message and one (○) where it read the last reply. Two lines (both pole
    names above the bar) where the sidebar has room; one line (the leading pole's name, then
    the bar) where it is compact. The bar takes the width it is given."""

    value: reactive[float] = reactive(0.0)
    reading: reactive[float | None] = reactive(None)
    expressed: reactive[float | None] = reactive(None)  # the last reply, read back
    selected: reactive[bool] = reactive(False)

    def __init__(self, index: int) -> None:
        super().__init__(classes="axis")
        self.index = index
        self.axis = AXES[index]

    def _bar(self, half: int, colour: str) -> Text:
        cells = [("─", "dim")] * half + [("│", "")] + [("─", "dim")] * half
        for step in range(1, round(abs(self.value) * half) + 1):
            cells[half + step if self.value > 0 else half - step] = ("█", colour)
        theme = self.app.current_theme
        for value, mark, colour_name in (
            (self.expressed, "○", theme.secondary or "cyan"),
            (self.reading, "◆", theme.accent or "yellow"),  # drawn last: it wins a shared cell
        ):
            if value is not None:
                cells[half + round(max(-1.0, min(1.0, value)) * half)] = (
                    mark,
                    f"bold {colour_name}",
                )
        text = Text()
        for char, style in cells:
            text.append(char, style=style)
        return text

    def render(self) -> Text:
        theme = self.app.current_theme
        value = self.value
        colour = _blend(theme.success if value >= 0 else theme.error, theme.background, value)
        selected = "reverse" if self.selected else ""
        width = max(self.size.width, 16)
        number = Text(f" {value:+.2f}", style=f"bold {colour}")
        if self.size.height <= 1:
            name = self.axis.positive if value >= 0 else self.axis.negative
            label = Text(f"{name[:12]:<12}", style=selected)
            half = max(2, (width - 12 - len(number)) // 2)
            return Text.assemble(label, self._bar(half, colour), number)
        half = max(3, (width - len(number) - 1) // 2)
        negative, positive = self.axis.negative, self.axis.positive
        gap = max(1, 2 * half + 1 + len(number) - len(negative) - len(positive))
        return Text.assemble(
            Text(negative + " " * gap + positive, style=selected),
            "\n",
            self._bar(half, colour),
            number,
        )


class EmotionSidebar(Vertical, can_focus=True):
    """The eight axes, the mood in words, and whether it is locked. Focus it (Tab) to steer
    with plain keys, which every terminal sends intact: ↑↓ pick an axis, ←→ nudge it, a pole's
    letter sets its preset, 0 neutral."""

    BINDINGS = [
        Binding("up", "app.select_axis(-1)", "Previous axis", show=False),
        Binding("down", "app.select_axis(1)", "Next axis", show=False),
        Binding("left", "app.nudge(-1)", "Nudge −", show=False),
        Binding("right", "app.nudge(1)", "Nudge +", show=False),
    ]

    class PresetKey(Message):
        """A preset letter typed while the sidebar has focus."""

        def __init__(self, character: str) -> None:
            super().__init__()
            self.character = character

    def compose(self) -> ComposeResult:
        yield Static("", id="mood-title")
        for index in range(len(AXES)):
            yield AxisBar(index)
        yield Static("", id="read-back")
        yield Static("◆ your last message · Tab: steer here", id="legend")

    def on_key(self, event) -> None:  # type: ignore[no-untyped-def]
        if event.character and event.character.isalnum() and len(event.character) == 1:
            event.stop()
            self.post_message(self.PresetKey(event.character.lower()))

    def show(
        self,
        vector: EmotionVector,
        reading: EmotionVector | None,
        policy: str,
        selected: int,
        expressed: tuple[EmotionVector, EmotionVector] | None = None,
    ) -> None:
        """The mood, your last message's reading, and ``expressed``: the last reply's mood as
        asked and as read back (``None`` where it was not read back)."""
        lock = "🔒 locked" if policy == "locked" else f"policy: {policy}"
        title = self.query_one("#mood-title", Static)
        title.update(Text.assemble(("Mood ", "bold"), vector.describe(limit=2), f"\n{lock}"))
        read_back = None if expressed is None else expressed[1]
        for bar in self.query(AxisBar):
            bar.value = vector[bar.index]
            bar.reading = None if reading is None else reading[bar.index]
            bar.expressed = None if read_back is None else read_back[bar.index]
            bar.selected = bar.index == selected
        line = self.query_one("#read-back", Static)
        line.display = expressed is not None
        if expressed is not None:
            line.update(f"○ last reply: {expressed_gap(*expressed):.2f} from asked")


class UserMessage(Static):
    def __init__(self, text: str) -> None:
        super().__init__(Text(inert(text)), classes="user-message")


def reply_markdown(exchange: Exchange) -> str:
    """A reply as shown: its text and how it ended, where that was not by itself."""
    reply = inert(exchange.reply)
    if exchange.cancelled or not exchange.answered:
        return f"{reply}\n\n*— stopped*".lstrip()
    if exchange.truncated:
        return f"{reply}\n\n*— cut at the length limit · Ctrl+G goes on*"
    return reply


class AssistantMessage(Markdown):
    """A reply: streamed as Markdown while it is written, re-rendered once at the end."""

    def __init__(self, markdown: str = "") -> None:
        super().__init__(markdown, classes="assistant-message")


class ExchangeView(Vertical):
    """One prompt and its reply (empty while it is being written)."""

    def __init__(self, exchange: Exchange, live: bool = False) -> None:
        super().__init__(classes="exchange")
        self.exchange = exchange
        self.live = live

    def compose(self) -> ComposeResult:
        yield UserMessage(self.exchange.prompt)
        yield AssistantMessage("" if self.live else reply_markdown(self.exchange))

    @property
    def reply_view(self) -> AssistantMessage:
        return self.query_one(AssistantMessage)


class PromptInput(TextArea):
    """Multi-line prompt: Enter sends, Ctrl+J (or Shift+Enter) starts a new line, Up on the
    first line and Down on the last walk through earlier prompts."""

    BINDINGS = [
        Binding("enter", "submit", "Send", id="send", show=False, priority=True),
        Binding(
            "ctrl+j,shift+enter", "newline", "New line", id="newline", show=False, priority=True
        ),
    ]

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class _Send(Message):
        """Queued behind the keys typed before Enter, so it reads the prompt they made."""

    class _Newline(Message):
        pass

    def __init__(self) -> None:
        super().__init__(
            id="prompt",
            soft_wrap=True,
            show_line_numbers=False,
            placeholder="Write a message · Enter sends · F1 keys · F2 chats",
        )
        self.sent: list[str] = []  # earlier prompts, for Up and Down
        self._recall = 0
        self._draft = ""

    # A priority binding runs as the key arrives at the app, but the keys typed before it may
    # still wait in this widget's queue (a paste without bracketed paste, scripted input):
    # the actions post to that queue, behind them.
    def action_submit(self) -> None:
        self.post_message(self._Send())

    def action_newline(self) -> None:
        self.post_message(self._Newline())

    def _on_prompt_input__send(self, message: _Send) -> None:
        message.stop()
        text = self.text.strip()
        if text:
            if not self.sent or self.sent[-1] != text:
                self.sent.append(text)
            self._recall = len(self.sent)
            self.post_message(self.Submitted(text))

    def _on_prompt_input__newline(self, message: _Newline) -> None:
        message.stop()
        self.insert("\n")

    def action_cursor_up(self, select: bool = False) -> None:
        if self.cursor_location[0] == 0 and self.sent and not select:
            if self._recall == len(self.sent):
                self._draft = self.text
            self._recall = max(0, self._recall - 1)
            self.restore(self.sent[self._recall])
            return
        super().action_cursor_up(select)

    def action_cursor_down(self, select: bool = False) -> None:
        last_line = self.cursor_location[0] == self.document.line_count - 1
        if last_line and self._recall < len(self.sent) and not select:
            self._recall += 1
            self.restore(self.sent[self._recall] if self._recall < len(self.sent) else self._draft)
            return
        super().action_cursor_down(select)

    def restore(self, text: str) -> None:
        self.load_text(text)
        self.move_cursor(self.document.end)


class StatusLine(Static):
    """The model and the chat's settings on one line: the longest form that fits the width."""

    forms: reactive[tuple[str, ...]] = reactive(("Starting…",))

    def render(self) -> str:
        width = self.size.width - 2
        return next((form for form in self.forms if len(form) <= width), self.forms[-1][:width])
