"""Building a model's emotion vectors, and meeting a model for the first time.

    python benchmarks/native_vectors.py [--parts build,270m,1b,list] [--models 100]

Prints, each in a process of its own with a fresh cache (peak resident memory from the
process itself):
1. the default GGUF's directions built from nothing on llama.cpp (`emochat vectors build`, the
   shipped ones ignored) and on transformers, with their agreement with the shipped directions
   (cosine per axis over the steered band, scales);
2. a new ~250 MB GGUF of another architecture (a randomly initialised Gemma-3-270M-like model,
   262k vocabulary) and a Gemma-3-1B-like one: from a fresh cache to the first
   steered reply (`emochat say --emotion joy=1`), directions built on the way;
3. `emochat models` over N GGUFs in the Hugging Face cache, cold (headers read) and warm.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The peak is VmHWM, this process's own: ru_maxrss would carry over the benchmark's own peak
# (Linux keeps the larger of the two across exec).
MEASURED = """
import sys, time
from emochat.cli import main
started = time.perf_counter()
code = main(sys.argv[1:])
seconds = time.perf_counter() - started
status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
print(f"MEASURED {code} {seconds:.2f} {int(status) / 1024:.0f}", file=sys.stderr)
"""


def measured(argv: list[str], cache: Path, extra_env: dict[str, str] | None = None):
    """Run ``emochat ARGV`` in a fresh process: (exit code, seconds, peak MiB, stdout)."""
    env = {**os.environ, "EMOCHAT_CACHE": str(cache), **(extra_env or {})}
    result = subprocess.run(
        [sys.executable, "-c", MEASURED, *argv], capture_output=True, text=True, env=env
    )
    line = next(line for line in result.stderr.splitlines() if line.startswith("MEASURED"))
    _, code, seconds, peak = line.split()
    if code != "0":
        print(result.stderr, file=sys.stderr)
    return int(code), float(seconds), float(peak), result.stdout


def agreement(folder: Path) -> tuple[float, float, float]:
    """Against the shipped directions: the lowest and mean cosine over axes and band layers,
    and the largest relative difference of the scales."""
    import numpy as np

    from emochat.engine.directions import EmotionDirections, shipped_directions_dir

    built = EmotionDirections.load(folder)
    shipped = EmotionDirections.load(shipped_directions_dir("SmolLM2-135M-Instruct"))
    start, stop = shipped.band
    a, b = built.values[:, start:stop], shipped.values[:, start:stop]
    cosines = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    scales = np.abs(np.array(built.scales) / np.array(shipped.scales) - 1)
    return float(cosines.min()), float(cosines.mean()), float(scales.max())


def default_model_builds(work: Path) -> None:
    from emochat.engine.loading import default_model_path

    size = default_model_path().stat().st_size / (1 << 20)
    print(f"## The default GGUF's directions from nothing (GGUF {size:.0f} MiB)")
    print("backend       seconds  peak MiB  min cos  mean cos  max scale diff")
    for backend in ("llama.cpp", "transformers"):
        out = work / f"vectors-{backend}"
        argv = ["vectors", "build", "--backend", backend, "--out", str(out)]
        code, seconds, peak, _ = measured(argv, work / f"cache-{backend}")
        low, mean, scale = agreement(out) if code == 0 else (float("nan"),) * 3
        print(f"{backend:<12} {seconds:8.1f} {peak:9.0f} {low:8.4f} {mean:9.4f} {scale:15.3%}")
    print(f"(target on llama.cpp: <= 20 s and <= {2 * size + 300:.0f} MiB, 2x the GGUF + 300)")


def first_steered_reply(work: Path, shape: str) -> None:
    from tests.gguf_models import write_random_gguf

    path = work / f"random-{shape}.gguf"
    started = time.perf_counter()
    write_random_gguf(
        path, "gemma3", shape, vocab_size=262_144, quant="Q4_0", embedding_quant="Q8_0"
    )
    size, took = path.stat().st_size / (1 << 20), time.perf_counter() - started
    print(f"\n## A new {shape}-like GGUF ({size:.0f} MiB, written in {took:.0f} s)")
    argv = ["say", "--model", str(path), "--emotion", "joy=1", "--seed", "1"]
    argv += ["--max-new-tokens", "16", "--no-save", "Hello there"]
    code, seconds, peak, _ = measured(argv, work / f"cache-{shape}")
    print(f"fresh cache -> first steered reply: {seconds:.1f} s, peak {peak:.0f} MiB (exit {code})")
    code, seconds, peak, _ = measured(argv, work / f"cache-{shape}")
    print(f"again, directions cached:           {seconds:.1f} s, peak {peak:.0f} MiB (exit {code})")
    path.unlink()


def listing(work: Path, count: int) -> None:
    from emochat.engine.loading import default_model_path
    from tests.stores import add_hub_repo

    cache = work / "hf-hub"
    for index in range(count):  # hard links: 100 paths, one file's worth of disk
        add_hub_repo(
            cache, f"someone/model-{index}-GGUF", {f"model-{index}-Q4_1.gguf": default_model_path()}
        )
    env = {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "OLLAMA_MODELS": str(work / "none")}
    print(f"\n## emochat models over {count} GGUFs in the Hugging Face cache")
    for label in ("cold (every header read)", "warm (headers cached)"):
        code, seconds, _, out = measured(["models", "--json"], work / "cache-list", env)
        listed = len(json.loads(out)) if code == 0 else 0
        print(f"{label:<26} {seconds:6.2f} s, {listed} models listed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="build,270m,1b,list", help="what to measure")
    parser.add_argument("--models", type=int, default=100, help="GGUFs to list (default 100)")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory(prefix="emochat-bench-") as folder:
        work = Path(folder)
        parts = args.parts.split(",")
        if "build" in parts:
            default_model_builds(work)
        for part in ("270m", "1b"):
            if part in parts:
                first_steered_reply(work, f"gemma-3-{part}")
        if "list" in parts:
            listing(work, args.models)


if __name__ == "__main__":
    main()
