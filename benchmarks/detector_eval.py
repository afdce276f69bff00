"""Score detectors on the GoEmotions dev split as the shared data README defines it, side by
side, and time them.

    python benchmarks/detector_eval.py [--detectors minilm,vader] [--data DIR] [--timing 300]
                                       [--jsonl 5000]

Prints per-pole AUROC (pole vs neutral-only texts) and pole-vs-pole AUROC for each detector,
their means, a reliability table for the first detector's confidence (how often a text read
with that confidence carries an emotion label), readings of a few plain sentences, latency per
message (one at a time, one thread, models loaded, messages up to 64 tokens), and the time of
`emochat detect --jsonl` over N dev lines (start-up included).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

PLAIN = [
    "I just got the job!!!",
    "My dog died this morning.",
    "What time does the library open tomorrow?",
    "The meeting is at three in the conference room.",
    "Someone is following me home and I am scared.",
    "Thank you so much, you really helped me.",
]
BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 1.01)


def reliability(examples, readings) -> list[tuple[str, int, float, float]]:
    """Per confidence bin: how many texts, their mean confidence, and the share that carry an
    emotion label (not neutral-only): a calibrated confidence matches that share."""
    rows = []
    for low, high in itertools.pairwise(BINS):
        members = [
            (reading.confidence, not example.neutral_only)
            for example, reading in zip(examples, readings, strict=True)
            if low <= reading.confidence < high
        ]
        if members:
            confidence = statistics.fmean(c for c, _ in members)
            share = statistics.fmean(float(e) for _, e in members)
            rows.append((f"{low:.1f}-{min(high, 1.0):.1f}", len(members), confidence, share))
    return rows


def latency(detector, texts: list[str], count: int) -> tuple[float, float]:
    timings = []
    for text in texts[:count]:
        started = time.perf_counter()
        detector.read(text)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return statistics.median(timings), timings[int(0.95 * (len(timings) - 1))]


def make_detector(name: str) -> Any:
    """A detector by its --detector name, or ``minilm-torch``: the torch fallback."""
    if name == "minilm-torch":
        from emochat.detect.tuned import TunedDetector

        return TunedDetector()
    from emochat.detect import load_detector

    return load_detector(name)


def jsonl_seconds(texts: list[str], detector: str) -> float:
    with tempfile.TemporaryFile("w+") as lines:
        lines.write("\n".join(text.replace("\n", " ") for text in texts) + "\n")
        lines.seek(0)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "emochat", "detect", "--jsonl", "--detector", detector],
            stdin=lines,
            stdout=subprocess.DEVNULL,
            check=True,
        )
    return time.perf_counter() - started


def main() -> None:
    import torch
    from tokenizers import Tokenizer

    from emochat.cli import quiet_library_logs
    from emochat.detect import read_many
    from emochat.detect.embedding import minilm_path
    from emochat.detect.goemotions import data_dir, load_split, score_poles

    quiet_library_logs()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--detectors",
        default="minilm,minilm-torch,vader",
        help="minilm is the default (llama.cpp), minilm-torch the same detector on torch",
    )
    parser.add_argument("--data", help="GoEmotions folder (default ../shared/data/goemotions)")
    parser.add_argument("--timing", type=int, default=300, help="messages to time one by one")
    parser.add_argument(
        "--jsonl", type=int, default=5000, help="lines for detect --jsonl (0: skip)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)

    names = args.detectors.split(",")
    examples = load_split("dev", data_dir(args.data))
    texts = [example.text for example in examples]
    detectors = {name: make_detector(name) for name in names}
    readings = {name: read_many(detector, texts) for name, detector in detectors.items()}
    scores = {
        name: score_poles(examples, [reading.vector.to_list() for reading in rows])
        for name, rows in readings.items()
    }

    print(f"GoEmotions dev: {len(examples)} texts")
    print(f"{'AUROC':<28}" + "".join(f"{name:>14}" for name in names))
    for pole in scores[names[0]]:
        print(f"{pole:<28}" + "".join(f"{scores[name][pole]:>14.3f}" for name in names))
    for label, keep in (("mean over poles", False), ("mean incl. pole vs pole", True)):
        means = [
            statistics.fmean(v for p, v in scores[name].items() if keep or " vs " not in p)
            for name in names
        ]
        print(f"{label:<28}" + "".join(f"{mean:>14.3f}" for mean in means))

    first = names[0]
    print(f"\nreliability of {first}'s confidence (share of texts with an emotion label)")
    print(f"{'confidence':<12}{'texts':>7}{'mean conf.':>12}{'emotional':>11}")
    for label, count, confidence, share in reliability(examples, readings[first]):
        print(f"{label:<12}{count:>7}{confidence:>12.2f}{share:>11.2f}")

    print(f"\nplain sentences, read by {first}")
    for text, reading in zip(PLAIN, read_many(detectors[first], PLAIN), strict=True):
        print(f"  {text:<50} {reading.vector.describe(limit=2):<32} conf {reading.confidence:.2f}")

    tokenizer = Tokenizer.from_file(str(minilm_path() / "tokenizer.json"))
    tokenizer.no_padding()
    short = [t for t in texts if len(tokenizer.encode(t).ids) <= 64]
    print()
    for name, detector in detectors.items():
        p50, p95 = latency(detector, short, args.timing)
        print(f"{name}: {p50:.1f} ms p50, {p95:.1f} ms p95 per message (1 thread, one at a time)")
    if args.jsonl:
        seconds = jsonl_seconds(texts[: args.jsonl], first)
        print(
            f"emochat detect --jsonl over {args.jsonl} lines: {seconds:.1f} s (start-up included)"
        )


if __name__ == "__main__":
    main()
