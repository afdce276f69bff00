"""The ``emochat`` command line. Only argparse and the standard library load here, so
``emochat --help`` answers at once; each command imports what it needs when it runs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from emochat import __version__
from emochat.errors import EmochatError

COMMANDS = ("chat", "say", "vectors")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def model_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("model")
    group.add_argument(
        "--model",
        default="default",
        help="hub id, local folder or .gguf file (default: the bundled SmolLM2-135M-Instruct)",
    )
    group.add_argument(
        "--quant",
        choices=("auto", "4bit", "8bit", "none"),
        default="auto",
        help="bitsandbytes quantization; auto = 4bit (NF4) on CUDA, none on CPU",
    )
    group.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    group.add_argument(
        "--dtype",
        choices=("auto", "float32", "bfloat16", "float16"),
        default="auto",
        help="compute dtype; auto = float32 on CPU, bfloat16 on GPU (float16 without bf16)",
    )
    group.add_argument(
        "--threads", type=_positive_int, help="CPU threads for torch (default: half the CPUs)"
    )
    return parent


def generation_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("generation")
    group.add_argument(
        "--emotion", help="e.g. 'joy=0.8,fear=0.5', a preset like 'calm', or 8 numbers"
    )
    group.add_argument(
        "--modulation",
        choices=("steer", "prompt", "both", "off"),
        default="steer",
        help="how the emotion reaches the model: activation steering (default), a persona "
        "system prompt, both, or off",
    )
    group.add_argument(
        "--intensity",
        type=float,
        default=1.0,
        help="steering strength, relative to the model's residual stream (0-3, default 1)",
    )
    group.add_argument(
        "--no-build-vectors",
        dest="build_vectors",
        action="store_false",
        help="never build steering vectors for a model that has none (use the persona prompt)",
    )
    group.add_argument("--temperature", type=float, default=0.7, help="0 = greedy (default 0.7)")
    group.add_argument("--top-p", type=float, default=0.9)
    group.add_argument("--top-k", type=int, default=50)
    group.add_argument("--max-new-tokens", type=_positive_int, default=256)
    group.add_argument("--repetition-penalty", type=float, default=1.1)
    group.add_argument("--seed", type=int, help="make sampling repeatable")
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emochat",
        description="Chat with a local language model whose emotions you can see and steer. "
        "With no command, opens the chat app.",
    )
    parser.add_argument("--version", action="version", version=f"emochat {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    shared = [model_options(), generation_options()]

    chat = commands.add_parser("chat", parents=shared, help="open the chat app (the default)")
    chat.set_defaults(handler=_run_chat)

    say = commands.add_parser(
        "say", parents=shared, help="answer one prompt (or a file of prompts) and exit"
    )
    say.add_argument("prompt", nargs="?", help="the message to answer")
    say.add_argument("--file", help="answer each line of this file independently ('-' = stdin)")
    say.add_argument("--json", action="store_true", help="print one JSON object per reply")
    say.set_defaults(handler=_run_say)

    vectors = commands.add_parser("vectors", help="build or export emotion steering vectors")
    vector_commands = vectors.add_subparsers(
        dest="vectors_command", metavar="ACTION", required=True
    )
    build = vector_commands.add_parser(
        "build", parents=[model_options()], help="derive steering vectors for a model"
    )
    build.add_argument("--out", help="folder to write (default: emochat's cache for this model)")
    build.set_defaults(handler=_run_vectors_build)
    export = vector_commands.add_parser(
        "export",
        parents=[model_options()],
        help="write llama.cpp control-vector GGUF files (one per axis, or one for --emotion)",
    )
    export.add_argument("--out", default="control-vectors", help="folder, or a .gguf file")
    export.add_argument("--emotion", help="export this mix as one file instead")
    export.add_argument("--intensity", type=float, default=1.0)
    export.add_argument("--no-build-vectors", dest="build_vectors", action="store_false")
    export.set_defaults(handler=_run_vectors_export)
    return parser


def _run_chat(args: argparse.Namespace) -> int:
    print(
        'The chat app is not built yet; use `emochat say "..."` to talk to the model.',
        file=sys.stderr,
    )
    return 0


def _run_say(args: argparse.Namespace) -> int:
    from emochat.say import run_say

    return run_say(args)


def _run_vectors_build(args: argparse.Namespace) -> int:
    from emochat.vectors_cli import run_build

    return run_build(args)


def _run_vectors_export(args: argparse.Namespace) -> int:
    from emochat.vectors_cli import run_export

    return run_export(args)


def _with_default_command(argv: list[str]) -> list[str]:
    """``emochat`` and ``emochat --model X`` mean ``emochat chat …``."""
    if not argv:
        return ["chat"]
    first = argv[0]
    if first in COMMANDS or first in ("-h", "--help", "--version"):
        return argv
    return ["chat", *argv]


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _with_default_command(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(arguments)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except EmochatError as error:
        print(f"emochat: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("emochat: interrupted", file=sys.stderr)
        return 130
