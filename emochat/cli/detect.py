"""``emochat detect``: read the emotion of texts from the command line or stdin."""

from __future__ import annotations

import argparse
import json
import sys

from emochat.cli.output import progress_printer
from emochat.cli.settings import detect_config
from emochat.detect import Detector, Reading, read_many
from emochat.emotion import AXES
from emochat.errors import EmochatError
from emochat.textfiles import stdin_lines

BATCH = 64


def format_table(reading: Reading) -> str:
    rows = []
    for axis, value in zip(AXES, reading.vector, strict=True):
        width = round(abs(value) * 10)
        left = ("█" * width).rjust(10) if value < 0 else " " * 10
        right = ("█" * width).ljust(10) if value > 0 else " " * 10
        rows.append(f"{axis.negative:>12} {left}│{right} {axis.positive:<11} {value:+.2f}")
    rows.append(f"{'confidence':>12} {reading.confidence:.2f}")
    return "\n".join(rows)


def _record(text: str, reading: Reading) -> str:
    return json.dumps({"text": text, **reading.to_dict()}, ensure_ascii=False)


def run_detect(args: argparse.Namespace) -> int:
    from emochat.runtime import Runtime

    detector = Runtime(detect_config(args), progress_printer).detector()
    if args.jsonl:
        if args.text:
            raise EmochatError("--jsonl reads texts from stdin; give no TEXT")
        batch: list[str] = []
        for line in stdin_lines():
            batch.append(line)
            if len(batch) == BATCH:
                _flush(detector, batch)
                batch = []
        _flush(detector, batch)
        return 0
    if not args.text:
        raise EmochatError("detect needs a TEXT (or --jsonl with texts on stdin)")
    reading = detector.read(args.text)
    print(_record(args.text, reading) if args.json else format_table(reading))
    return 0


def _flush(detector: Detector, batch: list[str]) -> None:
    for text, reading in zip(batch, read_many(detector, batch), strict=True):
        print(_record(text, reading), flush=False)
    sys.stdout.flush()
