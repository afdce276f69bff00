"""``emochat transcripts list|show|export|delete|import``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from emochat.chats import clip, list_chats
from emochat.cli.output import warn
from emochat.errors import EmochatError
from emochat.export import to_markdown
from emochat.terminal import inert
from emochat.textfiles import read_text
from emochat.transcripts import (
    delete_transcript,
    find_transcript,
    import_document,
    read_transcript,
)


def render_list(query: str = "") -> str:
    """The saved chats as a table (those mentioning ``query``, with where, when it is given)."""
    summaries = list_chats(query, warn)
    if not summaries:
        return f"No conversation mentions {query!r}." if query else "No saved conversations yet."
    titles = ("ID", "CHANGED", "MODEL", "TURNS", "TITLE", "FINAL MOOD")
    rows = [(s.id, s.updated, s.model, str(s.turns), clip(s.title, 40), s.mood) for s in summaries]
    widths = [max(len(titles[i]), *(len(row[i]) for row in rows)) for i in range(len(titles))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))

    lines = [line(titles).rstrip()]
    for row, summary in zip(rows, summaries, strict=True):
        lines.append(line(row).rstrip())
        if query:  # where it matched, under its row
            lines.append(f"    … {summary.snippet}")
    return inert("\n".join(lines))


def _write_output(text: str, out: str | None) -> None:
    if not out:
        sys.stdout.write(text)
        return
    try:
        Path(out).expanduser().write_text(text, encoding="utf-8")
    except OSError as error:
        raise EmochatError(f"cannot write {out}: {error.strerror or error}") from error
    print(f"Wrote {out}", file=sys.stderr)


def run_transcripts(args: argparse.Namespace) -> int:
    action = args.transcripts_command
    if action in ("list", "search"):
        print(render_list(args.text if action == "search" else ""))
        return 0
    if action == "import":
        try:
            document = json.loads(read_text(args.file))
        except ValueError as error:
            raise EmochatError(f"{args.file} is not valid JSON: {error}") from error
        path = import_document(document, warn)
        print(f"Imported as {path.stem}")
        return 0
    if action == "delete":
        print(f"Deleted {delete_transcript(args.id).stem}")
        return 0
    path = find_transcript(args.id)
    conversation = read_transcript(path, warn)
    if action == "show":
        _write_output(to_markdown(conversation), None)
    elif args.format == "json":
        _write_output(
            json.dumps(conversation.to_document(), indent=2, ensure_ascii=False) + "\n", args.out
        )
    else:
        _write_output(to_markdown(conversation), args.out)
    return 0
