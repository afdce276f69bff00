"""The session owns a turn: it commits or rolls back, and every change to the last turn is
recorded so that the transcript read back tells the same story."""

import threading

import pytest

from emochat.emotion import EmotionVector, preset
from emochat.errors import EmochatError
from emochat.session import ChatSession
from emochat.state import EmotionState
from emochat.transcripts import TranscriptWriter, read_transcript
from tests.fakes import FakeBackend, FakeDetector


def new_session(backend=None, **kwargs) -> ChatSession:
    transcript = TranscriptWriter.create({"model": "fake-model"}, deferred=True)
    return ChatSession(
        backend or FakeBackend(),
        FakeDetector(),
        EmotionState(),
        transcript,
        None,
        pytest.fail,
        **kwargs,
    )


class FailsOnce(FakeBackend):
    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    def reply(self, messages, emotion, settings, after_first_sentence=None):
        if self.failures:
            self.failures -= 1
            raise EmochatError("out of memory while generating")
        return super().reply(messages, emotion, settings, after_first_sentence)


def test_a_failed_reply_rolls_the_whole_turn_back() -> None:
    session = new_session(FailsOnce())
    with pytest.raises(EmochatError, match="out of memory"):
        session.ask("I am so sad")
    assert session.emotion == EmotionVector()  # the reading's move is undone
    assert session.history() == [] and session.exchanges() == []
    session.ask("I am so sad")  # sending again asks once, not twice
    messages, _ = session._backend.calls[-1]
    assert messages == [{"role": "user", "content": "I am so sad"}]
    assert session.emotion[0] < 0
    replayed = read_transcript(session.transcript_path)
    assert [e.prompt for e in replayed.exchanges()] == ["I am so sad"]
    assert replayed.messages() == session.history()


def test_the_transcript_read_back_agrees_with_the_session_after_every_kind_of_change() -> None:
    backend = FakeBackend(answer="one two three four five", limit=2)
    session = new_session(backend)
    session.ask("count")
    assert session.exchanges()[-1].truncated
    session.continue_reply()
    session.regenerate()
    session.ask("again")
    prompt = session.edit_last()
    assert prompt == "again"
    session.rename("Counting  practice")
    live = (session.history(), session.exchanges(), session.conversation.title)
    session.close()
    replayed = read_transcript(session.transcript_path)
    assert (replayed.messages(), replayed.exchanges(), replayed.title) == live
    assert replayed.title == "Counting practice"
    assert [m["content"] for m in replayed.messages()] == ["count", "one two"]


def test_a_continuation_joins_the_reply_and_ends_it_when_the_model_does() -> None:
    session = new_session(FakeBackend(answer="one two three four five", limit=3))
    session.ask("count")
    result = session.continue_reply()
    assert result.exchange.reply == "one two three four five"
    assert not result.exchange.truncated
    with pytest.raises(EmochatError, match="nothing to continue"):
        session.continue_reply()


def test_a_system_prompt_leads_every_reply() -> None:
    backend = FakeBackend()
    session = new_session(backend, system_prompt="Answer in French.")
    session.ask("hello")
    messages, _ = backend.calls[-1]
    assert messages[0] == {"role": "system", "content": "Answer in French."}


def test_one_turn_at_a_time_and_mood_changes_meanwhile_are_safe() -> None:
    backend = FakeBackend(answer=" ".join(["word"] * 200), delay=0.005)
    session = new_session(backend)
    started = threading.Event()
    errors: list[Exception] = []

    def turn() -> None:
        try:
            session.ask("tell me", on_piece=lambda piece: started.set())
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    worker = threading.Thread(target=turn)
    worker.start()
    assert started.wait(10)
    assert session.busy
    with pytest.raises(EmochatError, match="still being written"):
        session.ask("and another")
    for _ in range(50):  # the UI thread sets presets while the reply streams
        session.set_emotion(preset("joy"), "preset joy")
    worker.join(30)
    assert not errors and not session.busy
    kinds = [e["type"] for e in read_transcript(session.transcript_path).events]
    assert kinds.count("user") == 1 and kinds.count("assistant") == 1
    assert kinds.count("emotion") == 50


def test_say_answers_each_prompt_on_its_own() -> None:
    backend = FakeBackend()
    session = new_session(backend, remember=False)
    session.ask("first")
    session.ask("second")
    assert [messages for messages, _ in backend.calls][-1] == [
        {"role": "user", "content": "second"}
    ]


def test_each_reply_is_read_back_and_kept_beside_the_mood_that_steered_it() -> None:
    session = new_session(FakeBackend("I am so happy to hear it."), read_back=FakeDetector())
    session.ask("I am sad today")  # the user's sadness moves the mood; the reply reads happy
    exchange = session.exchanges()[-1]
    assert exchange.emotion[0] < 0  # steered toward sadness
    assert exchange.expressed == {"vector": [0.8, 0, 0, 0, 0, 0, 0, 0], "confidence": 1.0}
    events = read_transcript(session.transcript_path).events
    assert events[-1]["expressed"] == exchange.expressed
    # a reply continued is read back whole
    cut = new_session(FakeBackend("Well I am happy now", limit=2), read_back=FakeDetector())
    cut.ask("Hello")
    assert cut.exchanges()[-1].expressed["confidence"] == 0.0  # "Well I" reads as nothing
    cut._backend.limit = 0
    cut.continue_reply()
    assert cut.exchanges()[-1].reply == "Well I am happy now"
    assert cut.exchanges()[-1].expressed["vector"][0] == 0.8


def test_a_reply_is_read_back_as_each_sentence_is_finished_while_it_streams(monkeypatch) -> None:
    from emochat.session import LiveReading

    answer = "Nothing much here. I am so happy now. And the sad part is"
    session = new_session(FakeBackend(answer), read_back=FakeDetector())
    seen = []
    # at most one reading a second: this fast reply is read once live, after its first sentence
    session.ask("Hello there", on_read=lambda: seen.append(session.last_expressed))
    assert seen[0] is None  # the message read, before the reply
    assert [reading.vector[0] for _, reading in seen[1:]] == [0]
    monkeypatch.setattr(LiveReading, "INTERVAL", 0.0)
    seen.clear()
    session.regenerate(on_read=lambda: seen.append(session.last_expressed))
    live = [reading.vector[0] for _, reading in seen]
    assert live == [0, 0.8]  # after "here. " and after "now. ", not before
    # the whole reply, recorded, is what the session shows once the turn is over
    assert session.last_expressed[1].vector[0] == -0.8  # "sad" in the unfinished tail
    assert session.exchanges()[-1].expressed["vector"][0] == -0.8


def test_without_read_back_nothing_is_read_or_kept() -> None:
    detector = FakeDetector()
    calls: list[str] = []
    detector.read = lambda text, read=detector.read: calls.append(text) or read(text)
    session = new_session(FakeBackend("I am so happy."), read_back=None)
    session._detector = detector
    session.ask("Hello there")
    assert calls == ["Hello there"]  # the message only
    assert session.exchanges()[-1].expressed is None
