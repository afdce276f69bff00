"""How soon is emochat usable, and how much memory does it hold? Time to `--help`, to the
app's first frame, to ready (the model loaded: the status line names the detector); for a
message sent the moment the app is ready, the time from Enter to its first token on screen and
to the reply's end; the app's resident memory after that turn and whether torch was loaded;
and `emochat say "hi"` from the command to its last token.

    python benchmarks/startup.py [--runs 3]

Runs the real command in a detached tmux pane (140x42) and polls the screen every 20 ms. The
first run starts from an empty emochat cache (cold: the detector's GGUF is made then), the
others from the cache it left (warm).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPLY_LINE = re.compile(r"^ █ \S", re.MULTILINE)  # a reply's text, left of the chat


def _screen(session: str) -> str:
    return subprocess.run(
        ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
    ).stdout


def _until(session: str, seen: Callable[[str], bool], started: float, limit: float = 300) -> float:
    while time.perf_counter() - started < limit:
        if seen(_screen(session)):
            return time.perf_counter() - started
        time.sleep(0.02)
    raise RuntimeError(f"not seen within {limit} s:\n{_screen(session)}")


def _pane_process(session: str) -> int:
    result = subprocess.run(
        ["tmux", "display-message", "-p", "-t", session, "#{pane_pid}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(result.stdout.strip())


def _resident_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def _loaded_torch(pid: int) -> bool:
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


def app_run(cache: Path, run: int) -> dict[str, float]:
    home = tempfile.mkdtemp()
    session = f"emochat-startup-{os.getpid()}-{run}"
    command = (
        f"env EMOCHAT_HOME={home} EMOCHAT_CACHE={cache} COLUMNS=140 LINES=42 "
        f"TERM=xterm-256color {sys.executable} -m emochat"
    )
    started = time.perf_counter()
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "140", "-y", "42", command],
        check=True,
    )
    try:
        frame = _until(session, lambda s: "Mood " in s, started)
        ready = _until(session, lambda s: "detector minilm" in s, started)
        # Text and Enter apart: a burst of both can lose keys (a known app defect, #10).
        subprocess.run(["tmux", "send-keys", "-t", session, "Hello!"], check=True)
        _until(session, lambda s: "Hello!" in s, started)
        sent = time.perf_counter()
        subprocess.run(["tmux", "send-keys", "-t", session, "Enter"], check=True)
        first = _until(session, lambda s: bool(REPLY_LINE.search(s)), sent)
        done = _until(session, lambda s: "tok/s" in s, sent)
        pid = _pane_process(session)
        return {
            "frame": frame,
            "ready": ready,
            "first token": first,
            "reply done": done,
            "resident MiB": _resident_mib(pid),
            "torch loaded": float(_loaded_torch(pid)),
        }
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def say_run(cache: Path, seed: int) -> tuple[float, int]:
    """Seconds from the command to its last token, and the reply's length in tokens (sampled:
    a reply to "hi" is a few words, but a seed fixes which)."""
    home = tempfile.mkdtemp()
    env = {**os.environ, "EMOCHAT_HOME": home, "EMOCHAT_CACHE": str(cache)}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "emochat", "say", "hi", "--no-save", "--json", "--seed", str(seed)],
        capture_output=True,
        env=env,
        check=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    shutil.rmtree(home, ignore_errors=True)
    return seconds, json.loads(result.stdout)["new_tokens"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        raise SystemExit("needs tmux")
    cache = Path(tempfile.mkdtemp(prefix="emochat-cache-"))  # empty: the first run is cold
    helps, says, runs = [], [], []
    try:
        for run in range(args.runs):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "emochat", "--help"], capture_output=True)
            helps.append(time.perf_counter() - started)
            runs.append(app_run(cache, run))
            says.append(say_run(cache, seed=run))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    cold, warm = runs[0], runs[1:] or runs

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:7.0f} ms"

    print(f"runs={args.runs} (warm = medians of runs 2..N; cold = run 1, an empty cache)")
    print(f"emochat --help                   {ms(helps)}")
    for key in ("frame", "ready", "first token", "reply done"):
        label = {"frame": "first frame of app", "ready": "ready to answer"}.get(key, key)
        if key in ("first token", "reply done"):
            label = f"Enter to {key}"
        print(f"{label:28}     {ms([r[key] for r in warm])}   cold {cold[key] * 1000:6.0f} ms")
    resident = statistics.median(r["resident MiB"] for r in warm)
    print(f"app resident after one turn      {resident:7.0f} MiB")
    torch = "yes" if any(r["torch loaded"] for r in runs) else "no"
    print(f"torch loaded in the app          {torch:>7}")
    tokens = ", ".join(str(count) for _, count in says)
    print(f"say 'hi' to its last token       {ms([s for s, _ in says])}   ({tokens} tokens)")


if __name__ == "__main__":
    main()
