"""Do long conversations, and many of them, stay fast? Times (1) opening a saved N-turn
conversation in the app until its last exchange is on screen, (2) building the prompt for a
reply after N turns with the default model's tokenizer (llama.cpp's, from the bundled GGUF),
and (3) listing and searching N saved 10-turn conversations (what the chat list does).

    python benchmarks/long_chat.py [--turns 1000] [--prompt-turns 1200] [--chats 1000]

Targets (issue 10): resuming 1,000 turns shows the end in <= 2 s; the prompt for 1,200 turns
costs linear work (it took 112 s when every dropped turn re-encoded the rest).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from dataclasses import dataclass


@dataclass
class _Info:
    name: str = "benchmark"
    backend: str = "none"
    quant: str = "none"
    device: str = "cpu"


class _NoModel:
    """The app only needs the model's name to show a saved chat."""

    info = _Info()

    def reply(self, messages, emotion, settings):  # pragma: no cover - never asked
        raise RuntimeError("no replies in this benchmark")


def _write_chat(turns: int):
    from emochat.state import EmotionState
    from emochat.transcripts import TranscriptWriter

    state = EmotionState().to_dict()
    writer = TranscriptWriter.create({"model": "benchmark"})
    for turn in range(turns):
        writer.write(
            {"type": "user", "text": f"Question {turn}: how was your day?", "state": state}
        )
        writer.write(
            {
                "type": "assistant",
                "text": f"Answer {turn}: it was **fine**, thank you.\n\n- a list\n- of things",
                "cancelled": False,
            }
        )
    writer.close()
    return writer.path


async def _time_resume(path) -> float:
    from emochat.chats import Chats
    from emochat.session import ChatSession
    from emochat.transcripts import TranscriptWriter, read_transcript
    from emochat.tui.app import EmochatApp
    from emochat.tui.widgets import ExchangeView

    started = time.perf_counter()
    conversation = read_transcript(path)

    def connect(progress):
        def make_session(saved):
            transcript = TranscriptWriter.resume(saved)
            state = ChatSession.restore_state(saved)
            return ChatSession(_NoModel(), None, state, transcript, None, progress)

        return Chats(make_session, make_session(conversation))

    app = EmochatApp(connect)
    async with app.run_test(size=(140, 42)) as pilot:
        last = f"Question {conversation.turns() - 1}:"
        while app.is_running:
            await pilot.pause(0.01)
            if app.chats is None and "not loaded" in str(app.query_one("#status").render()):
                raise RuntimeError(str(app.query_one("#status").render()))
            views = app.query(ExchangeView)
            if views and views.last().exchange.prompt.startswith(last):
                seconds = time.perf_counter() - started
                assert app.chats is not None
                app.chats.current.close()  # frees the file for the next run
                return seconds
    raise RuntimeError("the app closed before showing the chat")


def _time_prompt(turns: int) -> tuple[float, int]:
    from llama_cpp import Llama

    from emochat.engine.backends.llamacpp_backend import GGUFTokenizer
    from emochat.engine.loading import resolve_source
    from emochat.engine.prompt import build_prompt_ids

    source = resolve_source("default")
    llama = Llama(model_path=source.location, n_ctx=512, vocab_only=True, verbose=False)
    tokenizer = GGUFTokenizer(llama)
    messages = []
    for turn in range(turns):
        messages.append({"role": "user", "content": f"Question {turn}: how was your day today?"})
        messages.append({"role": "assistant", "content": f"Answer {turn}: fine, thank you."})
    messages.append({"role": "user", "content": "And now?"})
    started = time.perf_counter()
    ids = build_prompt_ids(tokenizer, messages, budget=4096 - 1024)
    return time.perf_counter() - started, len(ids)


def _time_listing(chats: int) -> tuple[float, float]:
    from emochat.chats import list_chats

    for _ in range(chats):
        _write_chat(10)
    started = time.perf_counter()
    listed = list_chats()
    listing = time.perf_counter() - started
    started = time.perf_counter()
    found = list_chats("question 9:")
    searching = time.perf_counter() - started
    assert len(listed) >= chats and len(found) >= chats
    return listing, searching


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--prompt-turns", type=int, default=1200)
    parser.add_argument("--chats", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.environ["EMOCHAT_HOME"] = tempfile.mkdtemp(prefix="emochat-bench-")
    path = _write_chat(args.turns)
    resumes = [asyncio.run(_time_resume(path)) for _ in range(args.runs)]
    print(
        f"resume {args.turns} turns, end on screen: median {statistics.median(resumes):.2f} s "
        f"(runs: {', '.join(f'{t:.2f}' for t in resumes)})"
    )
    seconds, tokens = _time_prompt(args.prompt_turns)
    print(
        f"prompt for a reply after {args.prompt_turns} turns: {seconds * 1000:.0f} ms "
        f"({tokens} tokens kept)"
    )
    listing, searching = _time_listing(args.chats)
    print(
        f"{args.chats} saved chats of 10 turns: listed in {listing * 1000:.0f} ms, "
        f"searched in {searching * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
