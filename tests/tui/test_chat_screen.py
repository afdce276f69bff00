"""The chat screen: turns, stopped and cut replies, regenerate, edit, resume, copy, themes."""

import asyncio
import json
import time

import pytest
from textual.widgets import Button

from emochat.emotion import preset
from emochat.errors import EmochatError
from emochat.transcripts import read_transcript, transcripts_dir
from emochat.tui.app import PAGE, PRESET_KEYS, AppOptions, EmochatApp
from emochat.tui.help_screen import HelpScreen
from emochat.tui.widgets import AssistantMessage, AxisBar, PromptInput, UserMessage
from tests.fakes import FakeBackend
from tests.tui.helpers import (
    SIZE,
    bar_values,
    events,
    make_app,
    saved_chat,
    send,
    settle,
    shown_exchanges,
    wait_for_reply_text,
)


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
        recorded = events(app)
        assert [event["type"] for event in recorded] == ["user", "assistant"]
        assert recorded[0]["reading"]["vector"][0] == pytest.approx(-0.8)


async def test_the_sidebar_shows_the_last_reply_read_back_beside_the_mood_asked() -> None:
    app = make_app(FakeBackend(answer="I am so happy for you."), read_back=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        line = app.query_one("#read-back")
        assert not line.display  # nothing read back yet
        await send(app, pilot, "I am so sad today")
        bars = sorted(app.query(AxisBar), key=lambda bar: bar.index)
        assert bars[0].reading == pytest.approx(-0.8)  # your message
        assert bars[0].expressed == pytest.approx(0.8)  # the reply, read back
        assert all(bar.expressed == 0 for bar in bars[1:])
        asked = events(app)[-1]["emotion"][0]
        assert line.display
        assert str(line.render()) == f"○ last reply: {abs(asked - 0.8):.2f} from asked"
        assert "○" in str(bars[0].render())


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
        # the stopped turn stays on screen, marked, and is withdrawn for the model
        assert shown_exchanges(app)[0][0] == "tell me a long story"
        assert "— stopped" in app.query_one(AssistantMessage).source
        assert app.session.history() == []
        assert events(app)[-1]["cancelled"] is True
        assert events(app)[-1]["new_tokens"] < 400


async def test_quitting_mid_reply_records_the_stopped_reply() -> None:
    app = make_app(FakeBackend(answer=" ".join(["word"] * 400), delay=0.02))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.query_one(PromptInput).load_text("a long story please")
        await pilot.press("enter")
        await wait_for_reply_text(app)
        path = app.session.transcript_path
    for _ in range(100):  # the worker records the reply just after the app has gone
        recorded = read_transcript(path).events
        if recorded[-1]["type"] == "assistant":
            break
        await asyncio.sleep(0.05)
    assert recorded[-1]["type"] == "assistant" and recorded[-1]["cancelled"] is True
    assert 0 < recorded[-1]["new_tokens"] < 400


async def test_lock_keeps_the_mood_while_messages_come() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("alt+j")
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert app.session.locked
        assert "locked" in str(app.query_one("#mood-title").render())
        await send(app, pilot, "I am so sad")
        assert app.session.emotion == preset("joy")
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert app.session.policy == "mirror"


async def test_switching_theme_is_remembered() -> None:
    remembered: list[str] = []
    app = make_app(theme="emochat-dusk", remember_theme=remembered.append)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert app.theme == "emochat-ember"
        assert remembered[-1] == "emochat-ember"
        assert any(str(n.message) == "Theme: emochat-ember" for n in app._notifications)


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
        assert app.session.emotion == preset("trust")
        assert app.session.policy == "soothe"
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
        def reply(self, messages, emotion, settings, after_first_sentence=None):
            raise EmochatError("out of memory while generating; try --quant 4bit")

    app = make_app(Exploding())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await send(app, pilot, "I am sad and I say hi")
        assert app.is_running and not app.generating
        assert any("out of memory" in str(n.message) for n in app._notifications)
        # the turn is rolled back: off the screen, out of the history, the mood where it was
        assert app.query_one(PromptInput).text == "I am sad and I say hi"
        assert shown_exchanges(app) == []
        assert app.session.history() == [] and app.session.exchanges() == []
        assert bar_values(app) == [0.0] * 8
        assert events(app)[-1]["type"] == "retract"


async def test_the_first_screen_says_what_to_do() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert "Say something" in str(app.query_one("#hint").render())
        assert "Enter sends" in str(app.query_one(PromptInput).placeholder)
        await send(app, pilot, "hello")
        assert not app.query("#hint")


async def test_a_chat_file_appears_with_the_first_message_only(tmp_path) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("alt+j")  # a mood change alone is not a conversation
        await pilot.pause()
        assert not list(transcripts_dir().glob("*.jsonl"))
        await send(app, pilot, "hello")
        files = list(transcripts_dir().glob("*.jsonl"))
        assert len(files) == 1
        conversation = read_transcript(files[0])
        # the mood set before it is where the chat started
        assert conversation.header["state"]["vector"] == list(preset("joy").values)


async def test_resume_shows_every_reply_and_the_stopped_turn() -> None:
    backend = FakeBackend(answer="A full **answer** here.")
    conversation = saved_chat(["first question", "second question"], backend)
    # a third turn stopped by the user, as the app records it
    session_events = [
        {"type": "user", "text": "third, stopped", "state": conversation.last_state()},
        {"type": "assistant", "text": "Partial", "cancelled": True, "new_tokens": 1},
    ]
    with open(conversation.path, "a", encoding="utf-8") as handle:
        for event in session_events:
            handle.write(json.dumps(event) + "\n")
    app = make_app(backend, resume=read_transcript(conversation.path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        shown = shown_exchanges(app)
        assert [prompt for prompt, _ in shown] == [
            "first question",
            "second question",
            "third, stopped",
        ]
        assert shown[0][1] == shown[1][1] == "A full **answer** here."
        assert shown[2][1].startswith("Partial") and "— stopped" in shown[2][1]
        # what is shown is also what the Markdown widgets hold, not only their source
        texts = [str(block) for block in app.query(AssistantMessage)]
        assert len(texts) == 3


async def test_a_reply_cut_by_the_limit_is_marked_and_continued_with_one_key() -> None:
    backend = FakeBackend(answer="one two three four five six seven eight", limit=3)
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await send(app, pilot, "count")
        reply = app.query(AssistantMessage).last()
        assert reply.source.startswith("one two three")
        assert "cut at the length limit" in reply.source
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        assert reply.source.startswith("one two three four five six")
        # the model was asked to continue its own words, not to answer again
        messages, _ = backend.calls[-1]
        assert messages[-1] == {"role": "assistant", "content": "one two three"}
        assert app.session.history()[-1]["content"] == "one two three four five six"
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        assert "cut at" not in reply.source
        assert app.session.history()[-1]["content"] == "one two three four five six seven eight"
        await pilot.press("ctrl+g")  # complete now: the key does nothing
        await settle(app, pilot)
        assert len(backend.calls) == 3


class Counting(FakeBackend):
    """Answers with the number of the call, so each sample differs."""

    def reply(self, messages, emotion, settings, after_first_sentence=None):
        self.answer = f"answer {len(self.calls) + 1}"
        return super().reply(messages, emotion, settings, after_first_sentence)


async def test_regenerate_replaces_the_reply_and_keeps_the_old_one_on_record() -> None:
    app = make_app(Counting())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await send(app, pilot, "pick a number")
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        assert shown_exchanges(app) == [("pick a number", "answer 2")]
        messages, _ = app.fake_backend.calls[-1]
        assert messages == [{"role": "user", "content": "pick a number"}]
        assert [m["content"] for m in app.session.history()] == ["pick a number", "answer 2"]
        kinds = [(e["type"], e.get("text")) for e in events(app)]
        assert kinds == [
            ("user", "pick a number"),
            ("assistant", "answer 1"),
            ("retract", None),
            ("assistant", "answer 2"),
        ]


async def test_edit_last_takes_the_turn_back_into_the_prompt() -> None:
    app = make_app(Counting())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await send(app, pilot, "first")
        await send(app, pilot, "secnod")
        await pilot.press("f3")
        await settle(app, pilot)
        prompt = app.query_one(PromptInput)
        assert prompt.text == "secnod"
        assert [p for p, _ in shown_exchanges(app)] == ["first"]
        await send(app, pilot, "second")
        assert [p for p, _ in shown_exchanges(app)] == ["first", "second"]
        assert [m["content"] for m in app.session.history()] == [
            "first",
            "answer 1",
            "second",
            "answer 3",
        ]
        texts = [e.get("text") for e in events(app) if e["type"] == "user"]
        assert texts == ["first", "secnod", "second"]  # the earlier version is kept


async def test_a_long_conversation_opens_at_its_end_and_pages_back() -> None:
    conversation = saved_chat([f"question {n}" for n in range(PAGE + 15)])
    app = make_app(resume=conversation)
    async with app.run_test(size=SIZE) as pilot:
        started = time.perf_counter()
        await settle(app, pilot)
        shown = [prompt for prompt, _ in shown_exchanges(app)]
        assert len(shown) == PAGE and shown[-1] == f"question {PAGE + 14}"
        assert "15 more" in str(app.query_one("#earlier").label)
        app.query_one("#earlier", Button).press()
        await settle(app, pilot)
        shown = [prompt for prompt, _ in shown_exchanges(app)]
        assert shown[0] == "question 0" and len(shown) == PAGE + 15
        assert not app.query("#earlier")
        assert time.perf_counter() - started < 60  # a sanity bound; benchmarks/resume.py times it


async def test_up_and_down_walk_through_earlier_prompts() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await send(app, pilot, "one")
        await send(app, pilot, "two")
        prompt = app.query_one(PromptInput)
        prompt.load_text("draft")
        await pilot.press("up")
        assert prompt.text == "two"
        await pilot.press("up")
        assert prompt.text == "one"
        await pilot.press("down")
        assert prompt.text == "two"
        await pilot.press("down")
        assert prompt.text == "draft"


async def test_copy_says_how_it_copied(tmp_path) -> None:
    copied: list[str] = []

    def xclip(text: str) -> str:
        copied.append(text)
        return "xclip"

    app = make_app(export_dir=tmp_path, system_copy=xclip)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await send(app, pilot, "hello")
        await pilot.press("ctrl+y")
        await pilot.pause()
        assert copied == ["Hello **there**, friend."]
        assert str(list(app._notifications)[-1].message) == "Copied the last reply (xclip)."


async def test_without_a_clipboard_tool_copy_falls_back_to_the_terminal_and_a_file(
    tmp_path,
) -> None:
    app = make_app(export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await send(app, pilot, "hello")
        await pilot.press("ctrl+y")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.clipboard == "Hello **there**, friend."  # sent as OSC 52
        message = str(list(app._notifications)[-2].message)
        assert "OSC 52" in message and str(tmp_path / "last-reply.md") in message
        assert (tmp_path / "last-reply.md").read_text() == "Hello **there**, friend."
        exported = tmp_path / f"{app.session.id}.md"
        assert "Hello **there**, friend." in exported.read_text()
