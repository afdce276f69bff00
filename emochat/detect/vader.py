"""VADER (MIT): a rule-based valence reader that handles negation and intensifiers. It only
knows SADNESS↔JOY, so that is the one axis it fills in."""

from __future__ import annotations

from typing import Any

from emochat.detect.types import Reading
from emochat.emotion import EmotionVector


def vader_analyzer() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


class VaderDetector:
    name = "vader"

    def __init__(self) -> None:
        self._analyzer = vader_analyzer()

    def scores(self, text: str) -> dict[str, float]:
        return self._analyzer.polarity_scores(text)

    def read(self, text: str) -> Reading:
        scores = self.scores(text)
        vector = EmotionVector.neutral().with_axis(0, scores["compound"])
        return Reading(vector, confidence=1.0 - scores["neu"])
