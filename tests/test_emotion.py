import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emochat.emotion import (
    AXES,
    EmotionSpecError,
    EmotionVector,
    parse_emotion,
    preset,
    preset_names,
)


def test_axes_are_in_the_product_order() -> None:
    assert [axis.label for axis in AXES] == [
        "SADNESS↔JOY",
        "FEAR↔COURAGE",
        "DISGUST↔ACCEPTANCE",
        "ANGER↔CALMNESS",
        "SURPRISE↔EXPECTATION",
        "DISTRUST↔TRUST",
        "BOREDOM↔INTEREST",
        "INDIFFERENCE↔EMPATHY",
    ]


def test_pole_names_set_their_axis_with_the_pole_sign() -> None:
    vector, warnings = parse_emotion("joy=0.8,fear=0.5")
    assert vector.values == (0.8, -0.5, 0, 0, 0, 0, 0, 0)
    assert warnings == []
    assert parse_emotion("sadness=0.6")[0][0] == pytest.approx(-0.6)


def test_axis_names_take_the_value_as_written() -> None:
    vector, _ = parse_emotion("sadness_joy=-0.6, boredom_interest=0.25")
    assert vector[0] == pytest.approx(-0.6)
    assert vector[6] == pytest.approx(0.25)


def test_presets_cover_every_pole_and_neutral() -> None:
    assert parse_emotion("joy")[0] == EmotionVector.pole("joy")
    assert parse_emotion("sad")[0][0] == -1.0
    assert parse_emotion("Calm")[0][3] == 1.0
    assert preset("neutral").is_neutral()
    for name in preset_names():
        vector = preset(name)
        assert name == "neutral" or vector.norm() == pytest.approx(1.0)


def test_eight_numbers_are_a_vector() -> None:
    vector, _ = parse_emotion("0.1,0.2,0.3,0.4,-0.5,-0.6,-0.7,-0.8")
    assert vector.to_list() == [0.1, 0.2, 0.3, 0.4, -0.5, -0.6, -0.7, -0.8]


def test_out_of_range_values_are_clamped_with_a_warning() -> None:
    vector, warnings = parse_emotion("joy=1.5,fear=-3")
    assert vector[0] == 1.0
    assert vector[1] == 1.0  # fear=-3 means courage 3, clamped to 1
    assert len(warnings) == 2
    assert "clamped" in warnings[0]


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("joyy=0.3", "valid names: sadness, joy"),
        ("happyish", "valid presets: neutral"),
        ("joy=lots", "not a number"),
        ("joy=nan", "not a finite number"),
        ("1,2,3", "exactly 8 values"),
        ("joy=0.2,sadness=0.3", "set twice"),
        ("", "empty"),
        ("=0.3", "expected name=value"),
    ],
)
def test_bad_specs_explain_themselves(spec: str, needle: str) -> None:
    with pytest.raises(EmotionSpecError, match=needle):
        parse_emotion(spec)


def test_json_round_trip_as_list_and_as_mapping() -> None:
    vector = EmotionVector((0.1, -0.2, 0.3, -0.4, 0.5, -0.6, 0.7, -0.8))
    assert EmotionVector.from_json(json.loads(json.dumps(vector.to_list()))) == vector
    assert EmotionVector.from_json(vector.to_dict()) == vector
    with pytest.raises(EmotionSpecError):
        EmotionVector.from_json({"joy_sadness": 1})
    with pytest.raises(EmotionSpecError):
        EmotionVector.from_json([1, 2])


def test_arithmetic_blends_and_clamps() -> None:
    joy = EmotionVector.pole("joy")
    fear = EmotionVector.pole("fear")
    assert (joy + joy)[0] == 1.0
    assert (joy - fear).values[:2] == (1.0, 1.0)
    assert (joy * 0.5)[0] == 0.5
    assert (0.5 * joy)[0] == 0.5
    assert joy.with_axis(7, 0.4)[7] == 0.4


def test_describe_names_the_strongest_poles() -> None:
    vector = EmotionVector((0.8, 0, 0, 0, 0, 0, 0, -0.3))
    assert vector.describe() == "joy 0.80, indifference 0.30"
    assert EmotionVector().describe() == "neutral"


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=8, max_size=8))
def test_any_input_becomes_a_valid_vector(values: list[float]) -> None:
    vector = EmotionVector(tuple(values))
    assert all(-1.0 <= value <= 1.0 and not math.isnan(value) for value in vector)


def test_the_vector_is_immutable() -> None:
    vector = EmotionVector()
    with pytest.raises(AttributeError):
        vector.values = (1.0,) * 8  # type: ignore[misc]
