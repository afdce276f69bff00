"""Train the default detector's head on the GoEmotions train split.

    python -m emochat.detect.train [--data ../shared/data/goemotions] [--out PATH]

Features are MiniLM embeddings and VADER scores; the head is one L2-regularised
logistic regression per output (each pole, and "neutral"), fitted full-batch. The hand-written
seeds in emochat/data/detector_seeds.json give the poles that GoEmotions has no label for a few
positives. ``--features-cache FILE`` keeps the embeddings (minutes on a CPU) between runs.
"""

from __future__ import annotations

import argparse
import json
import time
from importlib import resources
from pathlib import Path
from typing import Any

from emochat.detect.embedding import HEAD_FILE, OUTPUTS, EmotionHead, FeatureExtractor
from emochat.detect.goemotions import Example, data_dir, load_split

SEED_REPEATS = 20  # each seed sentence stands for this many examples, or 16 would be noise


def targets(example: Example, seed_pole: str | None = None) -> list[float]:
    if seed_pole is not None:
        return [float(output == seed_pole) for output in OUTPUTS]
    return [
        float(example.neutral_only if output == "neutral" else example.has_pole(output))
        for output in OUTPUTS
    ]


def seed_examples() -> list[tuple[str, str]]:
    text = resources.files("emochat").joinpath("data/detector_seeds.json").read_text("utf-8")
    seeds = json.loads(text)
    return [(sentence, pole) for pole in OUTPUTS if pole in seeds for sentence in seeds[pole]]


def fit(features, labels, steps: int = 400, weight_decay: float = 1e-3) -> EmotionHead:
    import torch

    mean = features.mean(0)
    std = features.std(0).clamp_min(1e-6)
    standardised = (features - mean) / std
    weight = torch.zeros(labels.shape[1], features.shape[1], requires_grad=True)
    bias = torch.zeros(labels.shape[1], requires_grad=True)
    positives = labels.sum(0).clamp_min(1)
    pos_weight = ((labels.shape[0] - positives) / positives).clamp(max=20)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    optimiser = torch.optim.Adam([weight, bias], lr=0.02)
    for _ in range(steps):
        optimiser.zero_grad()
        loss = loss_fn(standardised @ weight.T + bias, labels)
        loss = loss + weight_decay * weight.pow(2).sum()
        loss.backward()
        optimiser.step()
    return EmotionHead(weight.detach(), bias.detach(), mean, std)


def text_features(texts: list[str], cache: Path | None) -> Any:
    import torch

    if cache is not None and cache.is_file():
        stored = torch.load(cache, weights_only=True)
        if stored["count"] == len(texts):
            return stored["features"]
    print(f"Embedding {len(texts)} texts…", flush=True)
    extractor = FeatureExtractor()
    features = torch.cat(
        [extractor.features(texts[i : i + 2048]) for i in range(0, len(texts), 2048)]
    )
    if cache is not None:
        torch.save({"count": len(texts), "features": features}, cache)
    return features


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description="Train the emotion detector head.")
    parser.add_argument("--data", help="GoEmotions folder (default ../shared/data/goemotions)")
    default_out = Path(str(resources.files("emochat").joinpath(HEAD_FILE)))
    parser.add_argument("--out", type=Path, default=default_out)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--features-cache", type=Path, help="file to keep the embeddings in")
    args = parser.parse_args()

    started = time.perf_counter()
    examples = load_split("train", data_dir(args.data))
    seeds = seed_examples()
    texts = [example.text for example in examples] + [text for text, _ in seeds]
    rows = [targets(example) for example in examples]
    rows += [targets(Example(text, frozenset()), pole) for text, pole in seeds]
    features = text_features(texts, args.features_cache)
    labels = torch.tensor(rows)
    repeat = torch.ones(len(texts), dtype=torch.long)
    repeat[len(examples) :] = SEED_REPEATS
    features, labels = features.repeat_interleave(repeat, 0), labels.repeat_interleave(repeat, 0)
    print(f"Fitting the head on {features.shape[0]} rows…", flush=True)
    head = fit(features, labels, steps=args.steps)
    head.save(args.out, {"trained_on": "GoEmotions train split + detector_seeds.json"})
    print(f"Saved {args.out} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
