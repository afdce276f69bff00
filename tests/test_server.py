"""The server backend against a real OpenAI-compatible server: llama-cpp-python's own
(``python -m llama_cpp.server``) on 127.0.0.1, serving the default GGUF. Faults are made for
real: a wrong key, a port nothing listens on, a timeout shorter than the server, a web server
that is not the API, the server stopped mid-reply."""

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from emochat.cli import main
from emochat.emotion import EmotionVector
from emochat.engine.backends.openai_backend import OpenAIBackend
from emochat.engine.generation import SamplingSettings
from emochat.engine.loading import default_model_path
from emochat.engine.modulation.server_steering import EasySteerModulator, easysteer_fields
from emochat.engine.server_api import ServerAPI
from emochat.progress import no_progress

pytestmark = pytest.mark.slow

KEY = "test-key-not-a-secret"
HI = [{"role": "user", "content": "Tell me a long story about the sea."}]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(*extra: str) -> tuple[subprocess.Popen, str]:
    """llama-cpp-python's server on a free port with the default GGUF, as `smollm2`."""
    port = _free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(default_model_path()),
        "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "2048", "--n_threads", "1", *extra,
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            request = urllib.request.Request(
                f"{url}/models", headers={"Authorization": f"Bearer {KEY}"}
            )
            urllib.request.urlopen(request, timeout=2).read()
            return process, url
        except OSError:
            if process.poll() is not None:
                raise RuntimeError("llama_cpp.server exited at start") from None
            time.sleep(0.5)
    process.kill()
    raise RuntimeError("llama_cpp.server did not start in 120 s")


@pytest.fixture(scope="module")
def server():
    process, url = start_server("--api_key", KEY)
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture
def api_key(monkeypatch):
    monkeypatch.setenv("EMOCHAT_API_KEY", KEY)


# The behaviour tests every backend passes, where they apply to a server (they read no token ids
# and need no steering): run here with this module's `backend`, the persona prompt on the server.
from tests.test_backends import (  # noqa: E402
    test_a_factual_question_gets_its_answer_in_any_mood,  # noqa: F401
    test_a_reply_the_model_ends_is_not_marked_cut,  # noqa: F401
    test_cancel_stops_within_a_token_and_frees_the_backend,  # noqa: F401
)


@pytest.fixture(scope="module")
def backend(server):
    from emochat.engine.modulation.persona import PersonaModulator

    served = _backend(server)
    served.use(PersonaModulator())
    return served


def _backend(url: str, key: str | None = KEY, timeout: float = 60) -> OpenAIBackend:
    return OpenAIBackend.connect(ServerAPI(url, key, timeout), "smollm2", 4096, no_progress)


def test_say_answers_through_the_server_and_names_it(server, api_key, capsys, private_home):
    argv = ["say", "--base-url", server, "--model", "smollm2", "--emotion", "joy=1", "--json"]
    assert main([*argv, "--seed", "1", "--max-new-tokens", "16", "Hello there!"]) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out)
    assert record["backend"] == "openai" and record["server"] == server
    assert record["model"] == "smollm2" and record["reply"].strip()
    assert record["emotion"][0] == 1.0
    transcript = next((private_home / "data" / "transcripts").glob("*.jsonl"))
    header = json.loads(transcript.read_text().splitlines()[0])
    assert (header["backend"], header["model_source"]) == ("openai", server)
    assert header["modulation"] == "prompt"  # auto on a plain server: the persona prompt
    assert "top_k, repetition_penalty" in captured.err  # said once, not sent
    # the key is never printed or stored
    assert KEY not in captured.out + captured.err + transcript.read_text()


def test_the_persona_prompt_goes_to_the_server_as_the_system_message(server) -> None:
    from emochat.engine.modulation.persona import PersonaModulator

    backend = _backend(server)
    backend.use(PersonaModulator())
    sent = backend.prepare_messages(HI, EmotionVector.pole("sadness"))
    assert sent[0]["role"] == "system" and "sad" in sent[0]["content"].lower()
    assert sent[1:] == HI
    reply = backend.reply(HI, EmotionVector.pole("sadness"), SamplingSettings(max_new_tokens=8))
    assert reply.finish() and reply.stats.new_tokens >= 1


def test_a_reply_is_stopped_within_a_token_and_timed(server) -> None:
    backend = _backend(server)
    reply = backend.reply(HI, EmotionVector(), SamplingSettings(max_new_tokens=400))
    pieces = iter(reply)
    for _ in range(3):
        next(pieces)
    reply.cancel()
    reply.finish()
    assert reply.stats.cancelled and not reply.stats.truncated
    assert 3 <= reply.stats.new_tokens <= 5
    assert reply.stats.first_token_seconds is not None and reply.stats.tokens_per_second > 0
    # the backend is free again at once
    short = backend.reply(HI, EmotionVector(), SamplingSettings(max_new_tokens=4, seed=1))
    short.finish()
    assert short.stats.truncated  # the server said finish_reason "length"


def test_the_history_is_fitted_to_the_servers_context() -> None:
    backend = OpenAIBackend(ServerAPI("http://127.0.0.1:9/v1", None, 1), "m", 200)
    history = [{"role": "system", "content": "Be brief."}]
    for index in range(40):
        history.append({"role": "user" if index % 2 == 0 else "assistant", "content": "word " * 20})
    fitted = backend._fit(history, new_tokens=50)
    assert fitted[0] == history[0] and fitted[-1] == history[-1]
    assert 1 < len(fitted) < len(history)
    assert sum(len(m["content"]) for m in fitted) <= (200 - 50) * 3


def test_easysteer_requests_carry_the_mood_as_per_axis_vectors() -> None:
    assert easysteer_fields("/srv/vectors", EmotionVector(), 1.0) == {}
    fields = easysteer_fields("/srv/vectors/", EmotionVector.pole("joy") * 0.5, 2.0)
    assert fields == {
        "steering": {
            "vectors": [
                {
                    "source": "/srv/vectors/sadness_joy.gguf",
                    "scale": 1.0,
                    "normalize": False,
                    "apply": {"prompt_positions": [-1], "generation": "all"},
                }
            ]
        }
    }
    backend = OpenAIBackend(ServerAPI("http://127.0.0.1:9/v1", None, 1), "m", 4096, "/srv/v")
    steering = backend.own_steering(1.0)
    assert isinstance(steering, EasySteerModulator)
    backend.use(steering)
    steering.set_emotion(EmotionVector.pole("fear"))
    assert backend.request_fields["steering"]["vectors"][0]["scale"] == -1.0
    backend.use(EasySteerModulator("/srv/v"))  # the old one's fields go with it
    assert backend.request_fields == {}


def test_models_lists_what_the_server_offers(server, api_key, capsys) -> None:
    assert main(["models", "--base-url", server]) == 0
    assert capsys.readouterr().out.split() == ["smollm2"]


def test_a_server_profile_names_the_url_model_and_key_variable(
    server, monkeypatch, capsys, private_home
) -> None:
    config = private_home / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        f'[servers.desk]\nbase_url = "{server}"\nmodel = "smollm2"\napi_key_env = "DESK_KEY"\n'
    )
    monkeypatch.setenv("DESK_KEY", KEY)
    assert main(["say", "--server", "desk", "--json", "--max-new-tokens", "4", "Hi"]) == 0
    assert json.loads(capsys.readouterr().out)["server"] == server
    assert main(["say", "--server", "nowhere", "Hi"]) == 2
    assert capsys.readouterr().err.strip() == (
        "emochat: no [servers.nowhere] in config.toml (profiles: desk)"
    )


def _one_line(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("emochat: ") and not any("Traceback" in line for line in lines)
    return lines[-1]


def test_server_faults_are_one_line(server, monkeypatch, capsys) -> None:
    base = ["say", "--model", "smollm2", "Hi"]
    monkeypatch.setenv("EMOCHAT_API_KEY", "wrong")
    error = _one_line([*base, "--base-url", server], capsys)
    assert error.startswith(f"emochat: the server at {server} refused the API key (401")
    monkeypatch.setenv("EMOCHAT_API_KEY", KEY)
    nowhere = f"http://127.0.0.1:{_free_port()}/v1"
    error = _one_line([*base, "--base-url", nowhere], capsys)
    assert error == f"emochat: cannot reach the server at {nowhere}: Connection refused"
    error = _one_line(["say", "--base-url", server, "--model", "gpt-9", "Hi"], capsys)
    assert error == f"emochat: the server at {server} has no model 'gpt-9'; it offers: smollm2"
    error = _one_line([*base, "--base-url", server, "--timeout", "0.001"], capsys)
    assert error == f"emochat: the server at {server} did not answer within 0.001 s"


def test_a_web_server_that_is_not_the_api_is_one_line(tmp_path, capsys) -> None:
    port = _free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(1.5)
        url = f"http://127.0.0.1:{port}/v1"
        error = _one_line(["say", "--base-url", url, "--model", "m", "Hi"], capsys)
        assert error.startswith(f"emochat: the server at {url} answered 501 with a page")
    finally:
        web.terminate()


def test_a_server_that_goes_away_mid_reply_keeps_the_reply_as_stopped(tmp_path) -> None:
    from emochat.runtime import Runtime
    from emochat.runtime.config import ModelConfig, RunConfig

    process, url = start_server()
    try:
        config = RunConfig(ModelConfig(model="smollm2", backend="openai", base_url=url))
        session = Runtime(config).say_session(tmp_path / "chat.jsonl", save=True)
        session._settings = SamplingSettings(max_new_tokens=1000, seed=1)
        seen: list[str] = []

        def stop_server(piece: str) -> None:
            seen.append(piece)
            if len(seen) == 3:
                threading.Thread(target=process.kill).start()

        result = session.ask("Tell me a very long story about the sea.", on_piece=stop_server)
    finally:
        process.kill()
    assert result.broken == "the server closed the stream mid-reply"
    assert result.exchange.cancelled and result.exchange.reply.startswith("".join(seen[:3]).strip())
    events = [json.loads(line) for line in (tmp_path / "chat.jsonl").read_text().splitlines()]
    assert events[-1]["type"] == "assistant" and events[-1]["cancelled"]
    assert events[-1]["broken"] == "the server closed the stream mid-reply"


def test_steering_a_plain_server_is_refused_before_anything_connects(capsys) -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1"  # nothing listens: refused before connecting
    argv = ["say", "--base-url", url, "--model", "m", "--modulation", "steer", "Hi"]
    assert _one_line(argv, capsys) == (
        "emochat: a plain OpenAI-compatible server cannot be steered from here: use the "
        "persona prompt (--modulation prompt), or --steering easysteer on an EasySteer server"
    )
