"""``emochat models``: the models emochat can find here, one line each (``--json`` for
scripts)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from emochat.cli.output import warn


def run_models(args: argparse.Namespace) -> int:
    if args.base_url or args.server:
        return _server_models(args)
    from emochat.engine.stores.catalog import find_models

    catalog = find_models()
    for problem in catalog.problems:
        warn(problem)
    if args.json:
        print(json.dumps([asdict(model) for model in catalog.models], indent=2))
        return 0
    rows = [("NAME", "ARCH", "PARAMS", "QUANT", "SIZE", "VECTORS", "FROM")]
    for model in catalog.models:
        rows.append(
            (
                model.name,
                model.architecture,
                model.size_label or _count(model.parameters),
                model.quantization,
                _bytes(model.size),
                model.vectors,
                model.store,
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


def _count(parameters: int | None) -> str:
    if parameters is None:
        return "-"
    if parameters >= 1e9:
        return f"{parameters / 1e9:.1f}B"
    if parameters >= 1e6:
        return f"{parameters / 1e6:.0f}M"
    return f"{parameters / 1e3:.0f}K"


def _bytes(size: int) -> str:
    if size >= 1 << 30:
        return f"{size / (1 << 30):.1f} GiB"
    return f"{size / (1 << 20):.0f} MiB"


def _server_models(args: argparse.Namespace) -> int:
    """``GET /models`` of the server: the names to pass to ``--model``."""
    from emochat.cli.settings import server_settings
    from emochat.runtime import Runtime
    from emochat.runtime.config import ModelConfig, RunConfig

    model = ModelConfig(backend="openai", **server_settings(args))
    runtime = Runtime(RunConfig(model=model, uses_model=False))
    offered = runtime.server_api().models()
    if args.json:
        print(json.dumps(offered, indent=2))
        return 0
    for entry in offered:
        print(entry["id"])
    return 0
