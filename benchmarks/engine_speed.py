"""Decode speed, time to first token, load time and peak memory of the engine, per quant mode.

    python benchmarks/engine_speed.py [--model default] [--tokens 96] [--threads 1]

Each mode runs in a fresh process so its peak RSS is its own. Greedy decoding of one fixed
prompt, with the end-of-sequence token suppressed so every mode decodes the same count.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

MODES = [("none", "float32"), ("none", "bfloat16"), ("4bit", "bfloat16"), ("8bit", "bfloat16")]
PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."


def measure(model: str, quant: str, dtype: str, tokens: int, threads: int) -> dict:
    import resource
    import time

    from emochat.emotion import EmotionVector
    from emochat.engine.generation import Engine, SamplingSettings
    from emochat.engine.loading import LoadOptions, load_model

    started = time.perf_counter()
    loaded = load_model(
        LoadOptions(model=model, quant=quant, dtype=dtype, device="cpu", threads=threads)
    )
    load_seconds = time.perf_counter() - started
    loaded.model.generation_config.eos_token_id = None  # decode exactly `tokens` tokens
    engine = Engine(loaded)
    settings = SamplingSettings(temperature=0, max_new_tokens=tokens, repetition_penalty=1.0)
    messages = [{"role": "user", "content": PROMPT}]
    engine.reply(messages, EmotionVector(), SamplingSettings(max_new_tokens=4)).finish()  # warm-up
    reply = engine.reply(messages, EmotionVector(), settings)
    reply.finish()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "mode": f"{quant}/{dtype}",
        "load_s": round(load_seconds, 2),
        "ttft_ms": round((reply.stats.first_token_seconds or 0) * 1000, 1),
        "decode_tok_s": round(reply.stats.tokens_per_second, 1),
        "new_tokens": reply.stats.new_tokens,
        "peak_rss_mib": round(peak_mib),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--one", nargs=2, metavar=("QUANT", "DTYPE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.model, *args.one, args.tokens, args.threads)))
        return
    print(f"model={args.model} threads={args.threads} tokens={args.tokens}")
    header = f"{'mode':<16}{'load s':>8}{'TTFT ms':>9}{'tok/s':>8}{'peak RSS MiB':>14}"
    print(header)
    for quant, dtype in MODES:
        command = [sys.executable, __file__, "--one", quant, dtype, "--model", args.model]
        command += ["--tokens", str(args.tokens), "--threads", str(args.threads)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            reason = (result.stderr.strip().splitlines() or ["failed"])[-1]
            print(f"{quant + '/' + dtype:<16}  failed: {reason}")
            continue
        row = json.loads(result.stdout.strip().splitlines()[-1])
        print(
            f"{row['mode']:<16}{row['load_s']:>8}{row['ttft_ms']:>9}"
            f"{row['decode_tok_s']:>8}{row['peak_rss_mib']:>14}"
        )


if __name__ == "__main__":
    main()
