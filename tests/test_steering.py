import json
import re

import numpy as np
import pytest
import torch

from emochat.emotion import EmotionVector, parse_emotion
from emochat.engine.directions import MAX_RELATIVE_NORM, EmotionDirections, write_control_vector
from emochat.engine.extraction import default_band, directions_for, extract_directions
from emochat.engine.layers import find_decoder_layers
from emochat.engine.loading import LoadOptions, load_model, resolve_source
from emochat.engine.modulation import CombinedModulator, build_modulator
from emochat.engine.modulation.persona import PersonaModulator
from emochat.engine.modulation.steering import SteeringModulator
from emochat.errors import EmochatError
from tests.conftest import next_token_logits, transformers_backend

PROMPT = [{"role": "user", "content": "How are you feeling today?"}]


@pytest.fixture(scope="module")
def tiny_directions(tiny_loaded) -> EmotionDirections:
    return extract_directions(transformers_backend(tiny_loaded))


def _logits(model, text="Hello there") -> torch.Tensor:
    ids = torch.tensor([[5, 17, 42, 99, 7]])
    with torch.inference_mode():
        return model(input_ids=ids).logits


def test_extraction_gives_one_direction_per_axis_and_layer(tiny_loaded, tiny_directions) -> None:
    d = tiny_directions
    assert d.values.shape == (8, 4, 64)
    assert d.residual_norms.shape == (4,)
    assert d.band == default_band(4) == (1, 2)
    assert all(scale > 0 and np.isfinite(scale) for scale in d.scales)
    # blocks up to the band's end are read; later ones are never steered and stay zero
    assert d.metadata["measured_layers"] == d.band[1] == 2
    assert np.linalg.norm(d.values[:, :2], axis=-1).min() > 0
    assert not d.values[:, 2:].any() and not d.residual_norms[2:].any()
    assert d.metadata["n_layers"] == 4
    assert d.metadata["hidden_size"] == 64
    assert d.metadata["prompt_set_version"] == 2


def test_default_band_is_the_middle_third() -> None:
    assert default_band(30) == (10, 20)
    assert default_band(2) == (0, 1)


def test_offsets_respect_band_sign_and_cap(tiny_directions) -> None:
    d = tiny_directions
    joy = d.offsets(EmotionVector.pole("joy"))
    sad = d.offsets(EmotionVector.pole("sadness"))
    start, stop = d.band
    assert not joy[:start].any() and not joy[stop:].any()
    assert np.allclose(joy, -sad)
    loud = d.offsets(EmotionVector((1.0,) * 8), intensity=3)
    limits = MAX_RELATIVE_NORM * d.residual_norms
    assert np.all(np.linalg.norm(loud, axis=-1) <= limits * 1.0001)


def test_vector_files_round_trip(tiny_directions, tmp_path) -> None:
    tiny_directions.save(tmp_path)
    loaded = EmotionDirections.load(tmp_path)
    assert np.array_equal(loaded.values, tiny_directions.values)
    assert np.array_equal(loaded.residual_norms, tiny_directions.residual_norms)
    assert loaded.band == tiny_directions.band
    assert loaded.scales == pytest.approx(tiny_directions.scales)
    assert loaded.metadata == json.loads(json.dumps(tiny_directions.metadata))


def test_a_corrupt_vector_file_is_a_clear_error(tiny_directions, tmp_path) -> None:
    tiny_directions.save(tmp_path)
    (tmp_path / "emotion_vectors.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(EmochatError, match="cannot read emotion vectors"):
        EmotionDirections.load(tmp_path)


def test_zero_vector_leaves_logits_bit_identical(tiny_loaded, tiny_directions) -> None:
    before = _logits(tiny_loaded.model)
    steering = SteeringModulator(tiny_directions)
    steering.attach(tiny_loaded.model)
    try:
        steering.set_emotion(EmotionVector())
        assert torch.equal(_logits(tiny_loaded.model), before)
        steering.set_emotion(EmotionVector.pole("joy"))
        assert not torch.equal(_logits(tiny_loaded.model), before)
    finally:
        steering.detach()
    assert torch.equal(_logits(tiny_loaded.model), before)


def test_hooks_act_inside_the_band_from_the_last_prompt_position_on(
    tiny_loaded, tiny_directions
) -> None:
    layers = find_decoder_layers(tiny_loaded.model)
    assert layers is tiny_loaded.model.model.layers

    def block_outputs(ids: torch.Tensor, past=None) -> list[torch.Tensor]:
        seen = []
        handles = [
            layer.register_forward_hook(
                lambda m, a, out: seen.append((out[0] if isinstance(out, tuple) else out).clone())
            )
            for layer in layers
        ]
        with torch.inference_mode():
            tiny_loaded.model(input_ids=ids, past_key_values=past)
        for handle in handles:
            handle.remove()
        return seen

    prompt, step = torch.tensor([[5, 17, 42, 99, 7]]), torch.tensor([[11]])
    plain = block_outputs(prompt)
    steering = SteeringModulator(tiny_directions)
    steering.attach(tiny_loaded.model)
    steering.set_emotion(EmotionVector.pole("fear"))
    try:
        steered = block_outputs(prompt)
        steered_step = block_outputs(step)
    finally:
        steering.detach()
    plain_step = block_outputs(step)
    start, _ = tiny_directions.band
    # The observing hooks run after the steering ones, so they see the steered outputs: blocks
    # before the band are untouched; in the first band block the prompt's positions are too,
    # and its last position, like a reply's one-position step, carries exactly the offset.
    assert all(torch.equal(a, b) for a, b in zip(plain[:start], steered[:start], strict=True))
    offset = torch.from_numpy(tiny_directions.offsets(EmotionVector.pole("fear"))[start])
    assert torch.equal(steered[start][:, :-1], plain[start][:, :-1])
    assert torch.allclose(steered[start][0, -1] - plain[start][0, -1], offset, atol=1e-5)
    assert torch.allclose(steered_step[start][0, 0] - plain_step[start][0, 0], offset, atol=1e-5)


def test_decoder_layers_are_found_in_peft_and_gpt2_models(tiny_loaded, tmp_path) -> None:
    peft = pytest.importorskip("peft")
    from transformers import GPT2Config, GPT2LMHeadModel

    wrapped = peft.get_peft_model(
        tiny_loaded.model, peft.LoraConfig(r=2, target_modules=["q_proj"])
    )
    try:
        assert find_decoder_layers(wrapped) is tiny_loaded.model.model.layers
    finally:
        wrapped.unload()
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=3, n_embd=32, n_head=2, vocab_size=50))
    assert find_decoder_layers(gpt2) is gpt2.transformer.h


def test_changing_the_vector_takes_effect_on_the_next_reply(tiny_loaded, tiny_directions) -> None:
    steering = SteeringModulator(tiny_directions, intensity=3)
    engine = transformers_backend(tiny_loaded, steering)
    try:
        neutral = next_token_logits(engine, PROMPT, EmotionVector())
        afraid = next_token_logits(engine, PROMPT, EmotionVector((-1.0,) * 8))
        again = next_token_logits(engine, PROMPT, EmotionVector())
    finally:
        steering.detach()
    assert not np.allclose(afraid, neutral, atol=1e-4)
    assert np.array_equal(again, neutral)


def test_steering_works_on_a_4bit_model(tiny_model_dir, tiny_directions) -> None:
    loaded = load_model(
        resolve_source(str(tiny_model_dir)), LoadOptions(device="cpu", quant="4bit")
    )
    assert loaded.info.quant == "int4"
    before = _logits(loaded.model)
    steering = SteeringModulator(tiny_directions)
    steering.attach(loaded.model)
    steering.set_emotion(EmotionVector())
    assert torch.equal(_logits(loaded.model), before)
    steering.set_emotion(EmotionVector.pole("anger"))
    assert not torch.equal(_logits(loaded.model), before)


def test_vectors_are_built_once_then_cached(tiny_loaded, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("EMOCHAT_CACHE", str(tmp_path))
    backend = transformers_backend(tiny_loaded)
    assert directions_for(backend, build=False) is None
    messages: list[str] = []
    built = directions_for(backend, messages.append)
    assert messages[-1].startswith("Building emotion vectors for")
    assert re.search(rf" {len(messages)}/{len(messages)} in \d+ s$", messages[-1])
    monkeypatch.setattr(
        "emochat.engine.extraction.extract_directions",
        lambda *a, **k: pytest.fail("built again"),
    )
    cached = directions_for(backend)
    assert np.array_equal(cached.values, built.values)


def test_modulation_modes(tiny_loaded, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("EMOCHAT_CACHE", str(tmp_path))
    notes: list[str] = []
    fallback = build_modulator(
        "steer", transformers_backend(tiny_loaded), build_directions=False, progress=notes.append
    )
    assert isinstance(fallback, PersonaModulator)
    assert "persona prompt instead" in notes[0]
    both = build_modulator("both", transformers_backend(tiny_loaded), progress=notes.append)
    assert isinstance(both, CombinedModulator)
    assert "joyful" in both.system_prompt(EmotionVector.pole("joy"))
    assert (
        build_modulator("off", transformers_backend(tiny_loaded)).system_prompt(
            EmotionVector.pole("joy")
        )
        is None
    )
    with pytest.raises(EmochatError, match="intensity"):
        build_modulator("steer", transformers_backend(tiny_loaded), intensity=9)


def test_persona_prompt_joins_the_system_prompt(tiny_loaded) -> None:
    engine = transformers_backend(tiny_loaded, PersonaModulator())
    vector, _ = parse_emotion("sadness=0.9,interest=0.4")
    messages = engine.prepare_messages(
        [{"role": "system", "content": "Be brief."}, *PROMPT], vector
    )
    assert messages[0]["content"].startswith("Be brief.\n\nRight now you feel extremely sad")
    assert "quite interested" in messages[0]["content"]
    assert engine.prepare_messages(PROMPT, EmotionVector()) == PROMPT


def test_control_vector_gguf_matches_llama_cpp_layout(tiny_directions, tmp_path) -> None:
    import gguf

    offsets = tiny_directions.offsets(EmotionVector.pole("joy"))
    path = write_control_vector(tmp_path / "joy.gguf", offsets, "llama")
    reader = gguf.GGUFReader(str(path))
    arch = reader.fields["general.architecture"]
    assert bytes(arch.parts[arch.data[0]]).decode() == "controlvector"
    names = [tensor.name for tensor in reader.tensors]
    assert names == [f"direction.{layer}" for layer in range(1, 4)]
    for tensor in reader.tensors:
        layer = int(tensor.name.split(".")[1])
        assert np.allclose(tensor.data, offsets[layer])
