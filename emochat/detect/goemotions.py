"""GoEmotions (Demszky et al. 2020) and its mapping onto emochat's poles, exactly as the shared
data README defines it: the detector is trained on the train split and scored on dev."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from emochat.errors import EmochatError

POLE_LABELS: dict[str, tuple[str, ...]] = {
    "sadness": ("sadness", "grief", "disappointment", "remorse"),
    "joy": (
        "joy",
        "amusement",
        "excitement",
        "love",
        "gratitude",
        "optimism",
        "relief",
        "pride",
        "admiration",
    ),
    "fear": ("fear", "nervousness"),
    "disgust": ("disgust", "disapproval"),
    "acceptance": ("approval",),
    "anger": ("anger", "annoyance"),
    "calmness": ("relief",),
    "surprise": ("surprise", "realization", "confusion"),
    "expectation": ("desire", "optimism"),
    "trust": ("admiration", "gratitude"),
    "interest": ("curiosity", "excitement"),
    "empathy": ("caring",),
}


@dataclass(frozen=True)
class Example:
    text: str
    labels: frozenset[str]

    @property
    def neutral_only(self) -> bool:
        return self.labels == {"neutral"}

    def has_pole(self, pole: str) -> bool:
        return bool(self.labels & set(POLE_LABELS.get(pole, ())))


def data_dir(explicit: str | None = None) -> Path:
    """``--data``, else ``EMOCHAT_GOEMOTIONS``, else ``../shared/data/goemotions``."""
    location = explicit or os.environ.get("EMOCHAT_GOEMOTIONS") or "../shared/data/goemotions"
    return Path(location).expanduser()


def load_split(split: str, folder: Path) -> list[Example]:
    try:
        names = (folder / "labels.txt").read_text("utf-8").split()
        lines = (folder / f"{split}.tsv").read_text("utf-8").splitlines()
    except OSError as error:
        raise EmochatError(f"cannot read GoEmotions in {folder}: {error.strerror}") from error
    examples = []
    for line in lines:
        text, label_ids, _comment_id = line.split("\t")
        labels = frozenset(names[int(label)] for label in label_ids.split(","))
        examples.append(Example(text, labels))
    return examples


def auroc(positives: list[float], negatives: list[float]) -> float:
    """Area under the ROC curve: the chance a positive outscores a negative (ties count half)."""
    import numpy as np

    if not positives or not negatives:
        return float("nan")
    scores = np.concatenate([positives, negatives])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # Average ranks over ties.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(average, counts)
    n_pos, n_neg = len(positives), len(negatives)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def score_poles(examples: list[Example], vectors: list[list[float]]) -> dict[str, float]:
    """Per-pole AUROC as the shared README defines it: the signed axis reading separating a
    pole's texts from neutral-only texts, and the two poles of an axis from each other."""
    from emochat.emotion import AXES

    results: dict[str, float] = {}
    neutral = [i for i, example in enumerate(examples) if example.neutral_only]
    for index, axis in enumerate(AXES):
        members = {}
        for pole, sign in ((axis.negative, -1.0), (axis.positive, 1.0)):
            if pole not in POLE_LABELS:
                continue
            members[pole] = [i for i, example in enumerate(examples) if example.has_pole(pole)]
            results[pole] = auroc(
                [sign * vectors[i][index] for i in members[pole]],
                [sign * vectors[i][index] for i in neutral],
            )
        if len(members) == 2:
            negative, positive = set(members[axis.negative]), set(members[axis.positive])
            results[f"{axis.positive} vs {axis.negative}"] = auroc(
                [vectors[i][index] for i in positive - negative],
                [vectors[i][index] for i in negative - positive],
            )
    return results
