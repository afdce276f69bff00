"""The same GGUF through an OpenAI-compatible server and in process: time to the first token
and decode speed.

    python benchmarks/server_speed.py [--runs 5] [--tokens 128]

Starts llama-cpp-python's own server (``python -m llama_cpp.server``) on 127.0.0.1 with the
default GGUF and one thread, and compares emochat's openai backend talking to it with the
in-process llama.cpp backend (one thread too): medians over fresh conversations, each asking
for a long answer at temperature 0.7 with its own seed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROMPT = "Tell me a long story about a lighthouse keeper and the sea."


def measure(backend, runs: int, tokens: int) -> tuple[float, float]:
    from emochat.emotion import EmotionVector
    from emochat.engine.generation import SamplingSettings

    firsts, speeds = [], []
    for seed in range(runs):
        messages = [{"role": "user", "content": f"{PROMPT} (story {seed})"}]
        reply = backend.reply(
            messages, EmotionVector(), SamplingSettings(max_new_tokens=tokens, seed=seed)
        )
        reply.finish()
        firsts.append(reply.stats.first_token_seconds * 1000)
        speeds.append(reply.stats.tokens_per_second)
    return statistics.median(firsts), statistics.median(speeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()

    from emochat.engine.backends import open_backend
    from emochat.engine.backends.openai_backend import OpenAIBackend
    from emochat.engine.loading import LoadOptions, resolve_source
    from emochat.engine.server_api import ServerAPI
    from emochat.progress import no_progress
    from tests.test_server import start_server

    process, url = start_server()
    try:
        server = OpenAIBackend.connect(ServerAPI(url, None, 120), "smollm2", 2048, no_progress)
        measure(server, 1, 8)  # warm: the server's first request loads its caches
        remote = measure(server, args.runs, args.tokens)
    finally:
        process.terminate()
    options = LoadOptions(device="cpu", backend="llama.cpp", threads=1)
    local_backend = open_backend(resolve_source("default"), options, no_progress)
    measure(local_backend, 1, 8)
    local = measure(local_backend, args.runs, args.tokens)
    print(f"default GGUF, {args.runs} runs of up to {args.tokens} tokens, one thread each")
    print("backend                        TTFT ms  tok/s")
    print(f"openai (llama_cpp.server)   {remote[0]:9.0f} {remote[1]:6.1f}")
    print(f"llama.cpp in process        {local[0]:9.0f} {local[1]:6.1f}")


if __name__ == "__main__":
    main()
