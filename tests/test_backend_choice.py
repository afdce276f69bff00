"""Which backend runs a model, and the one-line refusals where the asked-for one cannot."""

from __future__ import annotations

import pytest

from emochat.engine import backends
from emochat.engine.backends import choose_backend
from emochat.engine.loading import LoadOptions, ModelSource, resolve_source
from emochat.errors import EmochatError
from emochat.progress import no_progress
from emochat.runtime import ModelConfig, RunConfig, Runtime

GGUF = ModelSource("gguf", "/models/m.gguf", "m")
FOLDER = ModelSource("folder", "/models/m", "m")
ADAPTER = ModelSource("gguf", "/models/base.gguf", "emo", adapter="/models/emo")


def choose(source: ModelSource, notes: list[str] | None = None, **options: str) -> str:
    return choose_backend(source, LoadOptions(**options), ([] if notes is None else notes).append)


def test_auto_takes_llama_cpp_for_a_gguf_and_transformers_for_the_rest() -> None:
    assert choose(GGUF) == "llama.cpp"
    assert choose(FOLDER) == "transformers"
    assert choose(ModelSource("hub", "org/name", "org/name")) == "transformers"
    assert choose(ADAPTER) == "transformers"  # the emotion projection needs transformers
    assert choose(GGUF, quant="8bit") == "transformers"  # a quantization picked by hand


def test_auto_without_llama_cpp_says_how_to_get_the_fast_engine(monkeypatch) -> None:
    monkeypatch.setattr(backends, "llama_cpp_installed", lambda: False)
    notes: list[str] = []
    assert choose(GGUF, notes) == "transformers"
    assert len(notes) == 1 and "emochat[llamacpp]" in notes[0]


@pytest.mark.parametrize(
    ("source", "options", "reason"),
    [
        (FOLDER, {}, "runs .gguf files"),
        (ADAPTER, {}, "PEFT adapter"),
        (GGUF, {"quant": "4bit"}, "GGUF's own quantization"),
    ],
)
def test_llama_cpp_refuses_what_it_cannot_run(source, options, reason) -> None:
    with pytest.raises(EmochatError, match=reason) as caught:
        choose(source, backend="llama.cpp", **options)
    assert str(caught.value).startswith("cannot use the llama.cpp backend")


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(EmochatError, match="backend must be one of auto, transformers"):
        choose(GGUF, backend="vllm")


def test_cuda_without_a_gpu_build_of_llama_cpp_goes_to_transformers(monkeypatch) -> None:
    from emochat.engine.backends import llamacpp_backend

    monkeypatch.setattr(llamacpp_backend, "gpu_offload_available", lambda: False)
    assert choose(GGUF, device="cuda") == "transformers"
    with pytest.raises(EmochatError, match="without GPU support"):
        choose(GGUF, device="cuda", backend="llama.cpp")


def _backend(backend: str, detector: str) -> str:
    config = RunConfig(model=ModelConfig(backend=backend), detector=detector)
    return Runtime(config).load_options.backend


def test_the_probe_detector_takes_the_transformers_backend() -> None:
    assert _backend("auto", "probe") == "transformers"
    assert _backend("auto", "minilm") == "auto"
    with pytest.raises(EmochatError, match="probe detector reads hidden states"):
        _backend("llama.cpp", "probe")


def test_backend_and_quantization_reach_the_transcript_header(tiny_model_dir) -> None:
    from emochat.cli import main
    from emochat.transcripts import find_transcript, read_transcript

    args = ["say", "Hello", "--model", str(tiny_model_dir), "--max-new-tokens", "2"]
    assert main([*args, "--backend", "transformers", "--quant", "none"]) == 0
    header = read_transcript(find_transcript("last")).header
    assert (header["backend"], header["quantization"]) == ("transformers", "none")


def test_a_corrupt_gguf_is_one_line_on_the_llama_cpp_backend(tmp_path, capfd) -> None:
    from emochat.engine.backends import open_backend

    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    options = LoadOptions(backend="llama.cpp", device="cpu")
    with pytest.raises(EmochatError, match="not a GGUF model it can read") as caught:
        open_backend(resolve_source(str(broken)), options, no_progress)
    assert "\n" not in str(caught.value)
    # llama.cpp's own lines went to its log, which the message names, not to the terminal
    from emochat.engine.llama_process import route_llama_logs

    log = route_llama_logs()
    assert f"(its log: {log})" in str(caught.value)
    assert "failed to load model" in log.read_text()
    assert capfd.readouterr().err == ""
