"""The eight bipolar emotion axes, the immutable emotion vector, presets and the spec parser.

Every other module speaks in :class:`EmotionVector`; the axis order here is the order of every
list of eight numbers that emochat reads or writes (JSON, transcripts, steering tensors).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from emochat.errors import EmochatError


@dataclass(frozen=True)
class Axis:
    negative: str
    positive: str

    @property
    def name(self) -> str:
        return f"{self.negative}_{self.positive}"

    @property
    def label(self) -> str:
        return f"{self.negative.upper()}↔{self.positive.upper()}"


AXES: tuple[Axis, ...] = (
    Axis("sadness", "joy"),
    Axis("fear", "courage"),
    Axis("disgust", "acceptance"),
    Axis("anger", "calmness"),
    Axis("surprise", "expectation"),
    Axis("distrust", "trust"),
    Axis("boredom", "interest"),
    Axis("indifference", "empathy"),
)
N_AXES = len(AXES)

# pole name -> (axis index, sign of that pole)
POLES: dict[str, tuple[int, int]] = {}
for _index, _axis in enumerate(AXES):
    POLES[_axis.negative] = (_index, -1)
    POLES[_axis.positive] = (_index, +1)

AXIS_NAMES: dict[str, int] = {axis.name: index for index, axis in enumerate(AXES)}

# The adjective for each pole, used in persona prompts and accepted as a preset name.
POLE_ADJECTIVES: dict[str, str] = {
    "sadness": "sad",
    "joy": "joyful",
    "fear": "afraid",
    "courage": "brave",
    "disgust": "disgusted",
    "acceptance": "accepting",
    "anger": "angry",
    "calmness": "calm",
    "surprise": "surprised",
    "expectation": "expectant",
    "distrust": "distrustful",
    "trust": "trusting",
    "boredom": "bored",
    "interest": "interested",
    "indifference": "indifferent",
    "empathy": "empathetic",
}
# Every word that names a pole as a preset: the adjectives plus everyday synonyms.
PRESET_WORDS: dict[str, str] = {
    **{adjective: pole for pole, adjective in POLE_ADJECTIVES.items()},
    "happy": "joy",
    "scared": "fear",
    "curious": "interest",
    "caring": "empathy",
}


class EmotionSpecError(EmochatError):
    """An emotion spec the user typed could not be read."""


@dataclass(frozen=True)
class EmotionVector:
    """Eight values in [-1, 1], one per axis of :data:`AXES`; positive means the second pole."""

    values: tuple[float, ...] = (0.0,) * N_AXES

    def __post_init__(self) -> None:
        if len(self.values) != N_AXES:
            raise ValueError(f"an emotion vector has {N_AXES} values, got {len(self.values)}")
        cleaned = tuple(_clamp(float(value)) for value in self.values)
        object.__setattr__(self, "values", cleaned)

    @classmethod
    def neutral(cls) -> EmotionVector:
        return cls()

    @classmethod
    def pole(cls, name: str, strength: float = 1.0) -> EmotionVector:
        index, sign = POLES[name]
        values = [0.0] * N_AXES
        values[index] = sign * strength
        return cls(tuple(values))

    def __getitem__(self, index: int) -> float:
        return self.values[index]

    def __iter__(self) -> Iterator[float]:
        return iter(self.values)

    def __len__(self) -> int:
        return N_AXES

    def __add__(self, other: EmotionVector) -> EmotionVector:
        return EmotionVector(tuple(a + b for a, b in zip(self.values, other.values, strict=True)))

    def __sub__(self, other: EmotionVector) -> EmotionVector:
        return EmotionVector(tuple(a - b for a, b in zip(self.values, other.values, strict=True)))

    def __mul__(self, factor: float) -> EmotionVector:
        return EmotionVector(tuple(value * factor for value in self.values))

    __rmul__ = __mul__

    def with_axis(self, index: int, value: float) -> EmotionVector:
        values = list(self.values)
        values[index] = value
        return EmotionVector(tuple(values))

    def norm(self) -> float:
        return math.sqrt(sum(value * value for value in self.values))

    def is_neutral(self, tolerance: float = 1e-9) -> bool:
        return all(abs(value) <= tolerance for value in self.values)

    def to_list(self) -> list[float]:
        return [round(value, 4) for value in self.values]

    def to_dict(self) -> dict[str, float]:
        return {axis.name: round(value, 4) for axis, value in zip(AXES, self.values, strict=True)}

    @classmethod
    def from_json(cls, data: Sequence[float] | Mapping[str, float]) -> EmotionVector:
        """Read either a list of eight numbers or a mapping of axis names to numbers."""
        if isinstance(data, Mapping):
            unknown = set(data) - set(AXIS_NAMES)
            if unknown:
                raise EmotionSpecError(f"unknown axis names: {', '.join(sorted(unknown))}")
            return cls(tuple(float(data.get(axis.name, 0.0)) for axis in AXES))
        values = list(data)
        if len(values) != N_AXES or not all(isinstance(v, (int, float)) for v in values):
            raise EmotionSpecError(f"an emotion vector is a list of {N_AXES} numbers")
        return cls(tuple(float(v) for v in values))

    def describe(self, threshold: float = 0.1, limit: int = 3) -> str:
        """A short mood phrase, strongest poles first: ``joy 0.80, courage 0.30``."""
        ranked = sorted(range(N_AXES), key=lambda i: -abs(self.values[i]))
        parts = []
        for index in ranked[:limit]:
            value = self.values[index]
            if abs(value) < threshold:
                break
            axis = AXES[index]
            pole = axis.positive if value > 0 else axis.negative
            parts.append(f"{pole} {abs(value):.2f}")
        return ", ".join(parts) if parts else "neutral"


def expressed_gap(asked: EmotionVector, read: EmotionVector) -> float:
    """How far a reply's read-back mood landed from the one it was asked for: the mean
    distance over the axes it was asked to move (over all eight for a neutral ask)."""
    moved = [index for index, value in enumerate(asked) if value != 0] or list(range(N_AXES))
    return sum(abs(asked[index] - read[index]) for index in moved) / len(moved)


def _clamp(value: float) -> float:
    if math.isnan(value):
        return 0.0
    return max(-1.0, min(1.0, value))


def preset_names() -> list[str]:
    """Every preset a user can name: neutral, each pole, and everyday adjectives for the poles."""
    return ["neutral", *POLES, *PRESET_WORDS]


def preset(name: str) -> EmotionVector:
    key = name.strip().lower()
    if key == "neutral":
        return EmotionVector.neutral()
    pole = PRESET_WORDS.get(key, key)
    if pole not in POLES:
        raise EmotionSpecError(
            f"unknown preset {name!r}; valid presets: {', '.join(preset_names())}"
        )
    return EmotionVector.pole(pole)


def parse_emotion(spec: str) -> tuple[EmotionVector, list[str]]:
    """Read what users type: ``joy=0.8,fear=0.5``, ``sadness_joy=-0.6``, ``sad`` or 8 numbers.

    Returns the vector and warnings for values that were clamped into [-1, 1].
    """
    text = spec.strip()
    if not text:
        raise EmotionSpecError("empty emotion spec; try 'joy=0.8', 'calm' or 8 numbers")
    parts = [part.strip() for part in text.split(",")]
    if "=" not in text:
        if len(parts) == 1:
            return preset(parts[0]), []
        return _parse_numbers(parts)
    return _parse_assignments(parts)


def _parse_numbers(parts: list[str]) -> tuple[EmotionVector, list[str]]:
    if len(parts) != N_AXES:
        raise EmotionSpecError(
            f"a list of numbers needs exactly {N_AXES} values (one per axis), got {len(parts)}"
        )
    values = [_number(part, f"value {position + 1}") for position, part in enumerate(parts)]
    warnings = [
        _clamp_warning(AXES[index].name, value)
        for index, value in enumerate(values)
        if abs(value) > 1
    ]
    return EmotionVector(tuple(values)), warnings


def _parse_assignments(parts: list[str]) -> tuple[EmotionVector, list[str]]:
    values = [0.0] * N_AXES
    seen: set[int] = set()
    warnings = []
    for part in parts:
        name, sep, raw = part.partition("=")
        key = name.strip().lower()
        if not sep or not key:
            raise EmotionSpecError(f"expected name=value, got {part!r}")
        key = PRESET_WORDS.get(key, key)  # "calm=0.5" means "calmness=0.5"
        if key in POLES:
            index, sign = POLES[key]
        elif key in AXIS_NAMES:
            index, sign = AXIS_NAMES[key], 1
        else:
            raise EmotionSpecError(
                f"unknown emotion {name.strip()!r}; valid names: {', '.join([*POLES, *AXIS_NAMES])}"
            )
        if index in seen:
            raise EmotionSpecError(f"axis {AXES[index].name} is set twice in {', '.join(parts)!r}")
        seen.add(index)
        value = _number(raw, key)
        if abs(value) > 1:
            warnings.append(_clamp_warning(key, value))
        values[index] = sign * value
    return EmotionVector(tuple(values)), warnings


def _number(raw: str, what: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise EmotionSpecError(f"{what}: {raw.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise EmotionSpecError(f"{what}: {raw.strip()!r} is not a finite number")
    return value


def _clamp_warning(name: str, value: float) -> str:
    return f"{name}={value:g} is outside [-1, 1]; clamped to {_clamp(value):g}"
