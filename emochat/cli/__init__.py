"""The ``emochat`` command line: argparse and the commands live in this package and nowhere
else. Only argparse and the standard library load before a command runs, so ``emochat --help``
answers at once; each command imports what it needs when it runs, and hands the runtime a typed
configuration (``settings.py``), never the parsed flags."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from emochat.cli.parser import COMMANDS, apply_config_defaults, build_parser
from emochat.errors import EmochatError

# Libraries that log warnings of their own set-up (optional GPU kernels torchao cannot load on
# a CPU machine, a torch deprecation it triggers) at import; on stderr they scribble over the app.
NOISY_LOGGERS = ("torchao", "torch.utils._pytree")


def quiet_library_logs() -> None:
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def _with_default_command(argv: list[str]) -> list[str]:
    """``emochat`` and ``emochat --model X`` mean ``emochat chat …``."""
    if not argv:
        return ["chat"]
    first = argv[0]
    if first in COMMANDS or first in ("-h", "--help", "--version"):
        return argv
    return ["chat", *argv]


def main(argv: Sequence[str] | None = None) -> int:
    quiet_library_logs()
    arguments = _with_default_command(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    try:
        if arguments[0] in ("chat", "say"):
            from emochat.config import load_config

            apply_config_defaults(parser, load_config().get("defaults", {}))
        args = parser.parse_args(arguments)
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except EmochatError as error:
        print(f"emochat: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("emochat: interrupted", file=sys.stderr)
        return 130
