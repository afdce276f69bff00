"""The parser: every command and flag, with its help, and config.toml's ``[defaults]`` checked
as the flags they stand for. The lists of choices come from what they choose."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from typing import Any

from emochat import __version__
from emochat.detect import DETECTOR_CHOICES
from emochat.engine.backends import BACKEND_CHOICES
from emochat.engine.generation import SamplingSettings
from emochat.engine.loading import DTYPE_CHOICES, MODEL_HELP, QUANT_CHOICES
from emochat.engine.modulation import MODULATION_CHOICES
from emochat.engine.modulation.projection import PROJECTION_LAYOUTS
from emochat.errors import EmochatError
from emochat.runtime.config import DEVICE_CHOICES_TEXT, SERVER_STEERING_CHOICES
from emochat.state import POLICIES

SAMPLING = SamplingSettings()  # emochat's own defaults, for the help
COMMANDS = (
    "chat",
    "say",
    "detect",
    "vectors",
    "models",
    "transcripts",
    "train",
    "train-data",
    "train-detector",
)


def _lazy(target: str) -> Callable[[argparse.Namespace], int]:
    """A command handler imported only when its command runs ("module:function")."""

    def run(args: argparse.Namespace) -> int:
        module, _, function = target.partition(":")
        handler: Callable[[argparse.Namespace], int] = getattr(
            importlib.import_module(module), function
        )
        return handler(args)

    return run


def _positive(kind: type[int] | type[float], noun: str, least: str) -> Callable[[str], Any]:
    """An argparse type: ``kind`` read from the text, refused below the bound ``least`` says."""

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be {least}")
        return value

    return convert


_positive_int = _positive(int, "a whole number", "at least 1")
_positive_float = _positive(float, "a number", "above 0")


def _token_limit(text: str) -> int | str:
    return "auto" if text == "auto" else _positive_int(text)


def model_options(backend: bool = False) -> argparse.ArgumentParser:
    """The model flags; ``backend`` adds --backend, for the commands that generate or probe."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("model")
    group.add_argument(
        "--model",
        default="default",
        help=f"{MODEL_HELP}; `emochat models` lists those found here "
        "(default: the bundled SmolLM2-135M-Instruct)",
    )
    if backend:
        group.add_argument(
            "--backend",
            choices=BACKEND_CHOICES,
            default="auto",
            help="what runs the model; auto = openai where a server is named (--base-url, "
            "--server), llama.cpp for a .gguf when llama-cpp-python is installed, else "
            "transformers (default: %(default)s)",
        )
    group.add_argument(
        "--quant",
        choices=QUANT_CHOICES,
        default="auto",
        help="transformers quantization; auto = 4bit: NF4 (bitsandbytes) on CUDA, int4 "
        "(torchao) on CPU. llama.cpp runs the GGUF's own (default: %(default)s)",
    )
    group.add_argument(
        "--device", default="auto", help=f"{DEVICE_CHOICES_TEXT} (default: %(default)s)"
    )
    group.add_argument(
        "--dtype",
        choices=DTYPE_CHOICES,
        default="auto",
        help="transformers compute dtype; auto = bfloat16 on GPU, for int4, and on CPUs with "
        "bfloat16 instructions, else float32",
    )
    group.add_argument("--threads", type=_positive_int, help="CPU threads (default: half the CPUs)")
    if backend:
        server_options(parent)
    else:  # the commands without the flag take the best backend, as ``auto`` does
        parent.set_defaults(backend="auto", base_url=None, server=None)
    return parent


def server_options(parent: argparse.ArgumentParser) -> None:
    group = parent.add_argument_group(
        "server", "a model on an OpenAI-compatible server (the API key: EMOCHAT_API_KEY)"
    )
    group.add_argument(
        "--base-url",
        metavar="URL",
        help="e.g. http://127.0.0.1:11434/v1 (implies --backend openai)",
    )
    group.add_argument(
        "--server",
        metavar="NAME",
        help="a [servers.NAME] profile of config.toml (base_url, "
        "model, api_key_env, timeout, context, steering, steering_vectors)",
    )
    group.add_argument(
        "--timeout", type=_positive_float, help="seconds to wait for the server (default: 60)"
    )
    group.add_argument(
        "--steering",
        choices=SERVER_STEERING_CHOICES,
        help="how the server steers per request: easysteer sends the mood's vectors with each "
        "request (default: none, the persona prompt)",
    )
    group.add_argument(
        "--steering-vectors",
        metavar="DIR",
        help="the folder on the server holding `emochat vectors export` files",
    )


def generation_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("generation")
    group.add_argument(
        "--emotion", help="e.g. 'joy=0.8,fear=0.5', a preset like 'calm', or 8 numbers"
    )
    group.add_argument(
        "--modulation",
        choices=MODULATION_CHOICES,
        default="auto",
        help="how the emotion reaches the model: activation steering, the checkpoint's own "
        "embedding projection (Emotional-Gemma), a persona system prompt, steering and persona "
        "both, or off; auto = embed where the checkpoint has one, else steer "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--intensity",
        type=float,
        default=1.0,
        help="steering strength, relative to the model's residual stream, 0-3 "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--no-steering-loop",
        dest="steering_loop",
        action="store_false",
        help="do not read a reply's first sentence back to steer the rest harder where the mood "
        "fell short",
    )
    group.add_argument(
        "--no-build-vectors",
        dest="build_vectors",
        action="store_false",
        help="never build steering vectors for a model that has none (use the persona prompt)",
    )
    group.add_argument(
        "--system", metavar="TEXT", help="a system prompt, kept with the conversation"
    )
    group.add_argument(
        "--temperature",
        type=float,
        help=f"0 = greedy (default: the model's own, as Ollama keeps it, "
        f"else {SAMPLING.temperature})",
    )
    group.add_argument("--top-p", type=float, help=f"(default: the model's, else {SAMPLING.top_p})")
    group.add_argument("--top-k", type=int, help=f"(default: the model's, else {SAMPLING.top_k})")
    group.add_argument(
        "--max-new-tokens",
        type=_token_limit,
        default="auto",
        metavar="N|auto",
        help="the longest reply; auto = a quarter of the model's context, 64-1024 (1024 for "
        "the default model). A reply cut by it can be continued (default: %(default)s)",
    )
    group.add_argument(
        "--repetition-penalty",
        type=float,
        help=f"(default: the model's, else {SAMPLING.repetition_penalty})",
    )
    group.add_argument("--seed", type=int, help="make sampling repeatable")
    return parent


def detector_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--detector",
        choices=DETECTOR_CHOICES,
        default="minilm",
        help="how user messages are read: MiniLM fine-tuned on GoEmotions, VADER valence only, "
        "or a probe of the chat model's own hidden states (default: %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emochat",
        description="Chat with a local language model whose emotions you can see and steer. "
        "With no command, opens the chat app.",
    )
    parser.add_argument("--version", action="version", version=f"emochat {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    shared = [model_options(backend=True), generation_options()]

    chat = commands.add_parser("chat", parents=shared, help="open the chat app (the default)")
    chat.add_argument("--resume", metavar="last|ID", help="continue a saved conversation")
    chat.add_argument(
        "--theme", default="emochat-dusk", help="colour theme, Ctrl+T cycles (default: %(default)s)"
    )
    chat.add_argument(
        "--policy",
        choices=POLICIES,
        default="mirror",
        help="how the mood follows your messages: mirror them, soothe distress, or stay put "
        "(default: %(default)s)",
    )
    detector_option(chat)
    chat.set_defaults(handler=_lazy("emochat.cli.chat:run_chat"))

    say = commands.add_parser(
        "say", parents=shared, help="answer one prompt (or a file of prompts) and exit"
    )
    say.add_argument("prompt", nargs="?", help="the message to answer")
    say.add_argument("--file", help="answer each line of this file independently ('-' = stdin)")
    say.add_argument("--json", action="store_true", help="print one JSON object per reply")
    say.add_argument(
        "--transcript",
        default="auto",
        metavar="PATH|auto",
        help="where to save the conversation (default: a new file in the data folder)",
    )
    say.add_argument("--no-save", action="store_true", help="do not save a transcript")
    say.add_argument(
        "--no-read-back",
        action="store_true",
        help="do not read the reply back for the mood it expresses (no detector is loaded)",
    )
    say.set_defaults(handler=_lazy("emochat.cli.say:run_say"))

    detect = commands.add_parser(
        "detect",
        parents=[model_options(backend=True)],
        help="read the emotion of a text (or of stdin lines)",
    )
    detect.add_argument("text", nargs="?", help="the text to read")
    detect.add_argument("--json", action="store_true", help="print one JSON object")
    detect.add_argument(
        "--jsonl", action="store_true", help="read one text per line from stdin, print JSON lines"
    )
    detector_option(detect)
    detect.set_defaults(handler=_lazy("emochat.cli.detect:run_detect"))

    models = commands.add_parser(
        "models",
        help="list the models found here (bundled, Ollama, Hugging Face cache, LM Studio) and "
        "whether their emotion vectors are ready",
    )
    models.add_argument("--json", action="store_true", help="one JSON list, for scripts")
    models.add_argument("--base-url", metavar="URL", help="list what this server offers instead")
    models.add_argument("--server", metavar="NAME", help="list what this profile's server offers")
    models.set_defaults(handler=_lazy("emochat.cli.models:run_models"))
    transcripts = commands.add_parser(
        "transcripts", help="list, search, show, export, delete or import chats"
    )
    actions = transcripts.add_subparsers(
        dest="transcripts_command", metavar="ACTION", required=True
    )
    actions.add_parser("list", help="every saved conversation, most recently changed first")
    search = actions.add_parser("search", help="conversations that mention TEXT (any case)")
    search.add_argument("text", help="words to find in a title or any message")
    show = actions.add_parser("show", help="print a conversation")
    show.add_argument("id", help="conversation id, a unique prefix of one, or 'last'")
    export_chat = actions.add_parser("export", help="export a conversation as Markdown or JSON")
    export_chat.add_argument("id", help="conversation id, a unique prefix of one, or 'last'")
    export_chat.add_argument("--format", choices=("md", "json"), default="md")
    export_chat.add_argument("--out", help="file to write (default: standard output)")
    delete = actions.add_parser("delete", help="delete a conversation")
    delete.add_argument("id", help="conversation id (or a unique prefix)")
    import_chat = actions.add_parser("import", help="read back a JSON export")
    import_chat.add_argument("file")
    transcripts.set_defaults(handler=_lazy("emochat.cli.transcripts:run_transcripts"))

    vectors = commands.add_parser("vectors", help="build or export emotion steering vectors")
    vector_commands = vectors.add_subparsers(
        dest="vectors_command", metavar="ACTION", required=True
    )
    build = vector_commands.add_parser(
        "build",
        parents=[model_options(backend=True)],
        help="derive steering vectors for a model (a GGUF natively, on llama.cpp)",
    )
    build.add_argument("--out", help="folder to write (default: emochat's cache for this model)")
    build.set_defaults(handler=_lazy("emochat.cli.vectors:run_build"))
    export = vector_commands.add_parser(
        "export",
        parents=[model_options(backend=True)],
        help="write llama.cpp control-vector GGUF files (one per axis, or one for --emotion)",
    )
    export.add_argument("--out", default="control-vectors", help="folder, or a .gguf file")
    export.add_argument("--emotion", help="export this mix as one file instead")
    export.add_argument("--intensity", type=float, default=1.0)
    export.add_argument("--no-build-vectors", dest="build_vectors", action="store_false")
    export.set_defaults(handler=_lazy("emochat.cli.vectors:run_export"))
    add_training_commands(commands)
    return parser


def add_training_commands(commands: Any) -> None:
    train = commands.add_parser(
        "train",
        help="teach a model the emotion vector: an embedding projection plus LoRA "
        "(Emotional-Gemma style)",
    )
    train.add_argument("--data", required=True, help="JSONL of {messages|text, vector}")
    train.add_argument("--out", required=True, help="folder for the checkpoint")
    train.add_argument("--base", default="default", help="base model (default: %(default)s)")
    train.add_argument(
        "--layout",
        choices=PROJECTION_LAYOUTS,
        default="linear",
        help="projection: linear 8→h (no bias) or the MLP 8→h/2→h (default: %(default)s)",
    )
    train.add_argument("--epochs", type=_positive_int, default=1, help="(default: %(default)s)")
    train.add_argument("--max-steps", type=_positive_int, help="stop after this many steps")
    train.add_argument("--batch-size", type=_positive_int, default=8, help="(default: %(default)s)")
    train.add_argument(
        "--lr-projection", type=_positive_float, default=1e-3, help="(default: %(default)s)"
    )
    train.add_argument(
        "--lr-lora", type=_positive_float, default=2e-4, help="(default: %(default)s)"
    )
    train.add_argument("--lora-r", type=_positive_int, default=8, help="(default: %(default)s)")
    train.add_argument(
        "--max-length",
        type=_positive_int,
        default=128,
        help="tokens per example (default: %(default)s)",
    )
    train.add_argument(
        "--save-every",
        type=_positive_int,
        default=100,
        help="checkpoint every N steps (default: %(default)s)",
    )
    train.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    train.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    train.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")
    train.add_argument(
        "--quant",
        choices=("none", "4bit"),
        default="none",
        help="4bit: QLoRA on an NF4 base (CUDA only) (default: %(default)s)",
    )
    train.add_argument("--threads", type=_positive_int, help="CPU threads (default: half the CPUs)")
    train.set_defaults(handler=_lazy("emochat.cli.train:run_train"))

    data = commands.add_parser(
        "train-data",
        parents=[model_options(backend=True)],
        help="build a training set by distillation from activation steering",
    )
    data.add_argument("--out", required=True, help="JSONL file to write")
    data.add_argument(
        "--count",
        type=_positive_int,
        default=1200,
        help="replies to generate before selection (default: %(default)s)",
    )
    data.add_argument(
        "--tokens", type=_positive_int, default=64, help="tokens per reply (default: %(default)s)"
    )
    data.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    data.set_defaults(handler=_lazy("emochat.cli.train:run_train_data"))

    detector = commands.add_parser(
        "train-detector",
        help="fine-tune the MiniLM emotion detector on GoEmotions (about 30 min on 2 cores)",
    )
    detector.add_argument("--data", help="GoEmotions folder (default: ../shared/data/goemotions)")
    detector.add_argument("--out", help="file to write (default: the detector file emochat ships)")
    detector.add_argument("--epochs", type=_positive_int, default=4, help="(default: %(default)s)")
    detector.add_argument("--lr", type=_positive_float, default=5e-4, help="(default: %(default)s)")
    detector.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    detector.add_argument(
        "--limit", type=_positive_int, help="train on the first N examples (a quick try)"
    )
    detector.set_defaults(handler=_lazy("emochat.cli.train:run_train_detector"))


def _config_value(action: argparse.Action, value: object) -> object:
    """A config.toml value checked as if it had been typed as the flag."""
    if action.nargs == 0:  # an on/off flag
        if not isinstance(value, bool):
            raise EmochatError("must be true or false")
        return value
    if isinstance(value, (bool, list, dict)):
        raise EmochatError("must be a single number or text")
    if action.type is None and not isinstance(value, str):
        raise EmochatError('must be text in quotes, e.g. model = "default"')
    try:
        converted = action.type(str(value)) if callable(action.type) else str(value)
    except (argparse.ArgumentTypeError, ValueError) as error:
        raise EmochatError(str(error) or f"{value!r} is not valid") from error
    if action.choices is not None and converted not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise EmochatError(f"{value!r} is not one of {choices}")
    return converted


def apply_config_defaults(parser: argparse.ArgumentParser, defaults: dict[str, object]) -> None:
    """Values from config.toml's [defaults] become the defaults of the commands that take
    them, checked as the flags would be; flags still win."""
    subparsers = next(
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    )
    known: set[str] = set()
    for name in ("chat", "say"):
        command = subparsers.choices[name]
        actions = {action.dest: action for action in command._actions}
        known |= set(actions)
        checked = {}
        for key, value in defaults.items():
            if key not in actions:
                continue
            try:
                checked[key] = _config_value(actions[key], value)
            except EmochatError as error:
                raise EmochatError(f"config.toml: {key} = {value!r}: {error}") from None
        command.set_defaults(**checked)
    for key in sorted(set(defaults) - known):
        print(f"emochat: warning: config.toml: unknown setting {key!r}", file=sys.stderr)
