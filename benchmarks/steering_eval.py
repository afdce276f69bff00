"""Does the emotion vector change the mood of the replies? One reply at +1 and one at -1 on each
axis (same seed), for user prompts disjoint from the extraction prompts.

    python benchmarks/steering_eval.py [--model default] [--backend auto] [--prompts 10]
                                       [--tokens 48] [--modulation steer] [--intensity 1]

Per axis: the share of prompts where the +pole reply reads more like that pole than the -pole
reply. The judge is VADER's compound score for SADNESS↔JOY (not trained by this project) and
emochat's own MiniLM detector for the other axes (trained by this project, on GoEmotions, not for
this purpose: read those rows with that in mind). Also distinct-1 (unique words / words, per
reply, averaged) and how on-topic the replies are (MiniLM cosine between prompt and reply,
steered against unsteered).
"""

from __future__ import annotations

import argparse
import statistics

PROMPTS = [
    "How are you feeling today?",
    "What do you think about Mondays?",
    "Tell me about the last book you read.",
    "My sister is visiting this weekend.",
    "What should I cook for dinner tonight?",
    "Explain briefly how to boil an egg.",
    "I'm thinking about learning the piano.",
    "Describe the view from your window.",
    "What is your opinion of social media?",
    "A new café opened on my street.",
    "How do you feel about the ocean?",
    "Tell me about your childhood.",
]


def distinct_1(text: str) -> float:
    words = text.lower().split()
    return len(set(words)) / len(words) if words else 0.0


def main() -> None:
    import torch

    from emochat.cli import quiet_library_logs

    quiet_library_logs()
    from emochat.detect import load_detector
    from emochat.detect.embedding import SentenceEncoder
    from emochat.detect.vader import VaderDetector
    from emochat.emotion import AXES, EmotionVector
    from emochat.engine.backends import BACKEND_CHOICES, open_backend
    from emochat.engine.generation import SamplingSettings
    from emochat.engine.loading import LoadOptions
    from emochat.engine.modulation import build_modulator

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--backend", choices=BACKEND_CHOICES, default="auto")
    parser.add_argument("--prompts", type=int, default=10)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--modulation", default="steer")
    parser.add_argument("--intensity", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)

    options = LoadOptions(model=args.model, device="cpu", threads=1, backend=args.backend)
    engine = open_backend(options, print)
    engine.use(build_modulator(args.modulation, engine, args.intensity))
    settings = SamplingSettings(max_new_tokens=args.tokens, seed=args.seed)
    vader, detector, encoder = VaderDetector(), load_detector("minilm"), SentenceEncoder()
    prompts = PROMPTS[: args.prompts]

    def answer(prompt: str, emotion: EmotionVector) -> str:
        return engine.reply([{"role": "user", "content": prompt}], emotion, settings).finish()

    def on_topic(pairs: list[tuple[str, str]]) -> float:
        prompt_vectors = encoder.encode([prompt for prompt, _ in pairs])
        reply_vectors = encoder.encode([reply for _, reply in pairs])
        return float((prompt_vectors * reply_vectors).sum(-1).mean())

    neutral = [(prompt, answer(prompt, EmotionVector())) for prompt in prompts]
    print(
        f"model={engine.info.name} backend={engine.info.backend} ({engine.info.quant}) "
        f"modulation={args.modulation} intensity={args.intensity} "
        f"prompts={len(prompts)} tokens={args.tokens}"
    )
    print(f"{'axis':<24}{'judge':<10}{'+ wins':>8}{'distinct-1':>12}{'on-topic':>10}")
    wins_by_axis, examples = [], []
    for index, axis in enumerate(AXES):
        wins, replies = 0, []
        for prompt in prompts:
            plus = answer(prompt, EmotionVector.pole(axis.positive))
            minus = answer(prompt, EmotionVector.pole(axis.negative))
            replies += [(prompt, plus), (prompt, minus)]
            if index == 0:
                scores = [vader.scores(text)["compound"] for text in (plus, minus)]
            else:
                scores = [detector.read(text).vector[index] for text in (plus, minus)]
            wins += scores[0] > scores[1]
        rate = wins / len(prompts)
        wins_by_axis.append(rate)
        judge = "VADER" if index == 0 else "detector"
        diversity = statistics.fmean(distinct_1(reply) for _, reply in replies)
        print(
            f"{axis.label:<24}{judge:<10}{rate:>8.0%}{diversity:>12.2f}{on_topic(replies):>10.2f}"
        )
        examples.append((axis, replies[0][0], replies[0][1], replies[1][1]))
    neutral_diversity = statistics.fmean(distinct_1(reply) for _, reply in neutral)
    print(f"{'unsteered':<24}{'':<10}{'':>8}{neutral_diversity:>12.2f}{on_topic(neutral):>10.2f}")
    print(f"mean + wins over axes: {statistics.fmean(wins_by_axis):.0%}")
    print("\nExamples (first prompt, +pole then -pole):")
    for axis, prompt, plus, minus in examples:
        print(f"[{axis.positive}] {prompt} -> {plus[:110]!r}")
        print(f"[{axis.negative}] {prompt} -> {minus[:110]!r}")


if __name__ == "__main__":
    main()
