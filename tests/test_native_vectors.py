"""Directions measured from the model that runs: llama.cpp reads block outputs from the GGUF's
own weights through its eval callback, transformers through hooks; both read each question
once with its framings batched beside it. Checked against the shipped directions (made the old
way, one framing at a time through a float32 transformers copy) and against an unbatched read."""

import numpy as np
import pytest

from emochat.emotion import EmotionVector
from emochat.engine.backends import open_backend
from emochat.engine.directions import EmotionDirections, directions_status, shipped_directions_dir
from emochat.engine.extraction import extract_directions
from emochat.engine.framings import framed_questions, load_prompt_set
from emochat.engine.layers import block_hidden, find_decoder_layers
from emochat.engine.loading import LoadOptions, load_model, resolve_source
from emochat.engine.modulation import build_modulator
from emochat.engine.modulation.control_vector import ControlVectorModulator
from emochat.engine.modulation.pending import PendingSteering
from emochat.engine.torch_blocks import read_framings
from emochat.progress import no_progress
from tests.conftest import build_tiny_model, next_token_logits
from tests.gguf_models import write_random_gguf

PROMPT = [{"role": "user", "content": "How are you feeling today?"}]


def _llama_backend(path):
    options = LoadOptions(device="cpu", backend="llama.cpp")
    return open_backend(resolve_source(str(path)), options, no_progress)


def _cosines(a, b):
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


@pytest.mark.slow
def test_native_directions_of_the_default_gguf_match_the_shipped_ones(default_llama) -> None:
    native = extract_directions(default_llama)
    shipped = EmotionDirections.load(shipped_directions_dir("SmolLM2-135M-Instruct"))
    assert native.band == shipped.band
    start, stop = shipped.band
    # measured: at least 0.9995 on every axis and layer of the band
    cosines = _cosines(native.values[:, start:stop], shipped.values[:, start:stop])
    assert cosines.min() > 0.999, cosines.min()
    assert native.scales == pytest.approx(shipped.scales, rel=0.02)
    norms = native.residual_norms[start:stop] / shipped.residual_norms[start:stop]
    assert norms == pytest.approx(1, abs=0.01)


@pytest.mark.parametrize("architecture", ["llama", "gemma3"])
def test_a_random_gguf_gets_directions_natively_and_steers(architecture, tmp_path, monkeypatch):
    monkeypatch.setenv("EMOCHAT_CACHE", str(tmp_path / "cache"))
    backend = _llama_backend(write_random_gguf(tmp_path / f"{architecture}.gguf", architecture))
    assert backend.info.architecture == architecture
    notes: list[str] = []
    steering = build_modulator("steer", backend, progress=notes.append)
    assert isinstance(steering, ControlVectorModulator)
    assert notes[0] == f"No emotion vectors for {architecture} yet: building them once…"
    assert notes[-1].startswith(f"Building emotion vectors for {architecture}: ")
    directions = steering.directions
    stop = directions.band[1]
    assert directions.metadata["built_with"] == "llama.cpp"
    assert np.isfinite(directions.values).all()
    assert np.linalg.norm(directions.values[:, :stop], axis=-1).min() > 0
    assert directions_status(backend.info.name, backend.info.source) == "built"
    backend.use(steering)
    neutral = next_token_logits(backend, PROMPT, EmotionVector())
    joyful = next_token_logits(backend, PROMPT, EmotionVector.pole("joy"))
    assert not np.allclose(neutral, joyful)


def test_directions_a_gguf_lacks_are_built_behind_the_chat(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("EMOCHAT_CACHE", str(tmp_path / "cache"))
    backend = _llama_backend(write_random_gguf(tmp_path / "behind.gguf"))
    notes: list[str] = []
    pending = build_modulator("steer", backend, progress=notes.append, build_behind=True)
    assert isinstance(pending, PendingSteering)
    assert notes[0].startswith("No emotion vectors for behind yet: building them behind the chat")
    backend.use(pending)
    assert pending.wait(timeout=120)
    assert notes[-1] == "Emotion vectors ready: replies are steered from the next one"
    neutral = next_token_logits(backend, PROMPT, EmotionVector())
    joyful = next_token_logits(backend, PROMPT, EmotionVector.pole("joy"))
    assert not np.allclose(neutral, joyful)
    backend.use(build_modulator("off", backend))  # the control vector goes with the modulator
    assert np.allclose(next_token_logits(backend, PROMPT, EmotionVector.pole("joy")), neutral)


def _unbatched(model, prompt_ids, framing, blocks):
    """One framing at a time, the whole model, as directions were read before."""
    import torch

    captured = []
    layers = find_decoder_layers(model)
    handles = [
        layer.register_forward_hook(lambda m, a, out: captured.append(block_hidden(out)[0]))
        for layer in layers[:blocks]
    ]
    try:
        with torch.inference_mode():
            model(input_ids=torch.tensor([prompt_ids + framing]))
    finally:
        for handle in handles:
            handle.remove()
    return np.stack([h[len(prompt_ids) :].mean(0).float().numpy() for h in captured])


@pytest.mark.parametrize("architecture", ["llama", "gemma3"])
def test_the_batched_transformers_read_equals_reading_one_framing_at_a_time(
    architecture, tmp_path
) -> None:
    folder = build_tiny_model(tmp_path / architecture, architecture=architecture)
    options = LoadOptions(device="cpu", dtype="float32", quant="none")
    loaded = load_model(resolve_source(str(folder)), options)
    question = framed_questions(loaded.tokenizer, load_prompt_set())[0]
    assert len({len(framing) for framing in question.framings}) > 1  # padding is exercised
    batched = read_framings(loaded.model, question, 3)
    assert batched.shape == (len(question.framings), 3, 64)
    for index in (0, 17, len(question.framings) - 1):
        one = _unbatched(loaded.model, question.prompt_ids, question.framings[index], 3)
        np.testing.assert_allclose(batched[index], one, atol=2e-4)
