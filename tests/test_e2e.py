"""The real `emochat` command in a real terminal (tmux), on the real default model."""

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


HEAVY_AT_EXIT = (
    "import atexit, sys\n"
    "from pathlib import Path\n"
    "from emochat.cli import main\n"
    "heavy = ('torch', 'transformers', 'peft')\n"
    "atexit.register(lambda: Path(sys.argv[1]).write_text("
    "' '.join(m for m in heavy if m in sys.modules)))\n"
    "sys.exit(main(sys.argv[2:]))\n"
)


def _screen(tmux: str, session: str) -> str:
    result = subprocess.run(
        [tmux, "capture-pane", "-p", "-t", session], capture_output=True, text=True
    )
    return result.stdout


def _app_env(home: Path, cache: Path) -> dict[str, str]:
    """The app's environment: its own home and cache, and the pane's real size (COLUMNS and
    LINES win over the pty size in Python's terminal-size lookup, and a test runner may have
    set them)."""
    return {
        "EMOCHAT_HOME": str(home),
        "EMOCHAT_CACHE": str(cache),
        "TERM": "xterm-256color",
        "COLUMNS": "140",
        "LINES": "42",
    }


def _launch(tmux: str, session: str, env: dict[str, str], imported: Path, flags: str) -> None:
    """The app in a 140×42 tmux pane, run as `emochat` runs it, writing at exit which heavy
    libraries it imported to ``imported``."""
    command = " ".join(
        [
            "env",
            *(f"{key}={shlex.quote(value)}" for key, value in env.items()),
            shlex.quote(sys.executable),
            "-c",
            shlex.quote(HEAVY_AT_EXIT),
            shlex.quote(str(imported)),
            flags,
        ]
    )
    subprocess.run(
        [tmux, "new-session", "-d", "-s", session, "-x", "140", "-y", "42", command], check=True
    )


def _ask_and_quit(tmux: str, session: str, text: str, transcripts: Path, screen) -> Path:
    """Send ``text`` as a message, wait for its reply in the transcript, quit the app; the
    transcript."""
    subprocess.run([tmux, "send-keys", "-t", session, "-l", f"{text}\r"], check=True)

    def answered() -> Path | None:
        files = list(transcripts.glob("*.jsonl")) if transcripts.is_dir() else []
        return next((f for f in files if '"assistant"' in f.read_text()), None)

    _wait_for(answered, 120, "a reply", screen)
    subprocess.run([tmux, "send-keys", "-t", session, "C-q"], check=True)
    _wait_for(lambda: session not in _sessions(tmux), 30, "the app to quit", screen)
    return answered()


def _wait_for(predicate, timeout: float, what: str, screen) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; screen:\n{screen()}")


def test_chat_with_the_default_model_in_a_terminal(model_cache, tmp_path) -> None:
    tmux = shutil.which("tmux")
    if tmux is None:
        pytest.fail("tmux is needed for this test (Debian package tmux)")
    home = tmp_path / "home"
    session = f"emochat-e2e-{os.getpid()}"
    env = _app_env(home, model_cache)
    screen = lambda: _screen(tmux, session)  # noqa: E731
    transcripts = home / "data" / "transcripts"

    imported = tmp_path / "imported.txt"

    def start(*flags: str) -> None:
        _launch(tmux, session, env, imported, " ".join(["--max-new-tokens 24 --seed 3", *flags]))

    def replies() -> list[dict]:
        files = list(transcripts.glob("*.jsonl")) if transcripts.is_dir() else []
        if not files:
            return []
        lines = [json.loads(line) for line in files[0].read_text().splitlines()]
        return [event for event in lines if event.get("type") == "assistant"]

    start()
    try:
        _wait_for(lambda: "detector minilm" in screen(), 240, "the model to load", screen)
        time.sleep(1.0)
        shown = screen()
        for pole in ("sadness", "joy", "fear", "courage", "indifference", "empathy"):
            assert pole in shown, shown
        assert "SmolLM2-135M-Instruct" in shown
        assert not transcripts.exists() or not list(transcripts.glob("*.jsonl"))
        # text and Enter in one write, as a paste without bracketed paste arrives
        subprocess.run(
            [tmux, "send-keys", "-t", session, "-l", "I am so happy today!\r"], check=True
        )
        _wait_for(lambda: len(replies()) == 1, 120, "a reply", screen)
        time.sleep(1.0)
        shown = screen()
        events = [json.loads(line) for line in next(transcripts.glob("*.jsonl")).open()][1:]
        user, assistant = events[0], events[1]
        assert user["text"] == "I am so happy today!"
        assert user["reading"]["vector"][0] > 0.2  # the detector read joy in the message
        words = assistant["text"].split()
        assert len(words) >= 3
        assert " ".join(words[:2]) in " ".join(shown.split())
        assert "tok/s" in shown
        subprocess.run([tmux, "send-keys", "-t", session, "C-q"], check=True)
        _wait_for(lambda: session not in _sessions(tmux), 30, "the app to quit", screen)
        # the default chat, detector included, ran without torch
        assert imported.read_text() == "", imported.read_text()

        start("--resume", "last")
        _wait_for(lambda: "detector minilm" in screen(), 240, "the resumed chat", screen)
        time.sleep(1.0)
        shown = " ".join(screen().split())
        assert "I am so happy today!" in shown
        assert " ".join(words[:3]) in shown, shown  # the reply is on screen, not blank
    finally:
        subprocess.run([tmux, "kill-session", "-t", session], capture_output=True)
    assert Path(home / "data" / "last_state.json").is_file()


def _sessions(tmux: str) -> str:
    result = subprocess.run([tmux, "list-sessions"], capture_output=True, text=True)
    return result.stdout


def test_an_ollama_model_met_for_the_first_time_chats_while_its_vectors_build(
    tmp_path, monkeypatch
) -> None:
    """A GGUF with no vectors, from Ollama's store, in the app on a fresh cache: it answers,
    its directions are built natively behind the chat (and kept), and torch never loads."""
    from emochat.engine.directions import directions_status
    from emochat.engine.loading import resolve_source
    from tests.gguf_models import write_random_gguf
    from tests.stores import add_ollama_model

    tmux = shutil.which("tmux")
    if tmux is None:
        pytest.fail("tmux is needed for this test (Debian package tmux)")
    store, home, cache = tmp_path / "ollama", tmp_path / "home", tmp_path / "cache"
    add_ollama_model(store, "tiny", write_random_gguf(tmp_path / "tiny.gguf", "gemma3"))
    env = {**_app_env(home, cache), "OLLAMA_MODELS": str(store)}
    imported = tmp_path / "imported.txt"
    session = f"emochat-ollama-{os.getpid()}"
    screen = lambda: _screen(tmux, session)  # noqa: E731
    transcripts = home / "data" / "transcripts"
    _launch(tmux, session, env, imported, "--model ollama:tiny --detector vader --max-new-tokens 8")
    built = lambda: any((cache / "vectors").glob("*/emotion_vectors.json"))  # noqa: E731
    try:
        _wait_for(lambda: "tiny:latest" in screen(), 120, "the model to load", screen)
        _wait_for(built, 120, "the vectors to be built behind the chat", screen)
        transcript = _ask_and_quit(tmux, session, "Hello there!", transcripts, screen)
    finally:
        subprocess.run([tmux, "kill-session", "-t", session], capture_output=True)
    header = json.loads(transcript.read_text().splitlines()[0])
    assert header["modulation"] == "steer"
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    monkeypatch.setenv("EMOCHAT_CACHE", str(cache))
    source = resolve_source("ollama:tiny")
    assert directions_status(source.display_name, source.location) == "built"
    assert imported.read_text() == "", imported.read_text()


def test_the_app_chats_through_a_server_with_the_detector_moving_the_mood(
    model_cache, tmp_path
) -> None:
    """The app on llama-cpp-python's OpenAI-compatible server: the reply streams from the
    server, the detector reads the message here, the transcript names the server."""
    from tests.test_server import start_server

    tmux = shutil.which("tmux")
    if tmux is None:
        pytest.fail("tmux is needed for this test (Debian package tmux)")
    process, url = start_server()
    home = tmp_path / "home"
    env = _app_env(home, model_cache)
    session = f"emochat-server-{os.getpid()}"
    screen = lambda: _screen(tmux, session)  # noqa: E731
    transcripts = home / "data" / "transcripts"
    flags = f"--base-url {url} --model smollm2 --max-new-tokens 16"
    _launch(tmux, session, env, tmp_path / "imported.txt", flags)
    try:
        _wait_for(lambda: "detector minilm" in screen(), 240, "the app to connect", screen)
        assert "openai" in screen()
        transcript = _ask_and_quit(tmux, session, "I am so happy today!", transcripts, screen)
    finally:
        subprocess.run([tmux, "kill-session", "-t", session], capture_output=True)
        process.kill()
    lines = [json.loads(line) for line in transcript.read_text().splitlines()]
    header, user, assistant = lines[0], lines[1], lines[2]
    assert (header["backend"], header["model_source"], header["model"]) == (
        "openai",
        url,
        "smollm2",
    )
    assert user["reading"]["vector"][0] > 0.2  # the detector read joy here
    assert assistant["emotion"][0] > 0  # and the reply was asked for in the mood it moved to
    assert assistant["text"].strip()
    # a server chat, the detector included, loads no torch
    assert (tmp_path / "imported.txt").read_text() == ""
