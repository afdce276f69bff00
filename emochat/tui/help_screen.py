"""F1: every key, with the binding id to remap it by."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

FOOTNOTE = (
    "\nEnter sends · Ctrl+J new line · Up/Down earlier prompts · Tab to the mood panel "
    "(↑↓ axis, ←→ nudge, letters presets, 0 neutral) · Ctrl+P commands · Ctrl+Q quits"
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        text = Text("Keys  (remap in config.toml [keys] by id)\n\n", style="bold")
        for key, description, binding_id in self.rows:
            text.append(f"{key:<14}", style="bold")
            text.append(f"{description:<22}")
            text.append(f"{binding_id}\n", style="dim")
        text.append(FOOTNOTE)
        with VerticalScroll(id="help-body"):
            yield Static(text)
