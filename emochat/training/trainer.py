"""The training loop: two learning rates (projection, adapters), a seeded order per epoch,
progress with loss and tokens/s, checkpoints every N steps that ``--resume`` continues from
exactly (same batches, same optimizer state, same losses), and the final three-file save."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from emochat.errors import EmochatError
from emochat.progress import Progress
from emochat.training.data import Example, collate
from emochat.training.model import EmotionTrainee

STATE_FILE = "trainer_state.pt"
CHECKPOINT = re.compile(r"checkpoint-(\d+)$")


@dataclass(frozen=True)
class TrainSettings:
    base: str = "default"
    layout: str = "linear"
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 8
    lr_projection: float = 1e-3
    lr_lora: float = 2e-4
    lora_r: int = 8
    max_length: int = 128
    save_every: int = 100
    log_every: int = 10
    seed: int = 0

    def total_steps(self, n_examples: int) -> int:
        per_epoch = math.ceil(n_examples / self.batch_size)
        total = per_epoch * self.epochs
        return min(total, self.max_steps) if self.max_steps else total

    def same_model(self, other: dict[str, Any]) -> bool:
        """Whether a checkpoint made with ``other`` can be continued with these settings."""
        keys = ("base", "layout", "lora_r", "batch_size", "seed", "max_length")
        return all(other.get(key) == getattr(self, key) for key in keys)


@dataclass
class TrainResult:
    losses: list[float]
    tokens: int
    seconds: float
    resumed_from: int


def batch_order(n_examples: int, settings: TrainSettings, step: int) -> list[int]:
    """The examples of global ``step``: epoch by epoch, each in an order fixed by the seed."""
    import torch

    per_epoch = math.ceil(n_examples / settings.batch_size)
    epoch, index = divmod(step, per_epoch)
    generator = torch.Generator().manual_seed(settings.seed * 1000 + epoch)
    order = torch.randperm(n_examples, generator=generator).tolist()
    return order[index * settings.batch_size : (index + 1) * settings.batch_size]


def _schedule(total: int) -> Callable[[int], float]:
    """Linear warm-up over the first 5% (at least one step), then linear decay to a tenth."""
    warmup = max(1, total // 20)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.1, 1 - 0.9 * (step - warmup) / max(1, total - warmup))

    return factor


def latest_checkpoint(out: Path) -> Path | None:
    found = [
        (int(match.group(1)), path)
        for path in out.glob("checkpoint-*")
        if (match := CHECKPOINT.search(path.name)) and (path / STATE_FILE).is_file()
    ]
    return max(found)[1] if found else None


def train(
    trainee: EmotionTrainee,
    examples: list[Example],
    settings: TrainSettings,
    out: Path,
    pad_id: int,
    resume: bool = False,
    progress: Progress = print,
) -> TrainResult:
    import torch

    optimizer = torch.optim.AdamW(
        [
            {"params": list(trainee.projection.parameters()), "lr": settings.lr_projection},
            {"params": trainee.lora_parameters(), "lr": settings.lr_lora},
        ],
        weight_decay=0.0,
    )
    total = settings.total_steps(len(examples))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(total))
    losses: list[float] = []
    start = 0
    if resume:
        checkpoint = latest_checkpoint(out)
        if checkpoint is None:
            raise EmochatError(f"--resume: no checkpoint in {out}")
        state = torch.load(checkpoint / STATE_FILE, map_location="cpu", weights_only=True)
        if not settings.same_model(state["settings"]):
            raise EmochatError(f"{checkpoint} was trained with other settings: {state['settings']}")
        trainee.load_trainable_state(state["trainable"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, losses = int(state["step"]), list(state["losses"])
        progress(f"Resuming from {checkpoint.name} (step {start} of {total})")
    trainee.model.train()
    tokens, started = 0, time.perf_counter()
    for step in range(start, total):
        batch = collate([examples[i] for i in batch_order(len(examples), settings, step)], pad_id)
        loss = trainee.loss(batch)
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        tokens += int(batch["attention_mask"].sum())
        done = step + 1
        if done % settings.log_every == 0 or done == total:
            rate = tokens / max(time.perf_counter() - started, 1e-9)
            recent = losses[-settings.log_every :]
            progress(
                f"step {done}/{total}  loss {sum(recent) / len(recent):.4f}  {rate:,.0f} tok/s"
            )
        if done % settings.save_every == 0 and done < total:
            _save_checkpoint(
                trainee, optimizer, scheduler, settings, losses, out / f"checkpoint-{done}"
            )
    trainee.model.eval()
    return TrainResult(losses, tokens, time.perf_counter() - started, start)


def _save_checkpoint(
    trainee: EmotionTrainee,
    optimizer: Any,
    scheduler: Any,
    settings: TrainSettings,
    losses: list[float],
    folder: Path,
) -> None:
    import torch

    trainee.save(folder, settings.base)
    state = {
        "trainable": trainee.trainable_state(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "step": len(losses),
        "losses": losses,
        "settings": asdict(settings),
    }
    try:
        torch.save(state, folder / STATE_FILE)
        (folder / "losses.json").write_text(json.dumps(losses))
    except OSError as error:
        raise EmochatError(f"cannot save the checkpoint to {folder}: {error}") from error
