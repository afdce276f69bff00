import json
import subprocess
import sys

import pytest

from emochat.cli import main


def run_cli(*args: str, stdin: str | None = None, env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-m", "emochat", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=600,
        env=env,
    )


def test_help_and_version_do_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from emochat.cli import main\n"
        "for argv in (['--help'], ['--version'], ['say', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'textual') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "HEAVY []" in result.stdout
    assert "usage: emochat" in result.stdout


def test_a_wrong_flag_is_a_usage_error() -> None:
    result = run_cli("say", "hi", "--no-such-flag")
    assert result.returncode == 2
    assert "unrecognized arguments: --no-such-flag" in result.stderr


def test_a_missing_model_is_one_line_and_exit_2() -> None:
    result = run_cli("say", "hi", "--model", "./nowhere")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("emochat: no such model folder")
    assert "Traceback" not in result.stderr


def test_an_unknown_emotion_lists_the_valid_names(tiny_model_dir, capsys) -> None:
    assert main(["say", "hi", "--model", str(tiny_model_dir), "--emotion", "glee=1"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("emochat: unknown emotion 'glee'; valid names: sadness, joy")


def test_say_json_prints_the_public_fields(tiny_model_dir, capsys) -> None:
    args = ["say", "Hello there", "--model", str(tiny_model_dir), "--quant", "none"]
    code = main([*args, "--json", "--seed", "3", "--max-new-tokens", "8", "--emotion", "joy=2"])
    assert code == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out)
    assert set(record) == {
        "prompt",
        "reply",
        "emotion",
        "model",
        "backend",
        "quantization",
        "truncated",
        "new_tokens",
        "tokens_per_second",
        "expressed",
    }
    assert (record["backend"], record["quantization"]) == ("transformers", "none")
    assert record["prompt"] == "Hello there"
    assert record["emotion"] == [1.0, 0, 0, 0, 0, 0, 0, 0]
    assert 1 <= record["new_tokens"] <= 8
    assert "clamped" in captured.err


def test_say_file_answers_each_line_in_order(tiny_model_dir, tmp_path, capsys) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("first question\n\nsecond question\nthird question\n")
    args = ["say", "--file", str(prompts), "--model", str(tiny_model_dir), "--json"]
    assert main([*args, "--max-new-tokens", "4"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [json.loads(line)["prompt"] for line in lines] == [
        "first question",
        "second question",
        "third question",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["say"], "say needs a PROMPT or --file"),
        (["say", "hi", "--file", "x"], "either a PROMPT or --file"),
        (["say", "--file", "/no/such/file"], "cannot read /no/such/file"),
    ],
)
def test_say_argument_errors(args: list[str], message: str, capsys) -> None:
    assert main(args) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_say_with_the_real_default_model_is_coherent_and_repeatable(model_cache, tmp_path) -> None:
    greedy = run_cli("say", "What is the capital of France?", "--json", "--temperature", "0")
    assert greedy.returncode == 0, greedy.stderr
    record = json.loads(greedy.stdout)
    assert record["model"] == "SmolLM2-135M-Instruct"
    assert "Paris" in record["reply"]

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Tell me about your day.\nTell me about your day.\n")
    sampled = run_cli("say", "--file", str(prompts), "--json", "--seed", "5")
    assert sampled.returncode == 0, sampled.stderr
    records = [json.loads(line) for line in sampled.stdout.splitlines()]
    first, second = (record["reply"] for record in records)
    assert first == second
    # each reply read back by the detector: the same seed, the same reply, the same reading
    assert records[0]["expressed"] == records[1]["expressed"]
    assert len(records[0]["expressed"]["vector"]) == 8
    assert 0 <= records[0]["expressed"]["confidence"] <= 1
    words = first.split()
    assert len(words) >= 5
    assert sum(word.isascii() for word in words) / len(words) > 0.9


@pytest.mark.slow
def test_a_seeded_say_in_a_mood_is_repeatable_with_the_steering_loop_on(model_cache) -> None:
    """The loop re-steers the reply after its first sentence the same way each time: run
    twice, the same reply and the same reading; without the loop, another reply."""
    argv = ["say", "Tell me about your day.", "--json", "--no-save", "--seed", "3",
            "--emotion", "sadness=1,boredom=0.6"]  # fmt: skip
    runs = [run_cli(*argv) for _ in range(2)]
    assert all(run.returncode == 0 for run in runs), runs[0].stderr
    first, second = (json.loads(run.stdout) for run in runs)
    assert first["reply"] == second["reply"] and first["expressed"] == second["expressed"]
    plain = json.loads(run_cli(*argv, "--no-steering-loop").stdout)
    assert plain["reply"] != first["reply"]  # the loop did act on this reply


@pytest.mark.slow
def test_say_reads_a_reply_back_unless_told_not_to(model_cache, tmp_path) -> None:
    """A joyful reply reads joyful; --no-read-back loads no detector and reads nothing."""
    transcript = tmp_path / "joy.jsonl"
    argv = ["say", "Tell me about your day.", "--json", "--seed", "2", "--emotion", "joy=1"]
    joyful = run_cli(*argv, "--transcript", str(transcript))
    assert joyful.returncode == 0, joyful.stderr
    expressed = json.loads(joyful.stdout)["expressed"]
    assert expressed["vector"][0] > 0  # SADNESS↔JOY read on the joyful side
    event = json.loads(transcript.read_text().splitlines()[-1])
    assert event["expressed"] == expressed
    markdown = run_cli("transcripts", "export", str(transcript), "--format", "md")
    assert "read back as *" in markdown.stdout
    plain = run_cli(*argv, "--no-read-back", "--no-save")
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout)["expressed"] is None


def test_chat_help_shows_the_defaults(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["chat", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for default in (
        "stay put (default: mirror)",
        "(default: minilm)",
        "0-3 (default: 1.0)",
        "(default: auto)",
        "Ctrl+T cycles (default: emochat-dusk)",
    ):
        assert default in text, default


def test_a_reply_limit_beyond_the_context_is_capped_and_said(tiny_model_dir, capsys) -> None:
    args = ["say", "hi", "--model", str(tiny_model_dir), "--max-new-tokens", "5000", "--json"]
    assert main([*args, "--modulation", "off", "--seed", "1"]) == 0
    captured = capsys.readouterr()
    warning = [line for line in captured.err.splitlines() if "max-new-tokens" in line]
    assert warning == [
        "emochat: warning: --max-new-tokens 5000 would leave the prompt little or no room in "
        f"{tiny_model_dir.name}'s context of 256 tokens; using 128"
    ]
    assert json.loads(captured.out)["new_tokens"] <= 128


HEAVY_AFTER_MAIN = (
    "import sys\n"
    "from emochat.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print('HEAVY', [m for m in ('torch', 'transformers', 'peft') if m in sys.modules])\n"
    "sys.exit(code)\n"
)


@pytest.mark.slow
@pytest.mark.parametrize(
    "argv",
    [
        ["say", "How are you?", "--emotion", "joy=1", "--max-new-tokens", "8", "--no-save"],
        ["detect", "I just got the job!!!", "--json"],
    ],
    ids=["say", "detect"],
)
def test_the_default_path_never_imports_torch(model_cache, argv) -> None:
    """The default model on llama.cpp, steered, and the default detector on llama.cpp."""
    result = subprocess.run(
        [sys.executable, "-c", HEAVY_AFTER_MAIN, *argv], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
    assert "Traceback" not in result.stderr
