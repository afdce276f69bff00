"""Emotional-Gemma style checkpoints: a LoRA adapter and an emotion projection added to the
token embeddings. Built here on a tiny random Gemma 3, in both projection layouts."""

import json

import pytest
import torch

from emochat.emotion import EmotionVector
from emochat.engine.loading import LoadOptions, load_model, resolve_source
from emochat.engine.modulation import build_modulator, choose_modulation
from emochat.engine.modulation.projection import (
    PROJECTION_FILE,
    EmbeddingProjectionModulator,
    build_projection,
)
from emochat.errors import EmochatError
from tests.conftest import build_tiny_model, transformers_backend

peft = pytest.importorskip("peft")
HIDDEN = 64


def mlp_state(prefix: str = "") -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    module = torch.nn.Sequential(
        torch.nn.Linear(8, HIDDEN // 2),
        torch.nn.LayerNorm(HIDDEN // 2),
        torch.nn.GELU(),
        torch.nn.Linear(HIDDEN // 2, HIDDEN),
    )
    return {prefix + key: value for key, value in module.state_dict().items()}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> object:
    """A base model folder and, beside it, an adapter folder naming it as its base."""
    root = tmp_path_factory.mktemp("emotional-gemma")
    base = build_tiny_model(root / "base", architecture="gemma3", layers=2)
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base)
    lora = peft.get_peft_model(model, peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    for name, parameter in lora.named_parameters():
        if "lora_B" in name:  # a fresh LoRA is an identity; make it do something
            torch.nn.init.normal_(parameter, std=0.5)
    adapter = root / "adapter"
    lora.save_pretrained(adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(base)
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    torch.save(mlp_state("emotion_proj_embed."), adapter / PROJECTION_FILE)
    return root


def test_an_adapter_folder_loads_its_base_and_applies_the_lora(checkpoint) -> None:
    base = load_model(
        resolve_source(str(checkpoint / "base")),
        LoadOptions(device="cpu", quant="none", dtype="float32"),
    )
    tuned = load_model(
        resolve_source(str(checkpoint / "adapter")),
        LoadOptions(device="cpu", quant="none", dtype="float32"),
    )
    assert tuned.info.adapter == str((checkpoint / "adapter").resolve())
    assert tuned.info.name == "adapter"
    ids = torch.tensor([[5, 9, 12, 40]])
    with torch.inference_mode():
        base_logits = base.model(input_ids=ids).logits
        assert not torch.allclose(base_logits, tuned.model(input_ids=ids).logits)


def test_auto_modulation_adds_three_times_the_projection_to_the_embeddings(checkpoint) -> None:
    loaded = load_model(
        resolve_source(str(checkpoint / "adapter")),
        LoadOptions(device="cpu", quant="none", dtype="float32"),
    )
    mode = choose_modulation("auto", resolve_source(str(checkpoint / "adapter")))
    modulator = build_modulator(mode, transformers_backend(loaded))
    assert isinstance(modulator, EmbeddingProjectionModulator)
    embeddings = loaded.model.get_input_embeddings()
    ids = torch.tensor([[5, 9, 12]])
    with torch.inference_mode():
        plain = embeddings(ids)
    modulator.attach(loaded.model)
    try:
        emotion = EmotionVector((0.5, -0.2, 0, 0, 0.9, 0, 0, -1))
        modulator.set_emotion(emotion)
        projection = build_projection(mlp_state("emotion_proj_embed."), HIDDEN)
        with torch.inference_mode():
            expected = plain + 3 * projection(torch.tensor([list(emotion)]))
            assert torch.allclose(embeddings(ids), expected, atol=1e-5)
            joy = loaded.model(input_ids=ids).logits
            modulator.set_emotion(EmotionVector.pole("sadness"))
            assert not torch.allclose(loaded.model(input_ids=ids).logits, joy)
    finally:
        modulator.detach()
    with torch.inference_mode():
        assert torch.equal(embeddings(ids), plain)


def test_the_plain_linear_layout_of_the_model_card_loads_too() -> None:
    linear = torch.nn.Linear(8, HIDDEN)
    projection = build_projection(linear.state_dict(), HIDDEN)
    vector = torch.randn(1, 8)
    assert torch.allclose(projection(vector), linear(vector))


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"weight": torch.zeros(HIDDEN, 7), "bias": torch.zeros(HIDDEN)}, "unrecognised"),
        ({"net.weight": torch.zeros(3, 3)}, "unrecognised"),
        (
            {key: value[:1] if key == "3.bias" else value for key, value in mlp_state().items()},
            "do not fit",
        ),
    ],
)
def test_a_projection_that_does_not_fit_is_refused(state, message: str) -> None:
    with pytest.raises(EmochatError, match=message):
        build_projection(state, HIDDEN)


def test_embed_without_a_projection_is_a_clear_error(tiny_loaded, monkeypatch, tmp_path) -> None:
    with pytest.raises(EmochatError, match=r"needs a checkpoint with emotion_proj_weights\.pth"):
        build_modulator("embed", transformers_backend(tiny_loaded))
    monkeypatch.setenv("EMOCHAT_CACHE", str(tmp_path))
    # auto on a plain model means steering; with no vectors and building off, the persona
    mode = choose_modulation("auto", resolve_source(tiny_loaded.info.source))
    auto = build_modulator(
        mode, transformers_backend(tiny_loaded), build_directions=False, progress=lambda m: None
    )
    assert auto.name == "prompt"


def test_a_pickle_with_code_in_it_is_not_loaded(checkpoint, tmp_path) -> None:
    import pickle

    from emochat.engine.modulation.projection import load_projection

    class Sneaky:
        def __reduce__(self):
            return (print, ("this must not run",))

    (tmp_path / PROJECTION_FILE).write_bytes(pickle.dumps({"weight": Sneaky()}))
    with pytest.raises(EmochatError, match="cannot read"):
        load_projection(tmp_path, HIDDEN)
