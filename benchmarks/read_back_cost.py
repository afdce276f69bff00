"""What reading replies back costs a reply: decode speed and time per turn of `say`-style turns
with the read-back and the steering loop off, with the read-back at the end only, with the loop,
and with each sentence read back live as the app does, in one process on one loaded model
(alternating, so a busy machine slows all of them alike).

    python benchmarks/read_back_cost.py [--model default] [--threads 2] [--rounds 3]
                                        [--tokens 96] [--emotion sadness=1]
"""

from __future__ import annotations

import argparse
import statistics
import time

PROMPTS = [
    "Tell me about your weekend.",
    "How do I make a good cup of tea?",
    "My train was cancelled again this morning.",
    "What should I read next?",
    "Can you explain what a black hole is?",
    "I finally finished my thesis!",
]
MODES = ("read-back off", "read-back at the end", "+ steering loop", "+ live sentences (app)")


def main() -> None:
    from emochat.cli import quiet_library_logs

    quiet_library_logs()
    from emochat.emotion import parse_emotion
    from emochat.engine.modulation.loop import SteeringLoop
    from emochat.runtime import GenerationConfig, ModelConfig, RunConfig, Runtime
    from emochat.session import ChatSession, start_transcript
    from emochat.state import EmotionState

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--emotion", default="sadness=1")
    args = parser.parse_args()
    mood = parse_emotion(args.emotion)[0]
    config = RunConfig(
        model=ModelConfig(model=args.model, threads=args.threads),
        generation=GenerationConfig(emotion=mood, max_new_tokens=args.tokens, seed=1),
        detector="minilm",
    )
    runtime = Runtime(config, print)
    backend, detector, settings = runtime.backend(), runtime.detector(), runtime.sampling()
    detector.read("warm up")
    loop = SteeringLoop(lambda text: detector.read(text).vector)

    def session(mode: int) -> ChatSession:
        return ChatSession(
            backend,
            None,
            EmotionState(vector=mood, policy="locked"),
            start_transcript({"model": "bench"}, print, save=False),
            settings,
            print,
            remember=False,
            read_back=detector if mode >= 1 else None,
            loop=loop if mode >= 2 else None,
        )

    speeds: dict[int, list[float]] = {mode: [] for mode in range(len(MODES))}
    seconds: dict[int, list[float]] = {mode: [] for mode in range(len(MODES))}
    for _ in range(args.rounds):
        for prompt in PROMPTS:
            for mode in range(len(MODES)):
                live = (lambda: None) if mode == 3 else None
                started = time.perf_counter()
                result = session(mode).ask(prompt, on_read=live)
                seconds[mode].append(time.perf_counter() - started)
                speeds[mode].append(result.tokens_per_second)
    print(
        f"\nmodel={backend.info.name} backend={backend.info.backend} threads={args.threads} "
        f"emotion={args.emotion} tokens≤{args.tokens} turns={len(PROMPTS) * args.rounds} per mode"
    )
    print(f"{'mode':<26}{'decode tok/s (median)':>24}{'turn s (median)':>18}")
    for mode, name in enumerate(MODES):
        print(
            f"{name:<26}{statistics.median(speeds[mode]):>24.1f}"
            f"{statistics.median(seconds[mode]):>18.3f}"
        )


if __name__ == "__main__":
    main()
