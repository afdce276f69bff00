import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emochat.detect import Reading
from emochat.emotion import EmotionVector, parse_emotion
from emochat.errors import EmochatError
from emochat.state import (
    DEAD_ZONE,
    DECAY,
    MAX_STEP,
    EmotionState,
    soothing_target,
)

QUIET = Reading(EmotionVector(), confidence=0.0)


def reading(spec: str, confidence: float = 1.0) -> Reading:
    return Reading(parse_emotion(spec)[0], confidence)


def test_decay_toward_baseline_has_the_stated_half_life() -> None:
    state = EmotionState(vector=EmotionVector.pole("joy"))
    turns = 0
    while state.vector[0] > 0.5:
        state.observe(QUIET)
        turns += 1
    half_life_turns = math.log(0.5) / math.log(DECAY)
    assert turns == math.ceil(half_life_turns) == 5
    assert state.vector[0] == pytest.approx(DECAY**turns)


def test_decay_goes_to_a_non_neutral_baseline() -> None:
    state = EmotionState(baseline=EmotionVector.pole("calmness", 0.4))
    for _ in range(60):
        state.observe(QUIET)
    assert state.vector[3] == pytest.approx(0.4, abs=1e-3)


def test_steps_are_bounded() -> None:
    state = EmotionState()
    state.observe(reading("joy=1"))
    assert state.vector[0] == pytest.approx(min(MAX_STEP, 0.5))
    state = EmotionState(vector=EmotionVector.pole("sadness"))
    state.observe(reading("joy=1"))
    # decayed to -0.85; the step toward +1 would be 0.925 but is bounded
    assert state.vector[0] == pytest.approx(-DECAY + MAX_STEP)


def test_confidence_weights_the_step_and_tiny_readings_are_ignored() -> None:
    sure, unsure = EmotionState(), EmotionState()
    sure.observe(reading("anger=0.5", confidence=1.0))
    unsure.observe(reading("anger=0.5", confidence=0.2))
    assert sure.vector[3] < unsure.vector[3] < 0
    faint = EmotionState()
    faint.observe(reading(f"fear={DEAD_ZONE / 2}"))
    assert faint.vector.is_neutral()


def test_mirror_follows_the_user() -> None:
    state = EmotionState(policy="mirror")
    for _ in range(6):
        state.observe(reading("sadness=0.9,fear=0.6"))
    assert state.vector[0] < -0.5
    assert state.vector[1] < -0.3


def test_soothe_answers_distress_with_calm_courage_and_empathy() -> None:
    target = soothing_target(parse_emotion("fear=0.8,sadness=0.6")[0])
    assert target[1] == pytest.approx(0.8)  # courage
    assert target[3] == pytest.approx(0.8)  # calmness
    assert target[7] == pytest.approx(0.8)  # empathy
    assert target[0] > 0  # some joy for the sadness, never sadness
    state = EmotionState(policy="soothe")
    for _ in range(6):
        state.observe(reading("fear=0.8,sadness=0.6,empathy=0.2"))
    assert state.vector[1] > 0.3 and state.vector[3] > 0.3 and state.vector[7] > 0.3
    assert min(state.vector) >= 0


def test_locked_ignores_readings_but_takes_presets() -> None:
    state = EmotionState(vector=EmotionVector.pole("joy", 0.6), policy="soothe")
    state.set_locked(True)
    assert state.locked and state.policy == "locked"
    state.observe(reading("anger=1"))
    assert state.vector == EmotionVector.pole("joy", 0.6)
    state.set(EmotionVector.pole("trust"))
    assert state.vector == EmotionVector.pole("trust")
    state.set_locked(False)
    assert state.policy == "soothe"


def test_round_trip_serialisation() -> None:
    state = EmotionState(
        vector=EmotionVector((0.1, -0.2, 0.3, 0, 0, 0, 0.5, -0.6)),
        baseline=EmotionVector.pole("calmness", 0.2),
        policy="soothe",
    )
    state.set_locked(True)
    copy = EmotionState.from_dict(state.to_dict())
    assert copy == state
    with pytest.raises(EmochatError):
        EmotionState.from_dict({"baseline": [0] * 8})
    with pytest.raises(EmochatError, match="unknown policy"):
        EmotionState(policy="sulk")


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(
    st.lists(st.lists(finite, min_size=8, max_size=8), min_size=1, max_size=20),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=20, max_size=20),
    st.sampled_from(["mirror", "soothe"]),
)
def test_no_nan_and_always_in_range(values, confidences, policy) -> None:
    state = EmotionState(policy=policy)
    for vector, confidence in zip(values, confidences, strict=False):
        state.observe(Reading(EmotionVector(tuple(vector)), confidence))
        assert all(-1 <= value <= 1 and not math.isnan(value) for value in state.vector)
