"""Several emochat processes at once: the first-start conversion, the carried-over mood and new
conversation ids stay whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from emochat.paths import data_dir
from emochat.transcripts import read_transcript, transcripts_dir


def _spawn(script: str, count: int, env: dict[str, str] | None = None) -> list[str]:
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(script), str(index)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        for index in range(count)
    ]
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        outputs.append(out.strip())
    return outputs


def test_processes_saving_the_mood_at_once_leave_one_whole_file() -> None:
    _spawn(
        """
        import sys
        from emochat.last_mood import save_last_state
        from emochat.emotion import EmotionVector
        from emochat.state import EmotionState
        value = int(sys.argv[1]) / 10
        for _ in range(100):
            save_last_state(EmotionState(vector=EmotionVector((value,) * 8)))
        """,
        6,
    )
    state = json.loads((data_dir() / "last_state.json").read_text())
    assert len(set(state["vector"])) == 1  # one writer's whole state, never a mix
    assert sorted(p.name for p in data_dir().iterdir()) == ["last_state.json"]  # no leftovers


def test_conversations_started_together_never_share_a_file() -> None:
    ids = _spawn(
        """
        from emochat.transcripts import TranscriptWriter
        for _ in range(40):
            writer = TranscriptWriter.create({"model": "m"})
            writer.write({"type": "user", "text": writer.path.stem})
            writer.close()
            print(writer.path.stem)
        """,
        4,
    )
    made = [name for block in ids for name in block.split()]
    assert len(made) == len(set(made)) == 160
    for path in transcripts_dir().iterdir():
        assert read_transcript(path).events[0]["text"] == path.stem


@pytest.mark.slow
def test_first_starts_at_once_on_a_fresh_cache_all_load(tmp_path) -> None:
    outputs = _spawn(
        """
        from emochat.engine.loading import converted_gguf_dir, default_model_path
        print(converted_gguf_dir(default_model_path()))
        """,
        3,
        env={"EMOCHAT_CACHE": str(tmp_path / "fresh-cache")},
    )
    assert len(set(outputs)) == 1
    converted = tmp_path / "fresh-cache" / "models"
    assert [p.name for p in converted.iterdir() if not p.name.startswith(".")] == [
        os.path.basename(outputs[0])
    ]


@pytest.mark.slow
def test_models_load_without_moving_stdout_or_stderr(model_cache, tmp_path) -> None:
    """Quiet, llama-cpp-python points fds 1 and 2 at /dev/null while it loads: the app's frames
    drawn meanwhile were lost (a status line stayed "Starting…" for good once the detector
    loaded beside the chat model), and two loads at once could leave both at /dev/null. Watched
    every millisecond while the chat model and the detector load in two threads, four times,
    neither fd moves."""
    code = (
        "import os, threading, time\n"
        "from emochat.detect.llamacpp_detector import LlamaCppDetector\n"
        "from emochat.engine.backends import open_backend\n"
        "from emochat.engine.loading import LoadOptions, resolve_source\n"
        "def fds():\n"
        "    return [os.readlink(f'/proc/self/fd/{fd}') for fd in (1, 2)]\n"
        "before, seen, done = fds(), set(), threading.Event()\n"
        "def watch():\n"
        "    while not done.is_set():\n"
        "        seen.add(tuple(fds()))\n"
        "        time.sleep(0.001)\n"
        "watcher = threading.Thread(target=watch)\n"
        "watcher.start()\n"
        "source, options = resolve_source('default'), LoadOptions(backend='llama.cpp')\n"
        "for _ in range(4):\n"
        "    loads = [threading.Thread(target=LlamaCppDetector),\n"
        "             threading.Thread(target=open_backend, args=(source, options, print))]\n"
        "    for load in loads: load.start()\n"
        "    for load in loads: load.join()\n"
        "done.set()\n"
        "watcher.join()\n"
        "assert seen == {tuple(before)}, (before, seen)\n"
        "print('KEPT')\n"
    )
    out = tmp_path / "out.txt"
    with out.open("w") as handle:
        result = subprocess.run([sys.executable, "-c", code], stdout=handle, stderr=subprocess.PIPE)
    assert result.returncode == 0, result.stderr.decode()
    assert "KEPT" in out.read_text()
