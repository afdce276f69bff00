"""The steering loop: gains that stay bounded, move only for the poles steered, live beside the
directions they were learned with; a reply re-steered after its first sentence; a session that
learns from each read-back, and a seeded one that does not."""

import json

import numpy as np
import pytest

from emochat.emotion import EmotionVector, parse_emotion
from emochat.engine.directions import EmotionDirections
from emochat.engine.modulation.gains import GAIN_RANGE, GainsFile, PoleGains
from emochat.engine.modulation.loop import SteeringLoop, first_sentence
from emochat.errors import EmochatError
from emochat.session import ChatSession
from emochat.state import EmotionState
from emochat.transcripts import TranscriptWriter
from tests.fakes import FakeBackend, FakeDetector

JOY = EmotionVector.pole("joy")
SAD = EmotionVector.pole("sadness")
NOTHING = (0.0,) * 8


def test_gains_stay_within_their_bounds_however_long_a_pole_falls_short_or_overshoots() -> None:
    gains = PoleGains()
    for _ in range(50):
        gains = gains.after_reply(SAD, NOTHING)  # sadness never read: more and more strength
    assert gains.for_emotion(SAD)[0] == GAIN_RANGE[1]
    assert gains.for_emotion(JOY)[0] == 1.0  # the other pole of the axis is its own
    for _ in range(50):
        gains = gains.after_reply(SAD, (-1.0, *NOTHING[1:]))  # read far past what was asked
    assert gains.for_emotion(SAD)[0] == GAIN_RANGE[0]
    with pytest.raises(EmochatError, match="within"):
        PoleGains(((3.0, 1.0),) + ((1.0, 1.0),) * 7)


def test_only_the_poles_steered_move_and_a_neutral_mood_moves_nothing() -> None:
    mixed = parse_emotion("joy=0.8,fear=0.6,trust=0.1")[0]
    moved = PoleGains().after_reply(mixed, NOTHING)
    assert moved.for_emotion(mixed)[:2] > (1.0, 1.0)  # joy and fear fell short: raised
    assert moved.for_emotion(mixed)[2:] == (1.0,) * 6  # trust at 0.1 is not steered enough
    landed = PoleGains().after_reply(JOY, (0.25, *NOTHING[1:]))
    assert landed == PoleGains()  # read exactly where it lands: no change
    assert PoleGains().after_reply(EmotionVector(), NOTHING) == PoleGains()
    assert PoleGains().boosted(EmotionVector(), NOTHING) is None
    assert PoleGains().boosted(JOY, (0.9, *NOTHING[1:])) is None  # landed: no boost
    boosted = PoleGains().boosted(JOY, NOTHING)
    assert boosted is not None and boosted.for_emotion(JOY)[0] == 1.5


def test_directions_scale_each_axis_by_its_gain_under_the_same_cap() -> None:
    rng = np.random.default_rng(0)
    directions = EmotionDirections(
        values=rng.normal(size=(8, 6, 16)).astype(np.float32),
        residual_norms=np.full(6, 1000.0, dtype=np.float32),
        band=(2, 5),
        scales=[0.5] * 8,
    )
    plain = directions.offsets(JOY)
    doubled = directions.offsets(JOY, gains=PoleGains().boosted(JOY, NOTHING).for_emotion(JOY))
    np.testing.assert_allclose(doubled, 1.5 * plain, rtol=1e-5)
    capped = EmotionDirections(
        directions.values, np.full(6, 1.0, dtype=np.float32), (2, 5), [9.0] * 8
    )
    limit = 0.08 * 1.0
    assert np.linalg.norm(capped.offsets(JOY, gains=(2.0,) * 8), axis=-1).max() <= limit + 1e-6
    assert directions.fingerprint() != capped.fingerprint()


def test_kept_gains_belong_to_their_directions_and_a_bad_file_starts_afresh(tmp_path) -> None:
    path = tmp_path / "vectors" / "gains.json"
    raised = PoleGains().after_reply(SAD, NOTHING)
    GainsFile(path, "directions-a").save(raised)
    assert GainsFile(path, "directions-a").load() == raised
    assert GainsFile(path, "directions-b").load() == PoleGains()  # rebuilt: fresh gains
    path.write_text("{not json")
    assert GainsFile(path, "directions-a").load() == PoleGains()
    path.write_text(json.dumps({"format": 1, "directions": "directions-a", "gains": {"joy": 9}}))
    assert GainsFile(path, "directions-a").load() == PoleGains()  # out of bounds: not trusted
    blocked = tmp_path / "a-file"  # where a folder should be: the write fails
    blocked.write_text("")
    with pytest.raises(EmochatError, match="cannot keep the steering gains"):
        GainsFile(blocked / "gains.json", "x").save(raised)


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
    assert first_sentence(text) == sentence


def test_a_loop_that_does_not_learn_uses_the_kept_gains_and_leaves_them(tmp_path) -> None:
    path = tmp_path / "gains.json"
    raised = PoleGains().after_reply(SAD, NOTHING)
    GainsFile(path, "d").save(raised)
    before = path.read_text()
    loop = SteeringLoop(lambda text: NOTHING, within=True, kept=GainsFile(path, "d"), learn=False)
    steering = loop.for_reply(SAD)
    assert steering.gains == raised
    assert steering.after_first_sentence("I feel low today.") is not None
    loop.learn(SAD, NOTHING)
    assert path.read_text() == before and loop.gains == raised
    learning = SteeringLoop(lambda text: NOTHING, within=False, kept=GainsFile(path, "d"))
    assert learning.for_reply(SAD).after_first_sentence is None
    learning.learn(EmotionVector(), NOTHING)  # a neutral reply teaches nothing
    assert path.read_text() == before
    learning.learn(SAD, NOTHING)
    assert GainsFile(path, "d").load().for_emotion(SAD)[0] > raised.for_emotion(SAD)[0]


def loop_session(backend, loop: SteeringLoop, mood: EmotionVector) -> ChatSession:
    transcript = TranscriptWriter.create({"model": "fake-model"}, deferred=True)
    state = EmotionState(vector=mood, policy="locked")
    return ChatSession(
        backend, None, state, transcript, None, pytest.fail, read_back=FakeDetector(), loop=loop
    )


def test_a_session_steers_each_reply_with_the_loop_and_learns_from_its_read_back(tmp_path) -> None:
    path = tmp_path / "gains.json"
    backend = FakeBackend("I am so happy to help.")
    loop = SteeringLoop(lambda text: NOTHING, within=True, kept=GainsFile(path, "d"))
    session = loop_session(backend, loop, SAD)
    session.ask("How are you?")
    assert backend.steerings[-1].gains == PoleGains()
    # read back as joy (0.8) where sadness was asked: the sadness gain goes up, and is kept
    kept = GainsFile(path, "d").load()
    assert kept.for_emotion(SAD)[0] > 1.0
    session.ask("And now?")
    assert backend.steerings[-1].gains == kept
    neutral_path = tmp_path / "neutral.json"
    neutral_loop = SteeringLoop(
        lambda text: NOTHING, within=True, kept=GainsFile(neutral_path, "d")
    )
    neutral = loop_session(FakeBackend("I am so happy."), neutral_loop, EmotionVector())
    neutral.ask("Hi")
    assert not neutral_path.exists()  # nothing was steered, nothing learned


@pytest.mark.slow
@pytest.mark.parametrize("backend_fixture", ["default_llama", "default_loaded"])
def test_a_reply_short_of_its_mood_is_steered_harder_after_its_first_sentence(
    backend_fixture: str, request: pytest.FixtureRequest, tmp_path
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

    loop = SteeringLoop(never_there, within=True, kept=GainsFile(tmp_path / "g.json", "d"))
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
