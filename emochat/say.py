"""``emochat say``: answer prompts non-interactively, for scripts and quick tries."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from emochat.emotion import EmotionVector
from emochat.engine.backends import Backend
from emochat.engine.generation import Reply, SamplingSettings
from emochat.errors import EmochatError
from emochat.options import emotion_from_args, open_engine, sampling_from_args, warn
from emochat.session import assistant_event, conversation_header, safe_write, start_transcript
from emochat.state import EmotionState
from emochat.transcripts import TranscriptWriter


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


def open_transcript(
    args: argparse.Namespace, engine: Backend, emotion: EmotionVector, settings: SamplingSettings
) -> TranscriptWriter:
    # say has no detector: the vector is what --emotion says, for every prompt.
    state = EmotionState(vector=emotion, policy="locked")
    header = conversation_header(
        engine.info,
        modulation=engine.modulator.name,
        intensity=args.intensity,
        detector=None,
        state=state,
        settings=settings,
        source="say",
    )
    path = None if args.transcript == "auto" else Path(args.transcript).expanduser()
    return start_transcript(header, warn, path=path, save=not args.no_save)


def _consume(reply: Reply, echo: bool) -> None:
    """Stream the reply; on Ctrl+C stop the model, finish the reply, and re-raise."""
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
    transcript = open_transcript(args, engine, emotion, settings)
    echo = sys.stdout.isatty() and not args.json
    try:
        for prompt in prompts:
            safe_write(transcript, {"type": "user", "text": prompt}, warn)
            reply = engine.reply([{"role": "user", "content": prompt}], emotion, settings)
            try:
                _consume(reply, echo)
            finally:  # finished, or stopped by Ctrl+C: the reply is recorded either way
                safe_write(transcript, assistant_event(reply, emotion), warn)
            _print_result(args, prompt, reply, emotion, engine, echo)
    finally:
        transcript.close()
    return 0


def _print_result(
    args: argparse.Namespace,
    prompt: str,
    reply: Reply,
    emotion: EmotionVector,
    engine: Backend,
    echo: bool,
) -> None:
    if args.json:
        record = {
            "prompt": prompt,
            "reply": reply.text,
            "emotion": emotion.to_list(),
            "model": engine.info.name,
            "backend": engine.info.backend,
            "quantization": engine.info.quant,
            "new_tokens": reply.stats.new_tokens,
            "tokens_per_second": round(reply.stats.tokens_per_second, 2),
        }
        print(json.dumps(record, ensure_ascii=False), flush=True)
    elif not echo:
        print(reply.text, flush=True)
