"""The shipped data recipe, distillation: the model answers many varied prompts under sampled
emotion vectors (single poles, mixes of two axes, different strengths, and none) through
activation steering; two judges keep the replies that are in the asked mood (the detector reads
the reply in the vector's direction) and still on the question (prompt·reply similarity not far
below the unsteered replies'); each kept reply is labelled with the vector that produced it.
Trained on these, the projection and the LoRA learn to produce the mood from the vector alone.
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

# A steered reply is kept when the detector's reading, projected on the unit vector asked for,
# reaches this, and its on-topic similarity is at least this share of the unsteered replies'.
MOOD_MARGIN = 0.15
ON_TOPIC_SHARE = 0.9
NEUTRAL_SHARE = 0.2  # of the samples, unsteered and labelled with the zero vector


def load_prompts() -> list[str]:
    text = resources.files("emochat").joinpath("data/train_prompts.json").read_text("utf-8")
    data = json.loads(text)
    return [t.format(s=s) for s in data["subjects"] for t in data["templates"]]


def sample_vector(rng: random.Random) -> EmotionVector:
    """None (a fifth), one pole at 0.6 or 1.0, or two axes mixed at 0.4–1.0 each."""
    roll = rng.random()
    if roll < NEUTRAL_SHARE:
        return EmotionVector()
    values = [0.0] * N_AXES
    if roll < 0.6:
        values[rng.randrange(N_AXES)] = rng.choice((-1, 1)) * rng.choice((0.6, 1.0))
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
    from emochat.detect import read_many
    from emochat.detect.embedding import SentenceEncoder
    from emochat.engine.generation import SamplingSettings

    rng = random.Random(seed)
    prompts = load_prompts()
    rng.shuffle(prompts)
    samples = []
    for index in range(count):
        prompt, vector = prompts[index % len(prompts)], sample_vector(rng)
        settings = SamplingSettings(max_new_tokens=tokens, seed=seed + index)
        reply = engine.reply([{"role": "user", "content": prompt}], vector, settings).finish()
        samples.append((prompt, vector, whole_sentences(reply)))
        if (index + 1) % 100 == 0:
            progress(f"{index + 1}/{count} replies")
    finished = [sample for sample in samples if sample[2]]
    if not finished:
        raise EmochatError("no reply finished a sentence; try more --tokens")
    encoder = SentenceEncoder()
    similarity = (
        (encoder.encode([p for p, _, _ in finished]) * encoder.encode([r for _, _, r in finished]))
        .sum(-1)
        .tolist()
    )
    unsteered = [s for s, (_, v, _) in zip(similarity, finished, strict=True) if v.is_neutral()]
    floor = ON_TOPIC_SHARE * statistics.fmean(unsteered) if unsteered else 0.0
    readings = read_many(detector, [reply for _, _, reply in finished])
    kept = 0
    with out.open("w", encoding="utf-8") as handle:
        for (prompt, vector, reply), on_topic, reading in zip(
            finished, similarity, readings, strict=True
        ):
            mood = 0.0
            if not vector.is_neutral():
                mood = sum(r * v for r, v in zip(reading.vector, vector, strict=True))
                mood /= vector.norm()
                if mood < MOOD_MARGIN:
                    continue
            if on_topic < floor:
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
