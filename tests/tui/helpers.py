"""Driving the app over a fake backend and detector, with transcripts under the test's home."""

from __future__ import annotations

import asyncio

from emochat.chats import Chats
from emochat.session import ChatSession
from emochat.state import EmotionState
from emochat.transcripts import Conversation, TranscriptWriter, read_transcript
from emochat.tui.app import AppOptions, EmochatApp
from emochat.tui.widgets import AssistantMessage, AxisBar, ExchangeView, PromptInput
from tests.fakes import FakeBackend, FakeDetector

SIZE = (110, 36)  # roomy enough for every widget; the layouts have snapshot tests


def fake_chats(
    backend, state=None, resume: Conversation | None = None, read_back: bool = False
) -> Chats:
    def make_session(conversation: Conversation | None) -> ChatSession:
        if conversation is None:
            transcript = TranscriptWriter.create({"model": "fake-model"}, deferred=True)
            mood = state or EmotionState()
        else:
            transcript = TranscriptWriter.resume(conversation)
            mood = ChatSession.restore_state(conversation)
        reader = FakeDetector() if read_back else None
        return ChatSession(
            backend, FakeDetector(), mood, transcript, None, lambda message: None, read_back=reader
        )

    return Chats(make_session, make_session(resume))


def make_app(backend=None, state=None, resume=None, read_back=False, **options) -> EmochatApp:
    backend = backend or FakeBackend()
    options.setdefault("system_copy", lambda text: None)
    app = EmochatApp(
        lambda progress: fake_chats(backend, state, resume, read_back), AppOptions(**options)
    )
    app.fake_backend = backend  # type: ignore[attr-defined]
    return app


def saved_chat(prompts: list[str], backend=None, **writes) -> Conversation:
    """A conversation saved through a real session over the fake backend, read back."""
    session = fake_chats(backend or FakeBackend()).current
    for prompt in prompts:
        session.ask(prompt)
    for title in writes.get("titles", []):
        session.rename(title)
    session.close()
    return read_transcript(session.transcript_path)


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
        views = app.query(AssistantMessage)
        if views and views.last().source:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the reply never started")


def bar_values(app) -> list[float]:
    return [bar.value for bar in sorted(app.query(AxisBar), key=lambda bar: bar.index)]


def shown_exchanges(app) -> list[tuple[str, str]]:
    """(prompt, reply as shown) for every exchange on screen."""
    return [(str(view.exchange.prompt), view.reply_view.source) for view in app.query(ExchangeView)]


def events(app) -> list[dict]:
    return read_transcript(app.session.transcript_path).events
