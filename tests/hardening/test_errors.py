"""Every bad input is one line saying what is wrong and what to do, exit 2, nothing lost:
damaged model files, malformed checkpoints, text that is not UTF-8, config of the wrong types,
unwritable destinations, and a hub id with no network."""

from __future__ import annotations

import io
import json
import shutil
import sys
import time

import pytest

from emochat.config import config_path
from emochat.tui.themes import load_themes
from tests.hardening.conftest import one_line
from tests.test_projection import checkpoint  # noqa: F401 - the fixture, reused

NOT_UTF8 = b"caf\xe9 au lait\n"


@pytest.fixture
def stdin(monkeypatch):
    def feed(data: bytes) -> None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))

    return feed


@pytest.mark.parametrize("backend", ["transformers", "llama.cpp"])
@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_a_damaged_gguf_is_one_line(run, tmp_path, backend, damage) -> None:
    from emochat.engine.loading import default_model_path

    model = tmp_path / f"{damage}.gguf"
    whole = default_model_path().read_bytes()
    model.write_bytes({"empty": b"", "truncated": whole[:50_000], "garbage": b"GGUF" * 999}[damage])
    code, _, err = run("say", "hi", "--model", str(model), "--backend", backend)
    assert code == 2
    line = one_line(err)
    assert line.startswith(("emochat: cannot read", "emochat: llama.cpp cannot load")), line
    assert str(model) in line


def test_a_damaged_safetensors_file_is_one_line(run, tmp_path, tiny_model_dir) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    code, _, err = run("say", "hi", "--model", str(folder))
    assert code == 2
    assert one_line(err).startswith(f"emochat: cannot load model {str(folder)!r}: ")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"[1, 2]", "names no base model"),
        (b'{"base_model_name_or_path": null}', "base_model_name_or_path must name a model"),
        (b"{not json", "names no base model"),
        (NOT_UTF8, "is not UTF-8 text"),
    ],
    ids=["a list", "no base", "not JSON", "not UTF-8"],
)
def test_a_malformed_adapter_config_is_one_line(run, tmp_path, content, expected) -> None:
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_bytes(content)
    code, _, err = run("say", "hi", "--model", str(folder))
    assert code == 2
    assert expected in one_line(err)


@pytest.mark.parametrize("content", [b"", b"not a pickle"], ids=["empty", "garbage"])
def test_a_bad_projection_file_is_one_line(run, tmp_path, checkpoint, content) -> None:  # noqa: F811
    adapter = tmp_path / "adapter"
    shutil.copytree(checkpoint / "adapter", adapter)
    (adapter / "emotion_proj_weights.pth").write_bytes(content)
    code, _, err = run("say", "hi", "--model", str(adapter), "--modulation", "embed")
    assert code == 2
    assert one_line(err).startswith(f"emochat: cannot read {adapter / 'emotion_proj_weights.pth'}")


def test_a_prompt_file_that_is_not_utf8_is_one_line(run, tmp_path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_bytes(NOT_UTF8)
    code, _, err = run("say", "--file", str(prompts))
    assert code == 2
    assert one_line(err) == (
        f"emochat: {prompts} is not UTF-8 text (byte 3); save it as UTF-8 and try again"
    )


def test_stdin_that_is_not_utf8_is_one_line(run, stdin) -> None:
    stdin(NOT_UTF8)
    code, _, err = run("say", "--file", "-")
    assert code == 2
    assert "standard input is not UTF-8 text" in one_line(err)
    stdin(b"fine\n" + NOT_UTF8)
    code, _, err = run("detect", "--jsonl", "--detector", "vader")
    assert code == 2
    assert "standard input line 2 is not UTF-8 text" in one_line(err)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (NOT_UTF8, "is not UTF-8 text"),
        (b"[defaults]\nmodel = 5\n", "config.toml: model = 5: must be text in quotes"),
        (b"[defaults]\ntemperature = [1, 2]\n", "temperature = [1, 2]: must be a single"),
        (b"[defaults]\nthreads = -3\n", "threads = -3: '-3' must be at least 1"),
        (b"[defaults]\nbuild_vectors = 'no'\n", "build_vectors = 'no': must be true or false"),
        (b"[keys]\nhelp = 3\n", "[keys] help must be keys in quotes"),
        (b"[defaults\n", "cannot read the config file"),
    ],
    ids=["not UTF-8", "model 5", "a list", "negative threads", "a text flag", "key", "syntax"],
)
def test_a_bad_config_file_is_one_line(run, config, expected) -> None:
    config_path().parent.mkdir(parents=True)
    config_path().write_bytes(config)
    code, _, err = run("say", "hi")
    assert code == 2
    assert expected in one_line(err)


def test_a_theme_with_a_bad_colour_is_skipped_with_a_warning() -> None:
    folder = config_path().parent / "themes"
    folder.mkdir(parents=True)
    (folder / "broken.toml").write_text('name = "broken"\nprimary = "#12345z"\n')
    (folder / "fine.toml").write_text('name = "fine"\nprimary = "#123456"\n')
    warnings: list[str] = []
    names = [theme.name for theme in load_themes(warnings.append)]
    assert "fine" in names and "broken" not in names
    assert warnings == [
        f"skipped theme {folder / 'broken.toml'}: primary = '#12345z' is not a colour"
    ]


def test_vectors_export_to_a_place_it_cannot_write_is_one_line_before_loading(
    run, tmp_path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    started = time.perf_counter()
    code, _, err = run("vectors", "export", "--out", str(blocker / "vectors"))
    assert code == 2
    assert one_line(err).startswith(f"emochat: cannot write to {blocker / 'vectors'}: ")
    assert "Loading" not in err and time.perf_counter() - started < 5


def test_a_hub_id_without_network_fails_at_once(run, monkeypatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    started = time.perf_counter()
    code, _, err = run("say", "hi", "--model", "someone/not-downloaded")
    assert code == 2
    assert one_line(err) == (
        "emochat: 'someone/not-downloaded' is not downloaded yet and the model hub cannot be "
        "reached; connect to the internet, or point --model at a local folder or .gguf file"
    )
    assert time.perf_counter() - started < 20


@pytest.mark.slow
def test_a_damaged_cached_conversion_is_made_again(run, model_cache, tmp_path, monkeypatch) -> None:
    from emochat.engine.loading import converted_gguf_dir, default_model_path

    cache = tmp_path / "cache"
    shutil.copytree(converted_gguf_dir(default_model_path()).parent, cache / "models")
    monkeypatch.setenv("EMOCHAT_CACHE", str(cache))
    converted = converted_gguf_dir(default_model_path())
    assert converted.is_relative_to(cache)
    weights = converted / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:4096])
    args = ["say", "Hi", "--backend", "transformers", "--modulation", "off", "--json"]
    code, out, err = main_outside_check(*args, "--max-new-tokens", "4")
    assert code == 0, err
    assert "damaged; converting again" in err
    assert json.loads(out)["reply"]


def main_outside_check(*args: str):
    """This test writes the cache it made outside the data folder on purpose."""
    from emochat.cli import main

    buffer_out, buffer_err = io.StringIO(), io.StringIO()
    real_out, real_err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = buffer_out, buffer_err
    try:
        code = main(list(args))
    finally:
        sys.stdout, sys.stderr = real_out, real_err
    return code, buffer_out.getvalue(), buffer_err.getvalue()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--temperature", "-1"], "emochat: temperature must be >= 0"),
        (["--top-p", "2"], "emochat: top-p must be in (0, 1]"),
        (["--intensity", "inf"], "emochat: intensity must be between 0 and 3"),
    ],
)
def test_bad_generation_flags_are_refused_before_the_model_loads(run, flags, expected) -> None:
    code, _, err = run("say", "hi", *flags)
    assert code == 2
    assert one_line(err) == expected
    assert "Loading" not in err


@pytest.mark.parametrize(
    "command",
    [
        ["say", "hi"],
        ["chat"],
        ["detect", "hi"],
        ["vectors", "build"],
        ["train-data", "--out", "x"],
        ["train", "--data", "d.jsonl", "--out", "o"],
    ],
)
def test_a_device_that_does_not_exist_is_refused_before_anything_loads(run, command) -> None:
    code, out, err = run(*command, "--device", "bogus")
    assert code == 2
    assert err.splitlines() == [one_line(err)]  # no "Loading …" before it
    assert one_line(err) == ("emochat: device must be auto, cpu, cuda, cuda:N or mps (not 'bogus')")
    assert out == ""


def _adapter(folder, base: str):
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": base}))
    return folder


def test_an_adapter_that_names_itself_as_its_base_is_one_line(run, tmp_path) -> None:
    adapter = _adapter(tmp_path / "self", str(tmp_path / "self"))
    code, _, err = run("say", "hi", "--model", str(adapter))
    assert code == 2
    assert err.splitlines() == [one_line(err)]
    assert one_line(err).startswith("emochat: adapter bases go round in a loop: ")


def test_adapters_whose_bases_loop_are_one_line(run, tmp_path) -> None:
    first = _adapter(tmp_path / "first", str(tmp_path / "second"))
    _adapter(tmp_path / "second", str(first))
    code, _, err = run("say", "hi", "--model", str(first))
    assert code == 2
    line = one_line(err)
    assert line.startswith("emochat: adapter bases go round in a loop: ")
    assert "first" in line and "second" in line
