"""Models a user already has, found where their tools keep them: Ollama's store and the
Hugging Face cache, laid out on disk as ``ollama pull`` and ``hf_hub_download`` lay them out
(tests/stores.py), read offline; and ``emochat models`` listing them."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from emochat.cli import main
from emochat.engine.loading import default_model_path, resolve_source
from emochat.engine.stores import hub
from emochat.errors import EmochatError
from tests.gguf_models import write_random_gguf
from tests.stores import add_hub_repo, add_ollama_model

GGUF_REPO = "someone/SmolLM2-135M-Instruct-GGUF"
PARAMS = {"temperature": 0.2, "top_k": 20, "stop": ["<|im_end|>"], "num_ctx": 2048}


@pytest.fixture
def ollama_store(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "ollama-models"
    monkeypatch.setenv("OLLAMA_MODELS", str(root))
    add_ollama_model(
        root,
        "smollm2",
        default_model_path(),
        tag="135m",
        params=PARAMS,
        system="You answer in one sentence.",
    )
    return root


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """A hub cache holding a GGUF repo of two quantizations, read offline."""
    import huggingface_hub.constants

    cache = tmp_path / "hf-hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))  # for commands run in a subprocess
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tiny = write_random_gguf(tmp_path / "tiny.gguf")
    add_hub_repo(
        cache,
        GGUF_REPO,
        {
            "SmolLM2-135M-Instruct-Q4_1.gguf": default_model_path(),
            "SmolLM2-135M-Instruct-Q8_0.gguf": tiny,
            "README.md": b"# a GGUF repo\n",
        },
    )
    return cache


def _one_line_error(argv: list[str], capsys) -> str:
    """The error of a command that fails: one line (after any progress), exit 2."""
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in lines if line.startswith("emochat:")]
    assert errors == lines[-1:] and not any("Traceback" in line for line in lines)
    return errors[0]


# ------------------------------------------------------------------ Ollama
def test_an_ollama_name_is_its_model_blob_read_in_place(ollama_store) -> None:
    source = resolve_source("ollama:smollm2:135m")
    blob = Path(source.location)
    assert source.kind == "gguf" and blob.parent == ollama_store / "blobs"
    assert blob.name.startswith("sha256-") and blob.samefile(blob)
    assert source.display_name == "smollm2:135m"
    # Ollama's params by emochat's names; the ones emochat cannot use are named, not dropped
    assert source.sampling_defaults == {"temperature": 0.2, "top_k": 20}
    assert source.unused_settings == ("num_ctx", "stop")
    assert source.system_prompt == "You answer in one sentence."


def test_ollama_names_take_latest_and_namespaces(ollama_store, tmp_path) -> None:
    tiny = write_random_gguf(tmp_path / "tiny.gguf")
    add_ollama_model(ollama_store, "tiny", tiny)
    add_ollama_model(ollama_store, "tiny", tiny, namespace="someone", tag="v2")
    assert resolve_source("ollama:tiny").display_name == "tiny:latest"
    assert resolve_source("ollama:someone/tiny:v2").display_name == "someone/tiny:v2"
    with pytest.raises(EmochatError, match="no Ollama model someone/tiny:latest"):
        resolve_source("ollama:someone/tiny")


@pytest.mark.slow
def test_an_ollama_model_chats_steered_with_its_own_defaults(ollama_store) -> None:
    from emochat.emotion import EmotionVector
    from emochat.engine.modulation.control_vector import ControlVectorModulator
    from emochat.runtime import Runtime
    from emochat.runtime.config import GenerationConfig, ModelConfig, RunConfig

    def say(emotion: EmotionVector, **sampling) -> tuple[Runtime, str]:
        generation = GenerationConfig(emotion=emotion, seed=7, max_new_tokens=40, **sampling)
        config = RunConfig(ModelConfig(model="ollama:smollm2:135m"), generation)
        runtime = Runtime(config)
        session = runtime.say_session(None, save=False)
        return runtime, session.ask("Tell me about the sea.").exchange.reply

    runtime, joyful = say(EmotionVector.pole("joy"), temperature=0.0)
    backend = runtime.backend()
    assert backend.kind == "llama.cpp"
    # the blob is the default GGUF: the shipped directions are found by its content
    assert isinstance(backend.modulator, ControlVectorModulator)
    assert runtime.sampling().temperature == 0.0  # a flag beats the model's default
    assert runtime.sampling().top_k == 20  # the model's default beats emochat's
    assert runtime.system_prompt == "You answer in one sentence."
    _, neutral = say(EmotionVector(), temperature=0.0)
    assert joyful != neutral


def test_ollama_faults_are_one_line(ollama_store, capsys) -> None:
    error = _one_line_error(["say", "hi", "--model", "ollama:llama3.2"], capsys)
    assert error == (
        f"emochat: no Ollama model llama3.2:latest in {ollama_store} (installed: smollm2:135m); "
        "ollama pull llama3.2:latest fetches it"
    )
    manifest = ollama_store / "manifests/registry.ollama.ai/library/smollm2/135m"
    layers = json.loads(manifest.read_text())["layers"]
    blob = ollama_store / "blobs" / layers[0]["digest"].replace(":", "-")
    manifest.write_text("{not json")
    error = _one_line_error(["say", "hi", "--model", "ollama:smollm2:135m"], capsys)
    assert error.startswith(f"emochat: Ollama model smollm2:135m: {manifest} is not a manifest")
    manifest.write_text(json.dumps({"layers": layers[1:]}))
    error = _one_line_error(["say", "hi", "--model", "ollama:smollm2:135m"], capsys)
    assert error.endswith("is not a manifest (it has no model layer)")
    manifest.write_text(json.dumps({"layers": layers}))
    blob.unlink()
    error = _one_line_error(["say", "hi", "--model", "ollama:smollm2:135m"], capsys)
    assert f"its weights ({blob.name}) are missing" in error


# ----------------------------------------------------------- hub GGUF repos
@pytest.mark.parametrize(
    ("filename", "quant"),
    [
        ("gemma-3-270m-it-Q4_K_M.gguf", "Q4_K_M"),
        ("smollm2-135m-instruct-q8_0.gguf", "Q8_0"),
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "Q4_1"),
        ("Llama-3.2-1B-Instruct-f16.gguf", "F16"),
        ("Qwen3-8B-UD-Q4_K_XL.gguf", "UD-Q4_K_XL"),
        ("Q4_K_M/model-Q4_K_M-00001-of-00002.gguf", "Q4_K_M"),
        ("model.gguf", None),
    ],
)
def test_the_quantization_is_read_from_the_file_name(filename, quant) -> None:
    assert hub.quant_of(filename) == quant


def test_a_file_is_picked_by_quantization() -> None:
    files = [
        "README.md",
        "m-Q4_K_M-00001-of-00002.gguf",
        "m-Q4_K_M-00002-of-00002.gguf",
        "m-Q8_0.gguf",
        "mmproj-m-f16.gguf",
    ]
    assert hub.pick_file("o/m", files, None) == "m-Q4_K_M-00001-of-00002.gguf"
    assert hub.pick_file("o/m", files, "q8_0") == "m-Q8_0.gguf"
    assert hub.shards_of("m-Q4_K_M-00001-of-00002.gguf", files) == files[1:3]
    with pytest.raises(
        EmochatError, match=r"^o/m has no Q2_K GGUF; its quantizations: Q4_K_M, Q8_0$"
    ):
        hub.pick_file("o/m", files, "Q2_K")
    with pytest.raises(EmochatError, match=r"^o/m has no GGUF files$"):
        hub.pick_file("o/m", ["README.md", "config.json"], None)


def test_a_hub_gguf_is_read_from_the_cache_offline_by_quant(hub_cache) -> None:
    source = resolve_source(f"{GGUF_REPO}:q4_1")
    assert source.kind == "gguf"
    assert Path(source.location).samefile(default_model_path())
    assert Path(source.location).parent.parent.name == "snapshots"
    assert source.display_name == "SmolLM2-135M-Instruct-Q4_1"
    assert resolve_source(f"hf.co/{GGUF_REPO}:Q8_0").display_name == "SmolLM2-135M-Instruct-Q8_0"


def test_hub_gguf_faults_are_one_line(hub_cache, capsys) -> None:
    error = _one_line_error(["say", "hi", "--model", f"{GGUF_REPO}:Q5_K_M"], capsys)
    assert error == f"emochat: {GGUF_REPO} has no Q5_K_M GGUF; its quantizations: Q4_1, Q8_0"
    # without a quantization: Q4_K_M, which this repo lacks
    error = _one_line_error(["say", "hi", "--model", GGUF_REPO], capsys)
    assert error == f"emochat: {GGUF_REPO} has no Q4_K_M GGUF; its quantizations: Q4_1, Q8_0"
    error = _one_line_error(["say", "hi", "--model", "someone/elsewhere:Q4_K_M"], capsys)
    assert error.startswith("emochat: someone/elsewhere is not downloaded yet and the model hub")


def test_a_cached_transformers_repo_stays_a_transformers_model(hub_cache) -> None:
    add_hub_repo(hub_cache, "someone/tiny-llama", {"config.json": b"{}", "a.gguf": b"GGUF"})
    assert resolve_source("someone/tiny-llama").kind == "hub"


def test_a_gguf_llama_cpp_cannot_run_is_one_line(tmp_path, capsys) -> None:
    import gguf

    path = tmp_path / "strange.gguf"
    writer = gguf.GGUFWriter(str(path), "notamodel")
    writer.add_block_count(1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    error = _one_line_error(["say", "hi", "--model", str(path), "--backend", "llama.cpp"], capsys)
    assert error.startswith(f"emochat: llama.cpp cannot load {path}: a notamodel model")


# --------------------------------------------------------------- the list
def test_models_lists_every_store_with_names_that_load(ollama_store, hub_cache, capsys) -> None:
    assert main(["models", "--json"]) == 0
    found = {model["name"]: model for model in json.loads(capsys.readouterr().out)}
    assert set(found) == {
        "default",
        "ollama:smollm2:135m",
        f"{GGUF_REPO}:Q4_1",
        f"{GGUF_REPO}:Q8_0",
    }
    default = found["default"]
    assert (default["architecture"], default["quantization"]) == ("llama", "Q4_1")
    # the header's own size label, read before its vocabulary (which is then skipped)
    assert (default["size_label"], default["parameters"]) == ("135M", None)
    assert default["size"] == default_model_path().stat().st_size
    # the same GGUF in three stores: the shipped vectors are found for each
    for name in ("default", "ollama:smollm2:135m", f"{GGUF_REPO}:Q4_1"):
        assert found[name]["vectors"] == "shipped"
    assert found[f"{GGUF_REPO}:Q8_0"]["vectors"] == "not yet"
    # a header without a size label: its tensors counted
    random_model = found[f"{GGUF_REPO}:Q8_0"]
    assert random_model["size_label"] == "" and 100_000 < random_model["parameters"] < 1e6
    for name, model in found.items():  # every name resolves to the file listed
        assert Path(resolve_source(name).location).samefile(model["path"])
    assert main(["models"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["NAME", "ARCH", "PARAMS", "QUANT", "SIZE", "VECTORS", "FROM"]
    assert any(line.split()[:2] == ["ollama:smollm2:135m", "llama"] for line in table)


def test_models_says_what_it_could_not_read(ollama_store, capsys) -> None:
    manifest = ollama_store / "manifests/registry.ollama.ai/library/broken/latest"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("[]")
    result = subprocess.run(
        [sys.executable, "-m", "emochat", "models"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0
    assert "ollama:smollm2:135m" in result.stdout and "broken" not in result.stdout
    assert "emochat: warning: Ollama model broken:latest:" in result.stderr


def test_an_lm_studio_model_is_found_by_publisher_repo_and_quant(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "no-ollama"))
    folder = tmp_path / ".lmstudio" / "models" / "someone" / "SmolLM2-GGUF"
    folder.mkdir(parents=True)
    (folder / "SmolLM2-135M-Instruct-Q4_1.gguf").symlink_to(default_model_path())
    write_random_gguf(folder / "SmolLM2-135M-Instruct-Q8_0.gguf")
    source = resolve_source("lmstudio:someone/SmolLM2-GGUF:q4_1")
    assert Path(source.location).samefile(default_model_path())
    with pytest.raises(EmochatError, match="has no Q4_K_M GGUF; its quantizations: Q4_1, Q8_0"):
        resolve_source("lmstudio:someone/SmolLM2-GGUF")
    assert main(["models", "--json"]) == 0
    listed = {model["name"]: model for model in json.loads(capsys.readouterr().out)}
    assert listed["lmstudio:someone/SmolLM2-GGUF:Q4_1"]["vectors"] == "shipped"
    assert listed["lmstudio:someone/SmolLM2-GGUF:Q8_0"]["store"] == "lmstudio"
