"""Ids that become file names, text that reaches a terminal, what delete may touch, and who may
read what emochat keeps."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from emochat.last_mood import save_last_state
from emochat.paths import data_dir
from emochat.state import EmotionState
from emochat.transcripts import TranscriptWriter, read_transcript, transcripts_dir
from tests.hardening.conftest import one_line

HOSTILE_IDS = ["../../escaped", "/tmp/x/deep/pwned", "a\x00b", "..", "x" * 300, "", 7, None]


def export_file(tmp_path: Path, id_value: object, text: str = "hello") -> Path:
    document = {
        "format": 1,
        "header": {"id": id_value, "model": "m"},
        "events": [{"type": "user", "text": text}, {"type": "assistant", "text": "hi"}],
    }
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize("hostile", HOSTILE_IDS, ids=repr)
def test_an_imported_id_never_becomes_a_path(run, tmp_path, hostile) -> None:
    source = export_file(tmp_path, hostile)
    before = source.read_bytes()
    code, out, err = run("transcripts", "import", str(source))
    assert code == 0 and "Traceback" not in err
    new_id = out.strip().removeprefix("Imported as ")
    files = list(transcripts_dir().iterdir())
    assert [path.name for path in files] == [f"{new_id}.jsonl"]
    assert read_transcript(files[0]).messages()[0]["content"] == "hello"
    assert source.read_bytes() == before


def test_an_imported_id_that_is_taken_gets_a_new_one(run, tmp_path) -> None:
    source = export_file(tmp_path, "20260101-000000-beef")
    run("transcripts", "import", str(source))
    code, out, _ = run("transcripts", "import", str(source))
    assert code == 0 and "20260101-000000-beef" not in out
    assert len(list(transcripts_dir().iterdir())) == 2


CONTROL = "title\x1b]0;pwned\x07 and clipboard \x1b]52;c;cHduZWQ=\x07 and CSI \x9b2J end"


def test_stored_text_is_printed_inert_and_kept_intact(run, tmp_path) -> None:
    source = export_file(tmp_path, "20260101-000000-ca11", text=CONTROL)
    run("transcripts", "import", str(source))
    for args in (
        ("transcripts", "list"),
        ("transcripts", "search", "clipboard"),
        ("transcripts", "show", "20260101-000000-ca11"),
        ("transcripts", "export", "20260101-000000-ca11"),
    ):
        code, out, _ = run(*args)
        assert code == 0
        assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out, args
        assert "␛]0;pwned␇" in out, args
    code, out, _ = run("transcripts", "export", "20260101-000000-ca11", "--format", "json")
    assert json.loads(out)["events"][0]["text"] == CONTROL  # JSON keeps the text exact
    stored = read_transcript(transcripts_dir() / "20260101-000000-ca11.jsonl")
    assert stored.events[0]["text"] == CONTROL


def test_delete_takes_only_a_whole_id_in_the_data_folder(run, tmp_path) -> None:
    outsider = tmp_path / "not-a-transcript.jsonl"
    outsider.write_text('{"type": "header"}\n')
    writer = TranscriptWriter.create({"model": "m", "id": "20260101-000000-aaaa"})
    writer.write({"type": "user", "text": "keep me"})
    writer.close()
    for key, expected in (
        (str(outsider), "is not a conversation id"),
        ("../not-a-transcript", "is not a conversation id"),
        ("2026", "no conversation '2026' to delete (give its whole id); did you mean: 2026"),
    ):
        code, _, err = run("transcripts", "delete", key)
        assert code == 2
        assert expected in one_line(err), key
    assert outsider.exists() and writer.path.exists()
    assert run("transcripts", "delete", "20260101-000000-aaaa")[0] == 0
    assert not writer.path.exists()


def test_delete_refuses_a_conversation_a_session_is_writing(run) -> None:
    writer = TranscriptWriter.create({"model": "m", "id": "20260101-000000-0be1"})
    writer.write({"type": "user", "text": "still talking"})
    code, _, err = run("transcripts", "delete", "20260101-000000-0be1")
    assert code == 2
    assert one_line(err) == "emochat: 20260101-000000-0be1 is open in another emochat session"
    writer.write({"type": "assistant", "text": "and still saved"})
    writer.close()
    assert read_transcript(writer.path).turns() == 1


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_everything_the_user_said_is_private(run, tmp_path) -> None:
    writer = TranscriptWriter.create({"model": "m", "id": "20260101-000000-5ec7"})
    writer.write({"type": "user", "text": "secret"})
    writer.close()
    save_last_state(EmotionState())
    from emochat.paths import write_private

    export = data_dir() / "exports" / "20260101-000000-5ec7.md"
    write_private(export, "secret")
    for folder in (data_dir(), transcripts_dir(), export.parent):
        assert _mode(folder) == 0o700, folder
    for path in (writer.path, data_dir() / "last_state.json", export):
        assert _mode(path) == 0o600, path


def test_resuming_a_conversation_another_emochat_has_open_is_refused_before_loading(run) -> None:
    writer = TranscriptWriter.create({"model": "m", "id": "20260101-000000-b051"})
    writer.write({"type": "user", "text": "mine"})
    code, _, err = run("chat", "--resume", "20260101-000000-b051")
    writer.close()
    assert code == 2
    assert one_line(err) == "emochat: 20260101-000000-b051 is open in another emochat session"


def test_a_link_in_the_transcripts_folder_is_not_a_conversation(run, tmp_path) -> None:
    elsewhere = tmp_path / "elsewhere.jsonl"
    elsewhere.write_text('{"type": "header", "id": "x"}\n')
    transcripts_dir().mkdir(parents=True)
    (transcripts_dir() / "20260101-000000-1111.jsonl").symlink_to(elsewhere)
    code, out, _ = run("transcripts", "list")
    assert code == 0 and out.strip() == "No saved conversations yet."
    code, _, err = run("transcripts", "delete", "20260101-000000-1111")
    assert code == 2 and elsewhere.exists()
    assert "no conversation '20260101-000000-1111' to delete" in one_line(err)
