"""The app's widgets: the emotion sidebar, chat messages, the prompt, the status line."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.color import Color
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Markdown, Static, TextArea

from emochat.emotion import AXES, EmotionVector

BAR_HALF = 10  # cells on each side of the centre line


def _blend(color: str | None, background: str | None, strength: float) -> str:
    """The pole colour, faded toward the background for weak values."""
    base = Color.parse(color or "#888888")
    back = Color.parse(background or "#000000")
    return base.blend(back, 1 - (0.35 + 0.65 * min(1.0, abs(strength)))).hex


class AxisBar(Static):
    """One bipolar axis: both pole names, a bar from the centre, the value, and a marker (◆)
    where the last detector reading was."""

    value: reactive[float] = reactive(0.0)
    reading: reactive[float | None] = reactive(None)
    selected: reactive[bool] = reactive(False)

    def __init__(self, index: int) -> None:
        super().__init__(classes="axis")
        self.index = index
        self.axis = AXES[index]

    def render(self) -> Text:
        theme = self.app.current_theme
        value = self.value
        colour = _blend(theme.success if value >= 0 else theme.error, theme.background, value)
        width = 2 * BAR_HALF + 1
        negative, positive = self.axis.negative, self.axis.positive
        labels = negative + " " * max(1, width + 6 - len(negative) - len(positive)) + positive
        text = Text()
        text.append(labels, style="reverse" if self.selected else "")
        text.append("\n")
        cells = [("─", "dim")] * BAR_HALF + [("│", "")] + [("─", "dim")] * BAR_HALF
        filled = round(abs(value) * BAR_HALF)
        for step in range(1, filled + 1):
            position = BAR_HALF + step if value > 0 else BAR_HALF - step
            cells[position] = ("█", colour)
        if self.reading is not None:
            marker = BAR_HALF + round(max(-1.0, min(1.0, self.reading)) * BAR_HALF)
            cells[marker] = ("◆", f"bold {theme.accent or 'yellow'}")
        for char, style in cells:
            text.append(char, style=style)
        text.append(f" {value:+.2f}", style=f"bold {colour}")
        return text


class EmotionSidebar(Vertical):
    """The eight axes, the mood in words, and whether the mood is locked."""

    def compose(self):  # type: ignore[no-untyped-def]
        yield Static("", id="mood-title")
        for index in range(len(AXES)):
            yield AxisBar(index)
        yield Static("◆ last reading of your message", id="legend")

    def show(
        self,
        vector: EmotionVector,
        reading: EmotionVector | None,
        policy: str,
        selected: int,
    ) -> None:
        lock = "🔒 locked" if policy == "locked" else f"policy: {policy}"
        title = self.query_one("#mood-title", Static)
        title.update(Text.assemble(("Mood\n", "bold"), vector.describe(limit=2), f"\n{lock}"))
        for bar in self.query(AxisBar):
            bar.value = vector[bar.index]
            bar.reading = None if reading is None else reading[bar.index]
            bar.selected = bar.index == selected


class UserMessage(Static):
    def __init__(self, text: str) -> None:
        super().__init__(Text(text), classes="user-message")


class AssistantMessage(Markdown):
    """A reply: streamed as Markdown while it is written, re-rendered once at the end."""

    def __init__(self) -> None:
        super().__init__("", classes="assistant-message")


class PromptInput(TextArea):
    """Multi-line prompt: Enter sends, Ctrl+J (or Shift+Enter) starts a new line, Up on the
    first line recalls earlier prompts."""

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

    def __init__(self) -> None:
        super().__init__(id="prompt", soft_wrap=True, show_line_numbers=False)
        self.sent: list[str] = []  # earlier prompts, for Up to recall
        self._recall = 0

    def action_submit(self) -> None:
        text = self.text.strip()
        if text:
            self.sent.append(text)
            self._recall = len(self.sent)
            self.post_message(self.Submitted(text))

    def action_newline(self) -> None:
        self.insert("\n")

    def action_cursor_up(self, select: bool = False) -> None:
        if self.cursor_location[0] == 0 and self.sent and not select:
            self._recall = max(0, self._recall - 1)
            self.load_text(self.sent[self._recall])
            return
        super().action_cursor_up(select)

    def restore(self, text: str) -> None:
        self.load_text(text)
        self.move_cursor(self.document.end)
