"""The shipped data recipe, distillation: the model answers many varied prompts under sampled
emotion vectors (single poles, mixes of two axes, different strengths, and none) through
activation steering, with the steering loop's within-reply boost; two judges keep the replies
that are in the asked mood (the detector reads the reply moved in the vector's direction from
where this model's unsteered replies read) and still on the question (prompt·reply similarity
not far below the unsteered replies'); each kept reply is labelled with the vector that
produced it. Trained on these, the projection and the LoRA learn
to produce the mood from the vector alone.

Poles are balanced: a pole is asked for in inverse proportion to how often its replies have
passed so far (:class:`PoleBalance`), so the poles this model rarely expresses (on the default
model indifference, distrust, boredom) are tried more, not kept less.
"""

from __future__ import annotations

import json
import random
import re
import statistics
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from emochat.emotion import N_AXES, EmotionVector
from emochat.errors import EmochatError
from emochat.progress import Progress

if TYPE_CHECKING:
    from emochat.detect import Detector
    from emochat.engine.backends.base import Backend

# A steered reply is kept when the detector's reading, less the unsteered replies' mean reading,
# projected on the unit vector asked for, reaches this, and its on-topic similarity is at least
# this share of the unsteered replies'.
MOOD_MARGIN = 0.15
ON_TOPIC_SHARE = 0.9
NEUTRAL_SHARE = 0.2  # of the samples, unsteered and labelled with the zero vector


def load_prompts() -> list[str]:
    text = resources.files("emochat").joinpath("data/train_prompts.json").read_text("utf-8")
    data = json.loads(text)
    return [t.format(s=s) for s in data["subjects"] for t in data["templates"]]


class PoleBalance:
    """How often each pole's replies have passed the mood judge so far; the poles that pass
    rarely are asked for more often (in inverse proportion to their smoothed pass rate)."""

    def __init__(self) -> None:
        self.tries = [0] * (2 * N_AXES)  # index 2·axis for the negative pole, +1 the positive
        self.passes = [0] * (2 * N_AXES)

    @staticmethod
    def poles(vector: EmotionVector) -> list[int]:
        return [2 * axis + (value > 0) for axis, value in enumerate(vector) if value != 0]

    def weights(self) -> list[float]:
        return [
            (tries + 2) / (passes + 1)
            for tries, passes in zip(self.tries, self.passes, strict=True)
        ]

    def record(self, vector: EmotionVector, passed: bool) -> None:
        for pole in self.poles(vector):
            self.tries[pole] += 1
            self.passes[pole] += passed


def sample_vector(rng: random.Random, balance: PoleBalance | None = None) -> EmotionVector:
    """None (a fifth), one pole at 0.6 or 1.0 (the pole weighted by ``balance``), or two axes
    mixed at 0.4–1.0 each."""
    roll = rng.random()
    if roll < NEUTRAL_SHARE:
        return EmotionVector()
    values = [0.0] * N_AXES
    if roll < 0.6:
        weights = balance.weights() if balance else [1.0] * (2 * N_AXES)
        pole = rng.choices(range(2 * N_AXES), weights=weights)[0]
        values[pole // 2] = (1 if pole % 2 else -1) * rng.choice((0.6, 1.0))
    else:
        for axis in rng.sample(range(N_AXES), 2):
            values[axis] = rng.choice((-1, 1)) * round(rng.uniform(0.4, 1.0), 2)
    return EmotionVector(tuple(values))


def whole_sentences(text: str) -> str | None:
    """The reply up to its last finished sentence (a reply cut by the token limit would teach
    the model to stop mid-word), or None when that leaves less than half of it."""
    text = text.strip()
    ends = [match.end() for match in re.finditer(r"[.!?](?=\s|$)", text)]
    if not ends or ends[-1] < len(text) / 2:
        return None
    return text[: ends[-1]]


class MoodBaseline:
    """How this model's unsteered replies read on average: a steered reply is judged by how
    far it moved from there in the asked direction, not from zero (a cheerful model's replies
    read joyful and empathetic unsteered, so an indifferent one rarely reads below zero)."""

    def __init__(self) -> None:
        self._sum = [0.0] * N_AXES
        self._count = 0

    def add(self, reading: EmotionVector) -> None:
        self._sum = [total + value for total, value in zip(self._sum, reading, strict=True)]
        self._count += 1

    def moved(self, vector: EmotionVector, reading: EmotionVector) -> float:
        """The reading less the baseline, projected on the unit vector asked for (0 for none
        asked)."""
        if vector.is_neutral():
            return 0.0
        mean = [total / max(1, self._count) for total in self._sum]
        moved = [r - m for r, m in zip(reading, mean, strict=True)]
        return sum(d * v for d, v in zip(moved, vector, strict=True)) / vector.norm()


def build_training_set(
    engine: Backend,
    detector: Detector,
    out: Path,
    *,
    count: int,
    tokens: int,
    seed: int,
    progress: Progress,
) -> tuple[int, int]:
    """Generate ``count`` replies of up to ``tokens`` on ``engine`` (which steers), keep those
    ``detector`` reads in the asked mood and on the question, write them to ``out``;
    (kept, generated)."""
    from emochat.detect.embedding import SentenceEncoder
    from emochat.engine.generation import SamplingSettings
    from emochat.engine.modulation.loop import SteeringLoop

    rng = random.Random(seed)
    prompts = load_prompts()
    rng.shuffle(prompts)
    loop = SteeringLoop(lambda text: detector.read(text).vector)
    balance = PoleBalance()
    baseline = MoodBaseline()
    samples = []
    for index in range(count):
        prompt, vector = prompts[index % len(prompts)], sample_vector(rng, balance)
        settings = SamplingSettings(max_new_tokens=tokens, seed=seed + index)
        check = loop.for_reply(vector)
        reply = engine.reply([{"role": "user", "content": prompt}], vector, settings, check)
        text = whole_sentences(reply.finish())
        reading = detector.read(text).vector if text else None
        if reading is not None and vector.is_neutral():
            baseline.add(reading)
        elif not vector.is_neutral():
            moved = reading is not None and baseline.moved(vector, reading) >= MOOD_MARGIN
            balance.record(vector, moved)
        samples.append((prompt, vector, text, reading))
        if (index + 1) % 100 == 0:
            progress(f"{index + 1}/{count} replies")
    finished = [sample for sample in samples if sample[2]]
    if not finished:
        raise EmochatError("no reply finished a sentence; try more --tokens")
    encoder = SentenceEncoder()
    similarity = (
        (encoder.encode([s[0] for s in finished]) * encoder.encode([s[2] for s in finished]))
        .sum(-1)
        .tolist()
    )
    unsteered = [
        s for s, sample in zip(similarity, finished, strict=True) if sample[1].is_neutral()
    ]
    floor = ON_TOPIC_SHARE * statistics.fmean(unsteered) if unsteered else 0.0
    kept = 0
    with out.open("w", encoding="utf-8") as handle:
        for (prompt, vector, reply, reading), on_topic in zip(finished, similarity, strict=True):
            mood = baseline.moved(vector, reading)
            if (not vector.is_neutral() and mood < MOOD_MARGIN) or on_topic < floor:
                continue
            record = {
                "messages": [
                    {"role": "user", "content": prompt},
                    {"role": "assistant", "content": reply},
                ],
                "vector": vector.to_list(),
                "judged": {"mood": round(mood, 3), "on_topic": round(on_topic, 3)},
            }
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            kept += 1
    return kept, len(samples)
