import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from emochat.cli import main
from emochat.emotion import EmotionVector
from emochat.errors import EmochatError
from emochat.export import to_markdown
from emochat.session import ChatSession
from emochat.state import EmotionState
from emochat.transcripts import (
    TranscriptWriteError,
    TranscriptWriter,
    find_transcript,
    import_document,
    read_transcript,
    transcripts_dir,
)
from tests.fakes import FakeBackend


def write_conversation(turns: int = 2, **header) -> TranscriptWriter:
    writer = TranscriptWriter.create({"model": "fake", "state": EmotionState().to_dict(), **header})
    state = EmotionState()
    for turn in range(turns):
        state.set(EmotionVector.pole("joy", 0.1 * (turn + 1)))
        writer.write(
            {
                "type": "user",
                "text": f"question {turn}",
                "state": state.to_dict(),
                "reading": {"vector": [0.5] + [0] * 7, "confidence": 0.9},
            }
        )
        writer.write(
            {
                "type": "assistant",
                "text": f"answer {turn}",
                "emotion": state.vector.to_list(),
                "new_tokens": 2,
                "tokens_per_second": 12.5,
                "cancelled": False,
            }
        )
    return writer


def test_round_trip_write_resume_continue_export_import() -> None:
    writer = write_conversation(turns=2)
    writer.close()
    conversation = read_transcript(find_transcript("last"))
    assert conversation.turns() == 2
    assert conversation.messages()[-1] == {"role": "assistant", "content": "answer 1"}
    state = ChatSession.restore_state(conversation)
    assert state.vector[0] == pytest.approx(0.2)

    backend = FakeBackend("an answer")
    session = ChatSession(
        backend, None, state, TranscriptWriter.resume(conversation), None, warn=pytest.fail
    )
    session.ask("question 2")
    session.close()
    messages, _ = backend.calls[0]
    assert len(messages) == 5  # the resumed history went to the model
    assert messages[-2:] == [
        {"role": "assistant", "content": "answer 1"},
        {"role": "user", "content": "question 2"},
    ]

    again = read_transcript(find_transcript(conversation.id))
    assert again.turns() == 3
    document = json.loads(json.dumps(again.to_document()))
    imported = read_transcript(import_document(document))
    assert imported.id != again.id  # the original id is taken
    assert imported.events == again.events
    assert imported.header["model"] == "fake"


def test_files_are_private_and_exclusive(private_home) -> None:
    writer = write_conversation(turns=1)
    writer.close()
    mode = stat.S_IMODE(writer.path.stat().st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(transcripts_dir().stat().st_mode) == 0o700
    with pytest.raises(EmochatError, match="already exists"):
        TranscriptWriter.create({"id": writer.path.stem})


def test_two_sessions_never_write_the_same_file() -> None:
    writer = write_conversation(turns=1)
    conversation = read_transcript(writer.path)
    with pytest.raises(EmochatError, match="open in another emochat session"):
        TranscriptWriter.resume(conversation)
    writer.close()
    TranscriptWriter.resume(conversation).close()


def test_concurrent_writers_in_separate_processes_keep_every_line(tmp_path) -> None:
    script = textwrap.dedent(
        """
        import sys
        from emochat.transcripts import TranscriptWriter
        writer = TranscriptWriter.create({"model": "w" + sys.argv[1]})
        for i in range(50):
            writer.write({"type": "user", "text": f"{sys.argv[1]}-{i}"})
        writer.close()
        """
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script, str(n)], env=os.environ.copy())
        for n in range(4)
    ]
    assert all(process.wait(timeout=120) == 0 for process in processes)
    files = sorted(transcripts_dir().glob("*.jsonl"))
    assert len(files) == 4
    for path in files:
        conversation = read_transcript(path, warn=pytest.fail)
        writer_id = conversation.header["model"][1:]
        assert [e["text"] for e in conversation.events] == [f"{writer_id}-{i}" for i in range(50)]


def test_a_corrupt_middle_line_and_a_torn_last_line_are_skipped_with_warnings() -> None:
    writer = write_conversation(turns=3)
    writer.close()
    lines = writer.path.read_text().splitlines()
    lines[2] = "{not json"
    writer.path.write_text("\n".join(lines) + '\n{"type": "assistant", "te')
    warnings: list[str] = []
    conversation = read_transcript(writer.path, warnings.append)
    assert warnings == [
        f"{writer.path}: line 3 is damaged and was skipped",
        f"{writer.path}: line {len(lines) + 1} is damaged and was skipped",
    ]
    assert len(conversation.events) == 6 - 1
    with pytest.raises(EmochatError, match="not an emochat transcript"):
        bad = writer.path.with_name("bad.jsonl")
        bad.write_text('{"type": "user"}\n')
        read_transcript(bad)


@pytest.fixture
def endless_model_dir(tiny_model_dir, tmp_path) -> Path:
    """The tiny model without an end-of-sequence token and with room for a very long reply, so
    only a signal stops it (a random model otherwise samples the end token sooner or later)."""
    folder = tmp_path / "endless"
    shutil.copytree(tiny_model_dir, folder)
    config_file = folder / "generation_config.json"
    config = json.loads(config_file.read_text())
    config["eos_token_id"] = None
    config_file.write_text(json.dumps(config))
    model_config = json.loads((folder / "config.json").read_text())
    model_config["max_position_embeddings"] = 1_000_000  # rotary positions: no table grows
    (folder / "config.json").write_text(json.dumps(model_config))
    return folder


def test_a_process_killed_mid_reply_leaves_every_finished_turn(endless_model_dir) -> None:
    """`emochat say --file` killed while generating: the file still loads, with every
    finished turn and the unanswered question."""
    prompts = Path(os.environ["EMOCHAT_HOME"]) / "prompts.txt"
    prompts.parent.mkdir(parents=True, exist_ok=True)
    prompts.write_text("first\nsecond\nthird\n")
    args = [
        sys.executable,
        "-m",
        "emochat",
        "say",
        "--file",
        str(prompts),
        "--model",
        str(endless_model_dir),
        "--json",
        "--modulation",
        "off",
    ]
    process = subprocess.Popen(
        [*args, "--max-new-tokens", "200000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    path = None
    while time.time() < deadline:
        files = list(transcripts_dir().glob("*.jsonl")) if transcripts_dir().is_dir() else []
        if files and '"type": "user"' in files[0].read_text():
            path = files[0]
            break
        time.sleep(0.1)
    time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert path is not None
    conversation = read_transcript(path)
    first = conversation.exchanges()[0]
    assert first.prompt == "first" and not first.answered  # shown as stopped on resume
    assert conversation.messages() == []  # and not sent to the model again
    assert conversation.header["source"] == "say"


def test_ctrl_c_mid_reply_records_the_stopped_reply(endless_model_dir) -> None:
    args = [
        sys.executable,
        "-m",
        "emochat",
        "say",
        "hello",
        "--model",
        str(endless_model_dir),
        "--max-new-tokens",
        "200000",
        "--modulation",
        "off",
    ]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        files = list(transcripts_dir().glob("*.jsonl")) if transcripts_dir().is_dir() else []
        if files and '"type": "user"' in files[0].read_text():
            break
        time.sleep(0.1)
    time.sleep(2.0)  # the user line is written just before generation starts
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert stderr.strip().splitlines()[-1] == "emochat: interrupted"
    events = read_transcript(find_transcript("last")).events
    assert events[-1]["type"] == "assistant" and events[-1]["cancelled"] is True


def test_a_full_disk_is_reported_once_and_the_chat_goes_on(monkeypatch) -> None:
    writer = write_conversation(turns=1)
    conversation = writer.conversation

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(TranscriptWriteError, match="No space left on device"):
        writer.write({"type": "user", "text": "lost on disk"})
    assert not writer.saving
    writer.write({"type": "user", "text": "kept in memory"})
    assert conversation.events[-1]["text"] == "kept in memory"


def test_a_read_only_disk_is_a_clear_warning_for_say(tiny_model_dir, capsys, monkeypatch) -> None:
    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr("emochat.transcripts.os.open", read_only)
    code = main(["say", "hi", "--model", str(tiny_model_dir), "--max-new-tokens", "3"])
    captured = capsys.readouterr()
    assert code == 0
    assert captured.out.strip()  # the reply still came
    warning = [line for line in captured.err.splitlines() if "transcript" in line]
    assert len(warning) == 1
    assert "Read-only file system" in warning[0] and "goes on without saving" in warning[0]


def test_data_dir_override(private_home) -> None:
    writer = write_conversation(turns=1)
    writer.close()
    assert writer.path.is_relative_to(private_home / "data" / "transcripts")


def test_unknown_id_lists_close_matches() -> None:
    writer = write_conversation(turns=1, id="20260101-120000-abcd")
    writer.close()
    with pytest.raises(EmochatError, match="did you mean: 20260101-120000-abcd"):
        find_transcript("20260101-120000-abce")
    assert find_transcript("20260101") == writer.path


def test_cli_list_show_export_import_delete(capsys, tmp_path) -> None:
    writer = write_conversation(turns=2, id="20260102-090000-beef")
    writer.close()
    assert main(["transcripts", "list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split() == ["ID", "CHANGED", "MODEL", "TURNS", "TITLE", "FINAL", "MOOD"]
    assert listing[1].split()[:2] == ["20260102-090000-beef", time.strftime("%Y-%m-%d")]
    assert "question 0" in listing[1] and "joy 0.20" in listing[1]

    assert main(["transcripts", "show", "20260102"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith('---\nid: "20260102-090000-beef"')

    out = tmp_path / "chat.md"
    assert main(["transcripts", "export", "last", "--format", "md", "--out", str(out)]) == 0
    markdown = out.read_text()
    assert 'final_mood: "joy 0.20"' in markdown
    assert "> question 1" in markdown and "answer 1" in markdown
    assert markdown == to_markdown(read_transcript(writer.path))

    exported = tmp_path / "chat.json"
    assert main(["transcripts", "export", "last", "--format", "json", "--out", str(exported)]) == 0
    assert main(["transcripts", "delete", "20260102-090000-beef"]) == 0
    assert not writer.path.exists()
    assert main(["transcripts", "import", str(exported)]) == 0
    assert "Imported as 20260102-090000-beef" in capsys.readouterr().out
    assert read_transcript(find_transcript("20260102-090000-beef")).turns() == 2

    exported.write_text("{broken")
    assert main(["transcripts", "import", str(exported)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["transcripts", "show", "nope"]) == 2
    assert "no conversation 'nope'" in capsys.readouterr().err


def test_say_saves_a_transcript_unless_told_not_to(tiny_model_dir, tmp_path) -> None:
    common = ["say", "hello", "--model", str(tiny_model_dir), "--max-new-tokens", "3"]
    assert main([*common, "--no-save"]) == 0
    assert not transcripts_dir().exists()
    target = tmp_path / "mine.jsonl"
    assert main([*common, "--transcript", str(target), "--emotion", "calm"]) == 0
    conversation = read_transcript(target)
    assert conversation.header["emotion"][3] == 1.0
    assert [event["type"] for event in conversation.events] == ["user", "assistant"]


def test_cli_search_finds_words_in_any_message_with_where(capsys) -> None:
    whales = write_conversation(turns=1, id="20260103-090000-aaaa")
    whales.write({"type": "user", "text": "Where do Whales sleep at night?"})
    whales.close()
    write_conversation(turns=1, id="20260103-090000-bbbb").close()
    assert main(["transcripts", "search", "whales SLEEP"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("20260103-090000-aaaa")
    assert lines[2].strip() == "… Where do Whales sleep at night?"
    assert len(lines) == 3
    assert main(["transcripts", "search", "no such words"]) == 0
    assert capsys.readouterr().out.strip() == "No conversation mentions 'no such words'."


def test_a_chat_reopens_with_its_own_sampling_and_system_prompt() -> None:
    from emochat.engine.generation import SamplingSettings
    from emochat.runtime.restore import saved_sampling

    writer = write_conversation(
        turns=1,
        sampling={"temperature": 0.2, "max_new_tokens": 99, "unknown": 1},
        system_prompt="Be brief.",
    )
    writer.close()
    conversation = read_transcript(writer.path)
    restored = saved_sampling(conversation, SamplingSettings())
    assert (restored.temperature, restored.max_new_tokens) == (0.2, 99)
    broken = read_transcript(writer.path)
    broken.header["sampling"] = {"temperature": -5}
    assert saved_sampling(broken, SamplingSettings()) == SamplingSettings()


def test_conversations_started_in_the_same_second_get_their_own_files(monkeypatch) -> None:
    drawn = iter(["20261130-090000-beef", "20261130-090000-beef", "20261130-090000-cafe"])
    monkeypatch.setattr("emochat.transcripts.new_id", lambda: "20261130-090000-beef")
    first = TranscriptWriter.create({"model": "a"})
    monkeypatch.setattr("emochat.transcripts.new_id", lambda: next(drawn))
    second = TranscriptWriter.create({"model": "b"})
    assert first.path != second.path and second.path.stem.endswith("-cafe")
    assert read_transcript(second.path).header["id"] == second.path.stem
    first.close()
    second.close()


def test_a_chat_reopens_with_its_own_steering_strength() -> None:
    from emochat.engine.modulation import CombinedModulator, set_intensity
    from emochat.engine.modulation.persona import PersonaModulator
    from emochat.runtime.restore import saved_intensity

    assert saved_intensity({"intensity": 2.5}, 1.0) == 2.5
    for broken in ({"intensity": 9}, {"intensity": "high"}, {"intensity": True}, {}):
        assert saved_intensity(broken, 1.0) == 1.0

    class Steering(PersonaModulator):
        intensity = 1.0

        def set_intensity(self, intensity: float) -> bool:
            self.intensity = intensity
            return True

    steering = Steering()
    both = CombinedModulator([steering, PersonaModulator()])
    assert set_intensity(both, 2.5) and steering.intensity == 2.5
    assert not set_intensity(PersonaModulator(), 2.5)  # nothing there steers
    with pytest.raises(EmochatError, match="between 0 and 3"):
        set_intensity(both, 4)
