"""Keys as terminals send them: every binding's key string survives xterm, tmux and the Linux
console; Esc, Enter in a burst of typing, presets, the mood panel and remapping."""

import contextlib

import pytest
from textual import events
from textual._parser import ParseError
from textual._xterm_parser import XTermParser
from textual.command import CommandPalette

from emochat.emotion import EmotionVector, preset
from emochat.state import EmotionState
from emochat.tui.app import APP_BINDINGS, PANEL_LETTERS, PRESET_KEYS
from emochat.tui.chats_screen import ChatsScreen
from emochat.tui.help_screen import HelpScreen
from emochat.tui.widgets import AxisBar, EmotionSidebar, PromptInput
from tests.fakes import FakeBackend
from tests.tui.helpers import SIZE, bar_values, make_app, settle, shown_exchanges

XTERM, TMUX, LINUX, KITTY = "xterm", "tmux", "linux console", "kitty protocol"
ARROWS = {"up": "A", "down": "B", "right": "C", "left": "D"}


def sent_by_terminals(key: str) -> dict[str, str]:
    """What each terminal writes for ``key`` (tmux forwards xterm's sequences; its default
    set-clipboard and key settings do not change these). A key missing here fails the test:
    add how terminals send it before binding it."""
    if key.startswith("ctrl+") and len(key) == 6 and key[-1].isalpha():
        control = chr(ord(key[-1]) & 0x1F)
        return {XTERM: control, TMUX: control, LINUX: control}
    if key.startswith("alt+") and len(key) == 5:
        escaped = "\x1b" + key[-1]
        return {XTERM: escaped, TMUX: escaped, LINUX: escaped}
    if key.startswith("alt+") and key[4:] in ARROWS:
        # The Linux console switches virtual consoles on Alt+←/→ and sends nothing for these;
        # the mood panel (Tab) is its way to the same actions.
        sequence = f"\x1b[1;3{ARROWS[key[4:]]}"
        return {XTERM: sequence, TMUX: sequence}
    table = {
        "escape": {XTERM: "\x1b", TMUX: "\x1b", LINUX: "\x1b"},
        "enter": {XTERM: "\r", TMUX: "\r", LINUX: "\r"},
        "shift+enter": {KITTY: "\x1b[13;2u"},  # others send plain Enter: Ctrl+J is the sure key
        "f1": {XTERM: "\x1bOP", TMUX: "\x1bOP", LINUX: "\x1b[[A"},
        "f2": {XTERM: "\x1bOQ", TMUX: "\x1bOQ", LINUX: "\x1b[[B"},
        "f3": {XTERM: "\x1bOR", TMUX: "\x1bOR", LINUX: "\x1b[[C"},
        "delete": {XTERM: "\x1b[3~", TMUX: "\x1b[3~", LINUX: "\x1b[3~"},
        **{
            name: {XTERM: f"\x1b[{code}", TMUX: f"\x1b[{code}", LINUX: f"\x1b[{code}"}
            for name, code in ARROWS.items()
        },
    }
    return table[key]


def parse(sequence: str) -> list[str]:
    parser = XTermParser(debug=False)
    keys = [event.key for event in parser.feed(sequence) if isinstance(event, events.Key)]
    # a lone Esc (or Esc+letter) is only complete once no more input follows
    with contextlib.suppress(ParseError):
        keys += [event.key for event in parser.feed("") if isinstance(event, events.Key)]
    return keys


BINDINGS = [
    *APP_BINDINGS,
    *PromptInput.BINDINGS,
    *EmotionSidebar.BINDINGS,
    *ChatsScreen.BINDINGS,
]


@pytest.mark.parametrize("binding", BINDINGS, ids=lambda binding: f"{binding.action}:{binding.key}")
def test_every_binding_arrives_as_its_key_string(binding) -> None:
    for key in binding.key.split(","):
        for terminal, sequence in sent_by_terminals(key).items():
            assert parse(sequence) == [key], f"{key} from {terminal} ({sequence!r})"


def test_no_two_app_keys_clash() -> None:
    keys = [key for binding in APP_BINDINGS for key in binding.key.split(",")]
    assert len(keys) == len(set(keys))


def test_the_mood_panel_letters_are_the_alt_letters() -> None:
    assert {PANEL_LETTERS[key.removeprefix("alt+")] for _, key in PRESET_KEYS} == {
        pole for pole, _ in PRESET_KEYS
    }
    assert PANEL_LETTERS["0"] == "neutral"


@pytest.mark.parametrize(("pole", "key"), PRESET_KEYS, ids=[pole for pole, _ in PRESET_KEYS])
async def test_each_preset_key_sets_the_mood_and_types_nothing(pole: str, key: str) -> None:
    app = make_app(state=EmotionState(vector=EmotionVector((0.3,) * 8)))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press(key)
        await pilot.pause()
        assert app.session.emotion == preset(pole)
        assert bar_values(app) == list(preset(pole).values)
        assert app.query_one(PromptInput).text == ""


async def test_text_and_enter_in_one_burst_send_the_whole_prompt() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        # as a terminal delivers a paste without bracketed paste: all keys in one read
        for character in "hello there":
            app.post_message(events.Key("space" if character == " " else character, character))
        app.post_message(events.Key("enter", "\r"))
        await settle(app, pilot)
        assert [prompt for prompt, _ in shown_exchanges(app)] == ["hello there"]
        assert app.query_one(PromptInput).text == ""


async def test_escape_closes_help_and_the_palette_when_no_reply_streams() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, CommandPalette)
        # and Esc is offered as "Stop" only while a reply streams
        assert "cancel_reply" not in {
            b.binding.action for b in app.active_bindings.values() if b.enabled
        }


async def test_escape_stops_a_streaming_reply_even_with_the_prompt_focused() -> None:
    app = make_app(FakeBackend(answer=" ".join(["word"] * 400), delay=0.02))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.query_one(PromptInput).load_text("go on and on")
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert app.generating
        await pilot.press("escape")
        await settle(app, pilot)
        assert not app.generating
        assert app.session.exchanges()[-1].cancelled


async def test_select_and_nudge_an_axis_with_alt_arrows() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("alt+down", "alt+down", "alt+right", "alt+right", "alt+right")
        await pilot.pause()
        assert app.selected_axis == 2
        assert app.session.emotion[2] == pytest.approx(0.3)
        await pilot.press("alt+up", "alt+left")
        await pilot.pause()
        assert app.session.emotion[1] == pytest.approx(-0.1)
        bars = sorted(app.query(AxisBar), key=lambda bar: bar.index)
        assert bars[1].selected and not bars[2].selected


async def test_the_mood_panel_steers_with_plain_keys() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("tab")
        await pilot.pause()
        assert isinstance(app.focused, EmotionSidebar)
        await pilot.press("down", "right", "right")
        await pilot.pause()
        assert app.selected_axis == 1 and app.session.emotion[1] == pytest.approx(0.2)
        await pilot.press("w")  # fear, as Alt+W
        await pilot.pause()
        assert app.session.emotion == preset("fear")
        await pilot.press("0")
        await pilot.pause()
        assert app.session.emotion == EmotionVector()
        assert app.query_one(PromptInput).text == ""


async def test_keys_can_be_remapped_by_binding_id() -> None:
    app = make_app(keymap={"toggle_lock": "f9"})
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f9")
        await pilot.pause()
        assert app.session.locked
