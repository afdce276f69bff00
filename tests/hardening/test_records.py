"""No record loses the others: readers check every record's types, a torn end is repaired
before anything is appended, and import syncs once per file."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emochat.errors import EmochatError
from emochat.records import record_problem
from emochat.transcripts import (
    TranscriptWriter,
    read_transcript,
    transcripts_dir,
)
from tests.hardening.conftest import one_line

GOOD_STATE = {"vector": [0.1] * 8, "policy": "mirror"}
GOOD_EVENTS = [
    {"type": "user", "text": "hello", "state": GOOD_STATE},
    {"type": "assistant", "text": "hi there", "emotion": [0] * 8, "new_tokens": 2},
    {"type": "emotion", "emotion": [0.5] + [0] * 7, "source": "preset joy"},
    {"type": "retract", "what": "reply"},
    {"type": "title", "title": "Greetings"},
]
WRONG_SHAPES = [
    {"type": "user", "text": "x", "reading": "x"},
    {"type": "user", "text": "x", "state": [1, 2]},
    {"type": "user", "text": 5},
    {"type": "assistant", "text": "x", "emotion": ["a"] * 8},
    {"type": "assistant", "text": "x", "new_tokens": "many"},
    {"type": "emotion", "emotion": [0.1] * 7},
    {"type": "emotion", "emotion": [float("nan")] * 8},
    {"type": "retract", "what": "everything"},
    {"type": "title", "title": None},
    {"type": 3},
    {"no": "type"},
]


def write_lines(path: Path, records: list[object]) -> bytes:
    header = {"type": "header", "format": 1, "id": path.stem, "model": "m"}
    data = "".join(json.dumps(r) + "\n" for r in [header, *records]).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def test_every_wrong_shape_is_refused_and_every_good_record_kept() -> None:
    assert all(record_problem(event) is None for event in GOOD_EVENTS)
    assert all(record_problem(event) is not None for event in WRONG_SHAPES)


def test_a_bad_record_is_skipped_with_file_and_line_and_listing_goes_on(run) -> None:
    path = transcripts_dir() / "20260101-000000-bad1.jsonl"
    write_lines(path, [GOOD_EVENTS[0], WRONG_SHAPES[0], GOOD_EVENTS[1]])
    other = transcripts_dir() / "20260101-000000-good.jsonl"
    write_lines(other, GOOD_EVENTS[:2])
    code, out, _ = run("transcripts", "list")
    assert code == 0
    assert "20260101-000000-bad1" in out and "20260101-000000-good" in out
    warnings: list[str] = []
    conversation = read_transcript(path, warnings.append)
    assert warnings == [
        f"{path}: line 3 holds a user record with a malformed reading and was skipped"
    ]
    assert [e["text"] for e in conversation.events] == ["hello", "hi there"]
    code, out, err = run("transcripts", "show", "20260101-000000-bad1")
    assert code == 0 and "hi there" in out and "line 3" in err


def test_import_skips_wrong_shapes_and_syncs_once(run, tmp_path, monkeypatch) -> None:
    events = [GOOD_EVENTS[0], GOOD_EVENTS[1]] * 500 + WRONG_SHAPES
    source = tmp_path / "big.json"
    source.write_text(json.dumps({"header": {"model": "m"}, "events": events}))
    syncs: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (syncs.append(fd), real_fsync(fd)))
    code, _, err = run("transcripts", "import", str(source))
    assert code == 0
    assert len(syncs) <= 2  # the header as the file is made, then everything at close
    assert err.count("was skipped") == len(WRONG_SHAPES)
    imported = read_transcript(next(transcripts_dir().glob("*.jsonl")))
    assert len(imported.events) == 1000


def test_what_is_appended_after_a_crash_mid_line_is_intact() -> None:
    writer = TranscriptWriter.create({"model": "m"})
    writer.write({"type": "user", "text": "before the crash"})
    writer.close()
    with writer.path.open("a") as handle:  # a crash in the middle of writing a line
        handle.write('{"type": "assistant", "text": "torn')
    resumed = TranscriptWriter.resume(read_transcript(writer.path))
    resumed.write({"type": "assistant", "text": "after the crash"})
    resumed.close()
    warnings: list[str] = []
    events = read_transcript(writer.path, warnings.append).events
    assert [e["text"] for e in events] == ["before the crash", "after the crash"]
    assert len(warnings) == 1 and "line 3 is damaged" in warnings[0]


def test_a_transcript_without_a_header_is_one_clear_line(run) -> None:
    path = transcripts_dir() / "20260101-000000-0000.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text('{"type": "user", "text": "no header"}\n')
    code, _, err = run("transcripts", "show", "20260101-000000-0000")
    assert code == 2
    assert one_line(err) == f"emochat: {path} is not an emochat transcript (no header line)"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)
shaped = st.fixed_dictionaries(
    {"type": st.sampled_from(["user", "assistant", "emotion", "retract", "title", "other"])},
    optional={
        key: json_values
        for key in ("text", "state", "reading", "emotion", "what", "title", "new_tokens")
    },
)
PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _read_never_raises_but_clearly(path: Path):
    try:
        return read_transcript(path)
    except EmochatError as error:  # no header: the one error a reader may give
        assert "no header line" in str(error)
        return None


@PROPERTY
@given(st.binary(max_size=300))
def test_random_bytes_never_break_the_reader(tmp_path_factory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("bytes") / "x.jsonl"
    path.write_bytes(data)
    _read_never_raises_but_clearly(path)


@PROPERTY
@given(st.lists(json_values | shaped, max_size=8))
def test_wrong_shapes_never_break_reading_and_good_records_survive(
    tmp_path_factory, records: list[object]
) -> None:
    path = tmp_path_factory.mktemp("shapes") / "x.jsonl"
    write_lines(path, [*records, *GOOD_EVENTS])
    conversation = read_transcript(path)
    kept = [r for r in records if record_problem(r) is None]
    # compared as JSON: a NaN that a record of a type this version ignores carries is kept,
    # and NaN equals nothing, itself included
    expected = json.dumps([*kept, *GOOD_EVENTS], sort_keys=True)
    assert json.dumps(conversation.events, sort_keys=True) == expected
    # and everything built on the events holds up
    conversation.exchanges(), conversation.messages(), conversation.title
    conversation.final_emotion(), conversation.turns()


def test_a_truncation_at_every_offset_keeps_every_whole_record(tmp_path) -> None:
    path = tmp_path / "x.jsonl"
    data = write_lines(path, GOOD_EVENTS)
    line_ends = [index + 1 for index, byte in enumerate(data) if byte == ord("\n")]
    for offset in range(len(data) + 1):
        path.write_bytes(data[:offset])
        conversation = _read_never_raises_but_clearly(path)
        whole = sum(1 for end in line_ends if end <= offset)
        if whole == 0:
            continue  # the header itself is cut (or, when it parses, stands alone)
        assert conversation is not None
        assert conversation.events[: whole - 1] == GOOD_EVENTS[: whole - 1]
        assert len(conversation.events) in (whole - 1, whole)  # a cut line may still parse
