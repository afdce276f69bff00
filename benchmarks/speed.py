"""Engine speed on one GGUF: raw llama.cpp against emochat's backends, in one run.

    python benchmarks/speed.py [--model default] [--device cpu] [--threads N] [--tokens 128]
                               [--runs 3] [--only MODE ...]

Every mode runs in fresh processes (so each peak RSS is its own), ``--runs`` times, and the
table shows medians. Decode: greedy, one fixed prompt, exactly ``--tokens`` new tokens (the end
token does not stop it). TTFT on turn 1 and turn 10 of a ten-turn conversation whose mood moves
every turn (replies of 32 tokens). Load: cold = a fresh emochat cache (transformers converts the
GGUF then), warm = the cache filled. Steered modes carry a mixed emotion vector; their "steer
cost" is paired in one process: decodes with the vector and with it zeroed, alternating three
times, compared by medians.
Raw llama.cpp is llama-cpp-python's high-level ``Llama`` with no control vector.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
TURNS = [
    "Hi! I just moved to a new city and I don't know anyone yet.",
    "What are good ways to meet people when you work from home?",
    "I tried a climbing gym once but felt awkward. Any tips?",
    "My neighbour plays loud music every night. How do I bring it up?",
    "He was actually really nice about it. I'm relieved.",
    "Now I'm thinking of adopting a cat. Is that a lot of work?",
    "What should I buy before the cat arrives?",
    "My landlord says pets cost an extra deposit. Is that normal?",
    "I decided to go ahead. She's a grey tabby called Miso.",
    "Can you summarise what we talked about today?",
]
TURN_TOKENS = 32
MIXED = "joy=0.6,calm=0.4,interest=0.3"
# mode: (backend, quantization, dtype, steered)
MODES = {
    "llama.cpp raw": ("raw", "", "", False),
    "llama.cpp": ("llama.cpp", "auto", "auto", False),
    "llama.cpp steered": ("llama.cpp", "auto", "auto", True),
    "transformers float32": ("transformers", "none", "float32", False),
    "transformers float32 steered": ("transformers", "none", "float32", True),
    "transformers bfloat16": ("transformers", "none", "bfloat16", False),
    "transformers bfloat16 steered": ("transformers", "none", "bfloat16", True),
    "transformers int4": ("transformers", "4bit", "auto", False),
    "transformers int4 steered": ("transformers", "4bit", "auto", True),
}


class RawLlama:
    """llama-cpp-python as its users call it: ``Llama`` and ``generate``, nothing of emochat's
    in the loop (the prompt text alone is rendered by emochat's GGUF tokenizer)."""

    def __init__(self, path: str, threads: int, device: str) -> None:
        from llama_cpp import Llama

        from emochat.engine.backends.llamacpp_backend import MAX_CONTEXT, GGUFTokenizer

        self.llama = Llama(
            model_path=path,
            n_ctx=MAX_CONTEXT,
            n_threads=threads,
            n_threads_batch=threads,
            n_gpu_layers=0 if device == "cpu" else -1,
            verbose=False,
        )
        self.tokenizer = GGUFTokenizer(self.llama)

    def generate(
        self, messages: list, tokens: int, stop_at_eos: bool, turn: int = 0
    ) -> tuple[float, float, str]:
        """(seconds to first token, decode tokens/s, text); raw llama.cpp has no mood."""
        from emochat.engine.prompt import build_prompt_ids

        ids = build_prompt_ids(self.tokenizer, messages, 4096 - tokens)
        started = time.perf_counter()
        first, produced, out = 0.0, 0, []
        for token in self.llama.generate(ids, temp=0, min_p=0.0, repeat_penalty=1.0):
            if produced == 0:
                first = time.perf_counter() - started
            if stop_at_eos and token == self.llama.token_eos():
                break
            produced += 1
            out.append(token)
            if produced >= tokens:
                break
        seconds = time.perf_counter() - started - first
        speed = (produced - 1) / seconds if produced > 1 and seconds > 0 else 0.0
        return first, speed, self.tokenizer.decode(out).strip()


class EmochatEngine:
    def __init__(
        self, model: str, threads: int, device: str, mode: tuple[str, str, str, bool]
    ) -> None:
        from emochat.emotion import parse_emotion
        from emochat.runtime import GenerationConfig, ModelConfig, RunConfig, Runtime

        backend, quant, dtype, steered = mode
        config = RunConfig(
            model=ModelConfig(
                model=model,
                backend=backend,
                quant=quant,
                device=device,
                dtype=dtype,
                threads=threads,
            ),
            generation=GenerationConfig(modulation="steer" if steered else "off"),
        )
        self.backend = Runtime(config).backend()
        self.mood = parse_emotion(MIXED)[0] if steered else None

    def generate(
        self, messages: list, tokens: int, stop_at_eos: bool, turn: int = 0, steer: bool = True
    ) -> tuple[float, float, str]:
        from emochat.emotion import EmotionVector
        from emochat.engine.generation import SamplingSettings

        # The mood moves a little every turn, as the detector and decay move it in the app.
        steered = self.mood is not None and steer
        emotion = self.mood * (1 - 0.05 * turn) if steered else EmotionVector()
        settings = SamplingSettings(
            temperature=0, max_new_tokens=tokens, repetition_penalty=1.0, ignore_eos=not stop_at_eos
        )
        reply = self.backend.reply(messages, emotion, settings)
        reply.finish()
        stats = reply.stats
        return stats.first_token_seconds or 0.0, stats.tokens_per_second, reply.text


def measure(name: str, args: argparse.Namespace) -> dict:
    import resource

    from emochat.engine.loading import resolve_source

    mode, tokens = MODES[name], args.tokens
    started = time.perf_counter()
    if mode[0] == "raw":
        location = resolve_source(args.model).location
        engine: RawLlama | EmochatEngine = RawLlama(location, args.threads, args.device)
    else:
        engine = EmochatEngine(args.model, args.threads, args.device, mode)
    load_seconds = time.perf_counter() - started
    story = [{"role": "user", "content": PROMPT}]
    engine.generate(story, 8, stop_at_eos=False)  # warm-up
    _, decode, _ = engine.generate(story, tokens, stop_at_eos=False)
    cost = None
    if isinstance(engine, EmochatEngine) and engine.mood is not None:
        speeds: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(3):
            for steer in (True, False):
                speeds[steer].append(engine.generate(story, tokens, False, steer=steer)[1])
        cost = statistics.median(speeds[False]) / statistics.median(speeds[True]) - 1
    messages: list = []
    ttfts = []
    for turn, text in enumerate(TURNS):
        messages.append({"role": "user", "content": text})
        first, _, reply = engine.generate(messages, TURN_TOKENS, True, turn)
        ttfts.append(first)
        messages.append({"role": "assistant", "content": reply})
    return {
        "load_s": load_seconds,
        "decode": decode,
        "ttft1": ttfts[0] * 1000,
        "ttft10": ttfts[-1] * 1000,
        "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cost": cost,
    }


def run_child(name: str, args: argparse.Namespace, cache: str) -> dict:
    command = [sys.executable, __file__, "--child", name, "--model", args.model]
    command += ["--threads", str(args.threads), "--tokens", str(args.tokens)]
    command += ["--device", args.device]
    env = {**os.environ, "EMOCHAT_CACHE": cache}
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or ["failed"]
        raise RuntimeError(lines[-1])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    from emochat.engine.loading import default_threads

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda for the GPU rows")
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", nargs="+", choices=list(MODES), help="run these modes only")
    parser.add_argument("--child", choices=list(MODES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        from emochat.cli import quiet_library_logs

        quiet_library_logs()
        print(json.dumps(measure(args.child, args)))
        return
    print(
        f"model={args.model} device={args.device} threads={args.threads} tokens={args.tokens} "
        f"runs={args.runs} "
        f"cpus={os.cpu_count()} load average before={os.getloadavg()[0]:.2f}"
    )
    header = (
        f"{'mode':<31}{'tok/s':>7}{'× raw':>7}{'TTFT 1':>9}{'TTFT 10':>9}"
        f"{'load cold':>11}{'load warm':>11}{'peak RSS':>10}{'steer cost':>12}"
    )
    print(header)
    raw_speed = None
    for name in args.only or list(MODES):
        with tempfile.TemporaryDirectory() as cache:
            try:
                cold = run_child(name, args, cache)
                runs = [run_child(name, args, cache) for _ in range(args.runs)]
            except RuntimeError as error:
                print(f"{name:<31}failed: {error}")
                continue
        median = {
            key: statistics.median(run[key] for run in runs)
            for key in runs[0]
            if runs[0][key] is not None
        }
        if name == "llama.cpp raw":
            raw_speed = median["decode"]
        ratio = f"{median['decode'] / raw_speed:.2f}" if raw_speed else "-"
        cost = f"{median['cost']:+.1%}" if "cost" in median else "-"
        print(
            f"{name:<31}{median['decode']:>7.1f}{ratio:>7}{median['ttft1']:>7.0f}ms"
            f"{median['ttft10']:>7.0f}ms{cold['load_s']:>10.2f}s{median['load_s']:>10.2f}s"
            f"{median['rss']:>7.0f}MiB{cost:>12}",
            flush=True,
        )
    print(f"load average after={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
