import asyncio

import pytest

from emochat.emotion import EmotionVector, preset
from emochat.errors import EmochatError
from emochat.session import ChatSession
from emochat.state import EmotionState
from emochat.transcripts import TranscriptWriter, read_transcript
from emochat.tui.app import PRESET_KEYS, AppOptions, EmochatApp, HelpScreen
from emochat.tui.widgets import AssistantMessage, AxisBar, PromptInput, UserMessage
from tests.fakes import FakeBackend, FakeDetector

SIZE = (110, 36)


def make_app(backend=None, state=None, tmp_path=None, **options) -> EmochatApp:
    backend = backend or FakeBackend()
    transcript = TranscriptWriter.create({"model": "fake-model"})
    session = ChatSession(
        backend,
        FakeDetector(),
        state or EmotionState(),
        transcript,
        settings=None,
        warn=lambda message: None,
    )
    app = EmochatApp(lambda progress: session, AppOptions(**options))
    app.fake_backend = backend  # type: ignore[attr-defined]
    return app


async def settle(app, pilot) -> None:
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def send(app, pilot, text: str) -> None:
    prompt = app.query_one(PromptInput)
    prompt.load_text(text)
    await pilot.press("enter")
    await settle(app, pilot)


async def wait_for_reply_text(app, timeout: float = 30) -> None:
    """Until the reply has started streaming (a slow machine may take a while)."""
    for _ in range(int(timeout / 0.02)):
        if app.query(AssistantMessage) and app.query_one(AssistantMessage).source:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the reply never started")


def bar_values(app) -> list[float]:
    return [bar.value for bar in sorted(app.query(AxisBar), key=lambda bar: bar.index)]


async def test_a_message_is_read_answered_streamed_and_recorded() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await send(app, pilot, "I am so sad today")
        users = list(app.query(UserMessage))
        replies = list(app.query(AssistantMessage))
        assert len(users) == 1 and len(replies) == 1
        assert "Hello **there**, friend." in replies[0].source
        assert app.query_one(PromptInput).text == ""
        # the detector read sadness and the mood moved toward it
        assert bar_values(app)[0] < 0
        messages, emotion = app.fake_backend.calls[0]
        assert messages == [{"role": "user", "content": "I am so sad today"}]
        assert emotion[0] < 0
        assert "42.0 tok/s" in str(app.query_one("#status").render())
        events = read_transcript(app.session.transcript.path).events
        assert [event["type"] for event in events] == ["user", "assistant"]
        assert events[0]["reading"]["vector"][0] == pytest.approx(-0.8)


async def test_escape_stops_the_reply_and_puts_the_prompt_back() -> None:
    app = make_app(FakeBackend(answer=" ".join(["word"] * 400), delay=0.02))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        prompt = app.query_one(PromptInput)
        prompt.load_text("tell me a long story")
        await pilot.press("enter")
        await wait_for_reply_text(app)
        await pilot.press("escape")
        await settle(app, pilot)
        assert prompt.text == "tell me a long story"
        assert not app.generating
        assert "stopped" in app.query_one(AssistantMessage).source
        assert app.session.history == []  # the withdrawn turn is not sent again
        events = read_transcript(app.session.transcript.path).events
        assert events[-1]["cancelled"] is True
        assert events[-1]["new_tokens"] < 400


async def test_quitting_mid_reply_records_the_stopped_reply() -> None:
    app = make_app(FakeBackend(answer=" ".join(["word"] * 400), delay=0.02))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.query_one(PromptInput).load_text("a long story please")
        await pilot.press("enter")
        await wait_for_reply_text(app)
        path = app.session.transcript.path
    for _ in range(100):  # the worker records the reply just after the app has gone
        events = read_transcript(path).events
        if events[-1]["type"] == "assistant":
            break
        await asyncio.sleep(0.05)
    assert events[-1]["type"] == "assistant" and events[-1]["cancelled"] is True
    assert 0 < events[-1]["new_tokens"] < 400


@pytest.mark.parametrize(("pole", "key"), PRESET_KEYS, ids=[pole for pole, _ in PRESET_KEYS])
async def test_each_preset_key_sets_the_mood(pole: str, key: str) -> None:
    app = make_app(state=EmotionState(vector=EmotionVector((0.3,) * 8)))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press(key)
        await pilot.pause()
        assert app.session.state.vector == preset(pole)
        assert bar_values(app) == list(preset(pole).values)


async def test_lock_keeps_the_mood_while_messages_come() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("alt+j")
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert app.session.state.locked
        assert "locked" in str(app.query_one("#mood-title").render())
        await send(app, pilot, "I am so sad")
        assert app.session.state.vector == preset("joy")
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert app.session.state.policy == "mirror"


async def test_select_and_nudge_an_axis() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("alt+down", "alt+down", "alt+right", "alt+right", "alt+right")
        await pilot.pause()
        assert app.selected_axis == 2
        assert app.session.state.vector[2] == pytest.approx(0.3)
        await pilot.press("alt+up", "alt+left")
        await pilot.pause()
        assert app.session.state.vector[1] == pytest.approx(-0.1)
        bars = sorted(app.query(AxisBar), key=lambda bar: bar.index)
        assert bars[1].selected and not bars[2].selected


async def test_switching_theme_is_remembered() -> None:
    remembered: list[str] = []
    app = make_app(theme="emochat-dusk", remember_theme=remembered.append)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert app.theme == "emochat-ember"
        assert remembered[-1] == "emochat-ember"


async def test_palette_offers_every_action_and_help_lists_ids() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        titles = {command.title: command for command in app.get_system_commands(app.screen)}
        for title in (
            "Stop reply",
            "Lock or unlock mood",
            "Copy last reply",
            "Export conversation",
            "Next theme",
            "Show keys",
            "Policy: soothe",
        ):
            assert title in titles
        assert {f"Mood: {pole}" for pole, _ in PRESET_KEYS} <= set(titles)
        titles["Mood: trust"].callback()
        titles["Policy: soothe"].callback()
        assert app.session.state.vector == preset("trust")
        assert app.session.state.policy == "soothe"
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        ids = {row[2] for row in app.screen.rows}
        assert {"toggle_lock", "cancel_reply", "preset_joy", "next_theme"} <= ids


async def test_an_unknown_theme_falls_back_with_a_warning() -> None:
    app = make_app(theme="no-such-theme")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.theme == "emochat-dusk"
        assert any("No theme 'no-such-theme'" in str(n.message) for n in app._notifications)


async def test_keys_can_be_remapped_by_binding_id() -> None:
    app = make_app(keymap={"toggle_lock": "f9"})
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f9")
        await pilot.pause()
        assert app.session.state.locked


async def test_export_and_copy(tmp_path) -> None:
    app = make_app(export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await send(app, pilot, "hello")
        await pilot.press("ctrl+y")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.clipboard == "Hello **there**, friend."
        exported = list(tmp_path.glob("*.md"))
        assert len(exported) == 1 and "Hello **there**, friend." in exported[0].read_text()


async def test_a_model_that_fails_to_load_leaves_the_app_up() -> None:
    def broken(progress):
        progress("Loading…")
        raise EmochatError("cannot load model 'nope': no such thing")

    app = EmochatApp(broken, AppOptions())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        status = str(app.query_one("#status").render())
        assert "Model not loaded: cannot load model 'nope'" in status
        assert any("no such thing" in str(n.message) for n in app._notifications)
        app.query_one(PromptInput).load_text("hello?")
        await pilot.press("enter")
        await pilot.pause()
        assert app.is_running
        assert app.query_one(PromptInput).text == "hello?"


async def test_a_reply_that_fails_is_a_notification() -> None:
    class Exploding(FakeBackend):
        def reply(self, messages, emotion, settings):
            raise EmochatError("out of memory while generating; try --quant 4bit")

    app = make_app(Exploding())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await send(app, pilot, "hi")
        assert app.is_running and not app.generating
        assert any("out of memory" in str(n.message) for n in app._notifications)
        assert app.query_one(PromptInput).text == "hi"


@pytest.mark.parametrize("theme", ["emochat-dusk", "emochat-paper"])
def test_main_screen_snapshot(snap_compare, theme: str) -> None:
    mood = EmotionVector((0.6, -0.3, 0, 0.9, 0, -0.8, 0.2, 0.5))
    app = make_app(theme=theme, state=EmotionState(vector=mood))

    async def run_before(pilot) -> None:
        app.query_one(PromptInput).cursor_blink = False  # a blinking cursor is half the time off
        await settle(app, pilot)
        await send(app, pilot, "I am happy to see you")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
