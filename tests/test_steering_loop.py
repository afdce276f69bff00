"""The steering loop: the axes a reply's first sentence falls short of, and only those, are
steered harder for the rest of it, within bounds; a neutral mood is never read; the session
hands the loop to every reply it asks for."""

import numpy as np
import pytest

from emochat.emotion import EmotionVector, parse_emotion
from emochat.engine.directions import EmotionDirections
from emochat.engine.modulation.loop import (
    BOOST,
    NO_GAINS,
    SentenceEnds,
    SteeringLoop,
    boosted_gains,
)
from emochat.session import ChatSession
from emochat.state import EmotionState
from emochat.transcripts import TranscriptWriter
from tests.fakes import FakeBackend, FakeDetector

JOY = EmotionVector.pole("joy")
SAD = EmotionVector.pole("sadness")
NOTHING = (0.0,) * 8


def test_only_the_steered_axes_that_fell_short_are_boosted_and_only_once() -> None:
    mixed = parse_emotion("joy=0.8,fear=0.6,trust=0.1")[0]
    read = (0.5, -0.05, 0, 0, 0, -0.9, 0, 0)  # joy landed, fear short, trust barely asked for
    assert boosted_gains(mixed, read) == (1.0, BOOST, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    assert boosted_gains(JOY, (0.25, *NOTHING[1:])) is None  # landed at a quarter: no boost
    assert boosted_gains(SAD, (0.9, *NOTHING[1:])) == (BOOST, *NO_GAINS[1:])  # read as joy
    assert boosted_gains(EmotionVector(), (1.0,) * 8) is None  # nothing asked, nothing short
    # the most any axis gets is one boost: the loop never compounds it
    assert max(boosted_gains(EmotionVector((1.0,) * 8), (-1.0,) * 8)) == BOOST <= 2


def test_directions_scale_each_axis_by_its_gain_under_the_same_cap() -> None:
    rng = np.random.default_rng(0)
    directions = EmotionDirections(
        values=rng.normal(size=(8, 6, 16)).astype(np.float32),
        residual_norms=np.full(6, 1000.0, dtype=np.float32),
        band=(2, 5),
        scales=[0.5] * 8,
    )
    plain = directions.offsets(JOY)
    boosted = directions.offsets(JOY, gains=boosted_gains(JOY, NOTHING))
    np.testing.assert_allclose(boosted, BOOST * plain, rtol=1e-5)
    np.testing.assert_array_equal(directions.offsets(JOY, gains=NO_GAINS), plain)
    capped = EmotionDirections(
        directions.values, np.full(6, 1.0, dtype=np.float32), (2, 5), [9.0] * 8
    )
    norms = np.linalg.norm(capped.offsets(JOY, gains=(BOOST,) * 8), axis=-1)
    assert norms.max() <= 0.08 + 1e-6  # the boost never lifts the cap on the total addition


@pytest.mark.parametrize(
    ("text", "sentence"),
    [
        ("I am so glad you asked. Today", "I am so glad you asked."),
        ("I am so glad you asked.", None),  # the end is not sure until the next character
        ("Oh. I am so glad you asked! And", "Oh. I am so glad you asked!"),
        ("What a lovely day it is\nAnd", "What a lovely day it is"),
        ("Hi there", None),
    ],
)
def test_the_first_sentence_is_found_once_it_is_sure(text: str, sentence: str | None) -> None:
    assert SentenceEnds(text).first_sentence() == sentence


def test_sentences_count_as_finished_once_the_next_one_starts() -> None:
    assert len(SentenceEnds("One. Two! Three").ends) == 2
    assert len(SentenceEnds("One. Two!").ends) == 1
    assert len(SentenceEnds("Line one\nline two").ends) == 1


def test_a_text_grown_piece_by_piece_has_the_ends_it_has_whole() -> None:
    text = "Oh. I am so glad you asked!\nWell… it rained. And"
    for size in (1, 2, 3, 5):
        grown = SentenceEnds()
        made = sum(grown.add(text[i : i + size]) for i in range(0, len(text), size))
        assert grown.ends == SentenceEnds(text).ends and made == len(grown.ends) == 5


def test_a_neutral_mood_is_never_read_and_a_steered_one_reads_its_first_sentence() -> None:
    read: list[str] = []
    loop = SteeringLoop(lambda text: read.append(text) or NOTHING)
    assert loop.for_reply(EmotionVector()) is None
    check = loop.for_reply(SAD)
    assert check("I feel low today.") == (BOOST, *NO_GAINS[1:])
    assert read == ["I feel low today."]


def test_the_session_hands_the_loop_to_each_reply_it_asks_for() -> None:
    transcript = TranscriptWriter.create({"model": "fake-model"}, deferred=True)
    backend = FakeBackend("I am so happy to help.")
    state = EmotionState(vector=SAD, policy="locked")
    session = ChatSession(
        backend,
        None,
        state,
        transcript,
        None,
        pytest.fail,
        read_back=FakeDetector(),
        loop=SteeringLoop(lambda text: NOTHING),
    )
    session.ask("How are you?")
    check = backend.checks[-1]
    assert check is not None and check("I am not sure today.") == (BOOST, *NO_GAINS[1:])
    session.set_emotion(EmotionVector(), "preset")
    session.ask("And now?")
    assert backend.checks[-1] is None  # neutral: nothing to check


@pytest.mark.slow
@pytest.mark.parametrize("backend_fixture", ["default_llama", "default_loaded"])
def test_a_reply_short_of_its_mood_is_steered_harder_after_its_first_sentence(
    backend_fixture: str, request: pytest.FixtureRequest
) -> None:
    """The real default model, greedy: with a reader that never finds the mood, the loop hands
    the first sentence over, the reply goes on under more strength (it changes from there on,
    not before), and a neutral reply is the same with the loop as without."""
    from emochat.engine.directions import find_directions
    from emochat.engine.generation import SamplingSettings
    from emochat.engine.modulation.base import NoModulation
    from tests.conftest import transformers_backend

    backend = request.getfixturevalue(backend_fixture)
    if backend_fixture == "default_loaded":
        backend = transformers_backend(backend)
    backend.use(backend.steering(find_directions(backend.info), 1.0))
    messages = [{"role": "user", "content": "Tell me about your weekend plans."}]
    settings = SamplingSettings(temperature=0, max_new_tokens=48)
    read: list[str] = []

    def never_there(text: str) -> tuple[float, ...]:
        read.append(text)
        return NOTHING

    loop = SteeringLoop(never_there)
    try:
        plain = backend.reply(messages, SAD, settings).finish()
        looped = backend.reply(messages, SAD, settings, loop.for_reply(SAD)).finish()
        assert len(read) == 1 and plain.startswith(read[0]) and looped.startswith(read[0])
        assert looped != plain  # the rest was written under 1.5× the strength
        neutral = EmotionVector()
        assert backend.reply(messages, neutral, settings, loop.for_reply(neutral)).finish() == (
            backend.reply(messages, neutral, settings).finish()
        )
        assert len(read) == 1  # a neutral reply is never read mid-way
    finally:
        backend.use(NoModulation())  # the model is shared with other modules
