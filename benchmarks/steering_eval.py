"""Does the emotion vector change the mood of the replies while they still answer? One reply at
+1 and one at -1 on each axis (same seed), and one unsteered, for held-out prompts
(benchmarks/data/steering_heldout.json: questions, requests, small talk, bad news, good news and
factual questions, disjoint from every prompt that builds the steering directions).

    python benchmarks/steering_eval.py [--model default] [--backend auto] [--modulation steer]
                                       [--intensity 1] [--vectors DIR] [--per-kind 6]
                                       [--loops off,on] [--tokens 48] [--seed 7]
                                       [--save replies.json]

The same prompts are answered with the steering loop off (plain steering) and on (each reply's
first sentence read by emochat's detector, and the axes it falls short of steered harder for the
rest). The loop reads with the detector, so with the loop on the "detector" judge is no longer
independent: the anchor judge stays so.

Two judges read every reply on all eight axes:
- "detector": emochat's fine-tuned MiniLM detector (trained on GoEmotions; it never saw these
  prompts and did not choose the directions);
- "anchor": the plain all-MiniLM-L6-v2 cosine to hand-written sentences for each pole
  (benchmarks/data/anchor_judge.json) minus that to the other pole's: no training at all.

Per axis and loop: success (share of prompts where the +pole reply reads more like that pole
than the -pole reply), on-topic (prompt·reply MiniLM cosine, steered ÷ unsteered), distinct-1
(unique words / words, per reply), the share of factual questions whose replies still hold the
answer, and the gap: how far the detector's reading of each steered reply lands from the vector
asked (the mean |asked − read| over the axes asked, as the app's sidebar shows it). Then the
cross-talk matrix per judge: row = the axis steered, column = the axis read, value = mean
reading of the +pole reply minus the -pole reply; the last column is the largest off-diagonal
|value| over the diagonal one (target ≤ 0.5).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"


def distinct_1(text: str) -> float:
    words = text.lower().split()
    return len(set(words)) / len(words) if words else 0.0


class AnchorJudge:
    """Axis reading = cosine to the positive pole's anchor centroid minus the negative's."""

    def __init__(self, encoder: Any) -> None:
        import torch

        from emochat.emotion import AXES

        poles = json.loads((DATA / "anchor_judge.json").read_text())["poles"]
        centroids = {}
        for pole, sentences in poles.items():
            mean = encoder.encode(sentences).mean(0)
            centroids[pole] = mean / mean.norm()
        self._encoder = encoder
        self._axes = torch.stack([centroids[a.positive] - centroids[a.negative] for a in AXES])

    def read(self, texts: list[str]) -> Any:
        return (self._encoder.encode(texts) @ self._axes.T).numpy()


def load_heldout(per_kind: int) -> tuple[list[str], dict[str, str]]:
    held = json.loads((DATA / "steering_heldout.json").read_text())
    prompts = [prompt for kind in held["prompts"].values() for prompt in kind[:per_kind]]
    return prompts, held["answers"]


def answered(reply: str, pattern: str) -> bool:
    return re.search(rf"\b(?:{pattern})\b", reply, re.IGNORECASE) is not None


def print_matrix(name: str, matrix: Any, labels: list[str]) -> float:
    """Print the cross-talk matrix; return the worst row's off-diagonal / diagonal ratio."""
    import numpy as np

    print(f"\nCross-talk ({name}): row = axis steered, column = axis read (+pole − −pole)")
    print(" " * 14 + "".join(f"{label:>8}" for label in labels) + f"{'off/diag':>10}")
    worst = 0.0
    for index, row in enumerate(matrix):
        diagonal = abs(row[index])
        off = np.abs(np.delete(row, index)).max()
        ratio = off / max(diagonal, 1e-9)
        worst = max(worst, ratio)
        cells = "".join(f"{value:>8.3f}" for value in row)
        print(f"{labels[index]:<14}{cells}{ratio:>10.2f}")
    return worst


def steered_replies(
    engine: Any,
    prompts: list[str],
    settings: Any,
    loop: Any,
) -> dict[str, list[str]]:
    """One reply per pole and prompt, with the steering loop (None: plain steering)."""
    from emochat.emotion import AXES, EmotionVector

    replies: dict[str, list[str]] = {
        pole: [] for axis in AXES for pole in (axis.positive, axis.negative)
    }
    for prompt in prompts:
        for pole in replies:
            emotion = EmotionVector.pole(pole)
            check = loop.for_reply(emotion) if loop else None
            messages = [{"role": "user", "content": prompt}]
            replies[pole].append(engine.reply(messages, emotion, settings, check).finish())
    return replies


def main() -> None:
    import numpy as np
    import torch

    from emochat.cli import quiet_library_logs

    quiet_library_logs()
    from emochat.detect import read_many
    from emochat.detect.embedding import SentenceEncoder
    from emochat.emotion import AXES, EmotionVector, expressed_gap
    from emochat.engine.backends import BACKEND_CHOICES
    from emochat.engine.directions import EmotionDirections
    from emochat.engine.generation import SamplingSettings
    from emochat.engine.modulation import MODULATION_CHOICES
    from emochat.engine.modulation.loop import SteeringLoop
    from emochat.runtime import GenerationConfig, ModelConfig, RunConfig, Runtime

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--backend", choices=BACKEND_CHOICES, default="auto")
    parser.add_argument("--modulation", choices=MODULATION_CHOICES, default="steer")
    parser.add_argument("--intensity", type=float, default=1.0)
    parser.add_argument("--vectors", help="steer with the vectors in this folder instead")
    parser.add_argument("--per-kind", type=int, default=6, help="prompts of each kind (max 6)")
    parser.add_argument(
        "--loops", default="off,on", help="the steering loop: off, on, or off,on for both"
    )
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--save", help="write every prompt and reply to this JSON file")
    args = parser.parse_args()
    loops = args.loops.split(",")
    if not loops or not set(loops) <= {"off", "on"}:
        parser.error("--loops takes off, on or off,on")
    torch.set_num_threads(args.threads)

    config = RunConfig(
        model=ModelConfig(
            model=args.model, backend=args.backend, device="cpu", threads=args.threads
        ),
        # --vectors replaces the modulator: none is built first
        generation=GenerationConfig(
            modulation="off" if args.vectors else args.modulation, intensity=args.intensity
        ),
        detector="minilm",
    )
    runtime = Runtime(config, print)
    engine = runtime.backend()
    if args.vectors:
        engine.use(engine.steering(EmotionDirections.load(Path(args.vectors)), args.intensity))
    modulator = engine.modulator
    settings = SamplingSettings(max_new_tokens=args.tokens, seed=args.seed)
    prompts, answers = load_heldout(args.per_kind)
    detector = runtime.detector()

    loop = SteeringLoop(lambda text: list(detector.read(text).vector))
    neutral = [
        engine.reply([{"role": "user", "content": p}], EmotionVector(), settings).finish()
        for p in prompts
    ]
    by_loop = {
        mode: steered_replies(engine, prompts, settings, loop if mode == "on" else None)
        for mode in loops
    }
    if args.save:
        saved = {"prompts": prompts, "neutral": neutral, **by_loop}
        Path(args.save).write_text(json.dumps(saved, indent=1))

    encoder = SentenceEncoder()
    anchor = AnchorJudge(encoder)
    judges = {
        "detector": lambda texts: np.array([list(r.vector) for r in read_many(detector, texts)]),
        "anchor": anchor.read,
    }
    prompt_vectors = encoder.encode(prompts)

    def on_topic(texts: list[str]) -> float:
        return float((prompt_vectors * encoder.encode(texts)).sum(-1).mean())

    factual = [index for index, prompt in enumerate(prompts) if prompt in answers]

    def answer_rate(texts: list[str]) -> float:
        hits = [answered(texts[index], answers[prompts[index]]) for index in factual]
        return statistics.fmean(hits) if hits else float("nan")

    baseline = on_topic(neutral)
    print(
        f"\nmodel={engine.info.name} backend={engine.info.backend} ({engine.info.quant}) "
        f"modulation={modulator.name} intensity={args.intensity} "
        f"vectors={args.vectors or 'shipped'} "
        f"prompts={len(prompts)} tokens={args.tokens} seed={args.seed}"
    )
    summaries = {}
    for mode, replies in by_loop.items():
        readings = {
            name: {pole: judge(texts) for pole, texts in replies.items()}
            for name, judge in judges.items()
        }
        print(f"\nloop: {mode}")
        print(
            f"{'axis':<24}{'detector':>9}{'anchor':>8}{'on-topic':>10}{'distinct-1':>12}"
            f"{'answers':>9}{'gap':>7}"
        )
        rows = []
        for index, axis in enumerate(AXES):
            plus, minus = replies[axis.positive], replies[axis.negative]
            wins = [
                float(
                    (
                        readings[name][axis.positive][:, index]
                        > readings[name][axis.negative][:, index]
                    ).mean()
                )
                for name in judges
            ]
            ratio = statistics.fmean([on_topic(plus), on_topic(minus)]) / baseline
            diversity = statistics.fmean(distinct_1(text) for text in plus + minus)
            rate = statistics.fmean([answer_rate(plus), answer_rate(minus)])
            gap = statistics.fmean(
                expressed_gap(EmotionVector.pole(pole), EmotionVector.from_json(list(read)))
                for pole in (axis.positive, axis.negative)
                for read in np.clip(readings["detector"][pole], -1, 1)
            )
            rows.append((*wins, ratio, diversity, rate, gap))
            print(
                f"{axis.label:<24}{wins[0]:>9.0%}{wins[1]:>8.0%}{ratio:>10.2f}"
                f"{diversity:>12.2f}{rate:>9.0%}{gap:>7.2f}"
            )
        summaries[mode] = rows
        for label, summary in (("mean", np.mean(rows, 0)), ("lowest axis", np.min(rows, 0))):
            detector_rate, anchor_rate, ratio, diversity, rate, gap = summary
            print(
                f"{label:<24}{detector_rate:>9.0%}{anchor_rate:>8.0%}{ratio:>10.2f}"
                f"{diversity:>12.2f}{rate:>9.0%}{gap:>7.2f}"
            )
        labels = [axis.positive[:7] for axis in AXES]
        for name in judges:
            matrix = np.stack(
                [
                    (readings[name][axis.positive] - readings[name][axis.negative]).mean(0)
                    for axis in AXES
                ]
            )
            worst = print_matrix(f"{name}, loop {mode}", matrix, labels)
            print(f"worst off-diagonal / diagonal ({name}, loop {mode}): {worst:.2f}")
    neutral_diversity = statistics.fmean(distinct_1(text) for text in neutral)
    print(
        f"\nunsteered: distinct-1 {neutral_diversity:.2f}, answers "
        f"{answer_rate(neutral):.0%}, prompt·reply cosine {baseline:.3f}"
    )
    print("\nSuccess by loop, detector / anchor (on-topic):")
    print(f"{'axis':<24}" + "".join(f"{mode:>22}" for mode in summaries))
    for index, axis in enumerate(AXES):
        cells = "".join(
            f"{f'{rows[index][0]:.0%} / {rows[index][1]:.0%} ({rows[index][2]:.2f})':>22}"
            for rows in summaries.values()
        )
        print(f"{axis.label:<24}{cells}")
    print("\nExamples (first prompt, +pole then -pole):")
    for mode, replies in by_loop.items():
        for axis in AXES:
            for pole in (axis.positive, axis.negative):
                print(f"[{mode} {pole}] {prompts[0]} -> {replies[pole][0][:110]!r}")


if __name__ == "__main__":
    main()
