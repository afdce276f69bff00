"""``emochat say``: answer prompts non-interactively, for scripts and quick tries."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from emochat.engine.generation import Reply
from emochat.errors import EmochatError
from emochat.options import emotion_from_args, open_engine, sampling_from_args


def read_prompts(args: argparse.Namespace) -> list[str]:
    if args.file and args.prompt:
        raise EmochatError("give either a PROMPT or --file, not both")
    if args.file:
        try:
            text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
        except OSError as error:
            raise EmochatError(f"cannot read {args.file}: {error.strerror or error}") from error
        prompts = [line.strip() for line in text.splitlines() if line.strip()]
        if not prompts:
            raise EmochatError(f"{args.file} holds no prompts")
        return prompts
    if not args.prompt or not args.prompt.strip():
        raise EmochatError("say needs a PROMPT or --file")
    return [args.prompt]


def _consume(reply: Reply, echo: bool) -> None:
    try:
        for piece in reply:
            if echo:
                sys.stdout.write(piece)
                sys.stdout.flush()
    except KeyboardInterrupt:
        reply.cancel()
        reply.finish()
        raise
    if echo:
        sys.stdout.write("\n")


def run_say(args: argparse.Namespace) -> int:
    prompts = read_prompts(args)
    emotion = emotion_from_args(args)
    settings = sampling_from_args(args)
    engine = open_engine(args)
    echo = sys.stdout.isatty() and not args.json
    for prompt in prompts:
        reply = engine.reply([{"role": "user", "content": prompt}], emotion, settings)
        _consume(reply, echo)
        if args.json:
            record = {
                "prompt": prompt,
                "reply": reply.text,
                "emotion": emotion.to_list(),
                "model": engine.info.name,
                "new_tokens": reply.stats.new_tokens,
                "tokens_per_second": round(reply.stats.tokens_per_second, 2),
            }
            print(json.dumps(record, ensure_ascii=False), flush=True)
        elif not echo:
            print(reply.text, flush=True)
    return 0
