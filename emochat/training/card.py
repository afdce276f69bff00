"""The model card written next to a trained checkpoint: what it was trained on, how, and what the
run measured, so the folder explains itself."""

from __future__ import annotations

import hashlib
import json
import statistics
from dataclasses import asdict
from pathlib import Path

from emochat.training.trainer import TrainResult, TrainSettings

RECORD_FILE = "training.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_card(
    folder: Path, data: Path, n_examples: int, settings: TrainSettings, result: TrainResult
) -> None:
    losses = result.losses
    window = max(1, min(20, len(losses) // 5))
    first, last = statistics.fmean(losses[:window]), statistics.fmean(losses[-window:])
    digest = _sha256(data)
    record = {
        "data": {"file": data.name, "sha256": digest, "examples": n_examples},
        "settings": asdict(settings),
        "steps": len(losses),
        "loss_first": first,
        "loss_last": last,
        "tokens_per_second": result.tokens / max(result.seconds, 1e-9),
        "losses": losses,
    }
    (folder / RECORD_FILE).write_text(json.dumps(record, indent=1) + "\n")
    lines = [
        f"# emochat emotion checkpoint for `{settings.base}`",
        "",
        "An emotion projection (8 → hidden, added ×3 to every token embedding) trained with LoRA "
        "adapters, the Emotional-Gemma way. Load it with "
        f"`emochat --model {folder.name} --modulation embed` (auto picks embed for this folder).",
        "",
        "| | |",
        "|---|---|",
        f"| data | `{data.name}`, {n_examples} examples, sha256 `{digest[:16]}…` |",
        f"| projection | {settings.layout} |",
        f"| LoRA | r {settings.lora_r}, α {2 * settings.lora_r}, all linear layers |",
        f"| learning rates | projection {settings.lr_projection:g}, LoRA {settings.lr_lora:g} |",
        f"| steps | {len(losses)} (batch {settings.batch_size}, ≤ {settings.max_length} tokens) |",
        f"| loss | {first:.3f} over the first {window} steps → {last:.3f} over the last {window} |",
        f"| speed | {record['tokens_per_second']:,.0f} tokens/s |",
        "",
        f"The loss of every step is in `{RECORD_FILE}`.",
        "",
    ]
    (folder / "README.md").write_text("\n".join(lines))
