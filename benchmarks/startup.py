"""How soon is emochat usable? Time to `--help`, to the app's first frame, to ready (the model
loaded: the status line names the detector), and to the end of a first reply sent the moment
the app is ready (it waits for the detector, which loads beside the model).

    python benchmarks/startup.py [--runs 3]

Runs the real command in a detached tmux pane (140x42) and polls the screen every 50 ms.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def _until(session: str, needle: str, started: float, limit: float = 300) -> float:
    while time.perf_counter() - started < limit:
        screen = subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
        ).stdout
        if needle in screen:
            return time.perf_counter() - started
        time.sleep(0.05)
    raise RuntimeError(f"{needle!r} did not appear within {limit} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        raise SystemExit("needs tmux")
    from emochat.paths import cache_dir

    cache = cache_dir()  # the user's converted model, so only the first run ever converts
    helps, frames, ready, replied = [], [], [], []
    for run in range(args.runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "emochat", "--help"], capture_output=True)
        helps.append(time.perf_counter() - started)
        home = tempfile.mkdtemp()
        session = f"emochat-startup-{os.getpid()}-{run}"
        command = (
            f"env EMOCHAT_HOME={home} EMOCHAT_CACHE={cache} COLUMNS=140 LINES=42 "
            "TERM=xterm-256color "
            f"{sys.executable} -m emochat"
        )
        started = time.perf_counter()
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", session, "-x", "140", "-y", "42", command],
            check=True,
        )
        try:
            frames.append(_until(session, "last reading of your message", started))
            ready.append(_until(session, "detector minilm", started))
            # Text and Enter apart: a burst of both can lose keys (a known app defect, #10).
            subprocess.run(["tmux", "send-keys", "-t", session, "Hello!"], check=True)
            _until(session, "Hello!", started)
            subprocess.run(["tmux", "send-keys", "-t", session, "Enter"], check=True)
            replied.append(_until(session, "tok/s", started))
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
            shutil.rmtree(home, ignore_errors=True)
    print(f"runs={args.runs} (medians; model cache warm after the first run)")
    print(f"emochat --help       {statistics.median(helps) * 1000:7.0f} ms")
    print(f"first frame of app   {statistics.median(frames) * 1000:7.0f} ms")
    print(f"ready to answer      {statistics.median(ready) * 1000:7.0f} ms")
    print(f"first reply done     {statistics.median(replied) * 1000:7.0f} ms")


if __name__ == "__main__":
    main()
