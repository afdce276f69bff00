"""Score a detector on the GoEmotions dev split as the shared data README defines it, and time it.

    python benchmarks/detector_eval.py [--detector minilm] [--data DIR] [--timing 300]

Prints per-pole AUROC (pole vs neutral-only texts, and pole vs pole where both are labelled),
their mean, and p50/p95 milliseconds per message (one message at a time, one thread, models
already loaded).
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    import torch

    from emochat.detect import load_detector, read_many
    from emochat.detect.goemotions import data_dir, load_split, score_poles

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", default="minilm")
    parser.add_argument("--data", help="GoEmotions folder (default ../shared/data/goemotions)")
    parser.add_argument("--timing", type=int, default=300, help="messages to time one by one")
    parser.add_argument("--model", default="default", help="chat model, for --detector probe")
    args = parser.parse_args()
    torch.set_num_threads(1)

    loaded = None
    if args.detector == "probe":
        from emochat.engine.loading import LoadOptions, load_model

        loaded = load_model(LoadOptions(model=args.model, device="cpu", threads=1))
    detector = load_detector(args.detector, loaded)
    examples = load_split("dev", data_dir(args.data))
    texts = [example.text for example in examples]
    started = time.perf_counter()
    batches = [texts[i : i + 256] for i in range(0, len(texts), 256)]
    readings = [reading for batch in batches for reading in read_many(detector, batch)]
    batch_seconds = time.perf_counter() - started
    scores = score_poles(examples, [reading.vector.to_list() for reading in readings])

    print(f"detector={args.detector}  GoEmotions dev: {len(examples)} texts")
    print(f"{'pole':<28}{'AUROC':>7}")
    pole_scores = []
    for name, value in scores.items():
        print(f"{name:<28}{value:>7.3f}")
        if " vs " not in name:
            pole_scores.append(value)
    print(f"{'mean over poles':<28}{statistics.fmean(pole_scores):>7.3f}")
    print(f"{'mean incl. pole vs pole':<28}{statistics.fmean(scores.values()):>7.3f}")

    timings = []
    for text in texts[: args.timing]:
        started = time.perf_counter()
        detector.read(text)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    p95 = timings[int(0.95 * (len(timings) - 1))]
    print(
        f"latency per message: p50 {statistics.median(timings):.1f} ms, p95 {p95:.1f} ms "
        f"(one at a time, 1 thread); batched: {1000 * batch_seconds / len(texts):.1f} ms/text"
    )


if __name__ == "__main__":
    main()
