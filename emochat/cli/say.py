"""``emochat say``: answer prompts non-interactively, for scripts and quick tries."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from emochat.cli.output import progress_printer, warn
from emochat.cli.settings import say_config
from emochat.emotion import EmotionVector
from emochat.errors import EmochatError
from emochat.session import ChatSession, TurnResult
from emochat.terminal import inert
from emochat.textfiles import read_stdin, read_text


def read_prompts(args: argparse.Namespace) -> list[str]:
    if args.file and args.prompt:
        raise EmochatError("give either a PROMPT or --file, not both")
    if args.file:
        text = read_stdin() if args.file == "-" else read_text(args.file)
        prompts = [line.strip() for line in text.splitlines() if line.strip()]
        if not prompts:
            raise EmochatError(f"{args.file} holds no prompts")
        return prompts
    if not args.prompt or not args.prompt.strip():
        raise EmochatError("say needs a PROMPT or --file")
    return [args.prompt]


def run_say(args: argparse.Namespace) -> int:
    from emochat.runtime import Runtime

    prompts = read_prompts(args)
    runtime = Runtime(say_config(args), progress_printer, warn)
    target = None if args.transcript == "auto" else Path(args.transcript).expanduser()
    if target is not None and not args.no_save and target.exists():
        raise EmochatError(f"a transcript already exists at {target}")  # before loading
    session = runtime.say_session(target, save=not args.no_save)
    emotion = session.emotion
    echo = sys.stdout.isatty() and not args.json

    def write(piece: str) -> None:
        if echo:
            sys.stdout.write(inert(piece))
            sys.stdout.flush()

    try:
        for prompt in prompts:
            # Ctrl+C stops the model; the session records the stopped reply, then it goes on up
            result = session.ask(prompt, on_piece=write)
            if echo:
                sys.stdout.write("\n")
            _print_result(args, prompt, result, emotion, session, echo)
            if result.broken:  # the reply is kept, as stopped; the rest is not asked
                raise EmochatError(f"{result.broken}; the reply is kept as stopped")
    finally:
        session.close()
    return 0


def _print_result(
    args: argparse.Namespace,
    prompt: str,
    result: TurnResult,
    emotion: EmotionVector,
    session: ChatSession,
    echo: bool,
) -> None:
    if args.json:
        record = {
            "prompt": prompt,
            "reply": result.exchange.reply,
            "emotion": emotion.to_list(),
            "model": session.model.name,
            "backend": session.model.backend,
            "quantization": session.model.quant,
            "new_tokens": result.new_tokens,
            "tokens_per_second": round(result.tokens_per_second, 2),
            "truncated": result.exchange.truncated,
        }
        record["expressed"] = result.exchange.expressed  # None with --no-read-back
        if session.model.backend == "openai":
            record["server"] = session.model.source  # the base URL, without credentials
        print(json.dumps(record, ensure_ascii=False), flush=True)
    elif not echo:
        print(inert(result.exchange.reply), flush=True)
