"""``emochat train``, ``emochat train-data`` and ``emochat train-detector``: teach a model the
emotion vector, build the data to teach it with, and fine-tune the detector."""

from __future__ import annotations

import argparse
from pathlib import Path

from emochat.cli.output import progress_printer
from emochat.cli.settings import train_data_config
from emochat.cli.vectors import check_writable
from emochat.runtime.config import ModelConfig, RunConfig


def base_spec(base: str) -> str:
    """How the checkpoint names its base so that emochat finds it again: local paths become
    absolute, ``default`` and hub ids stay as they are."""
    path = Path(base).expanduser()
    return str(path.resolve()) if path.exists() else base


def run_train(args: argparse.Namespace) -> int:
    from emochat.runtime import Runtime
    from emochat.training.card import write_card
    from emochat.training.data import load_examples
    from emochat.training.model import EmotionTrainee
    from emochat.training.trainer import TrainSettings, train

    data, out = Path(args.data).expanduser(), Path(args.out).expanduser()
    settings = TrainSettings(
        base=base_spec(args.base),
        layout=args.layout,
        epochs=args.epochs,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        lr_projection=args.lr_projection,
        lr_lora=args.lr_lora,
        lora_r=args.lora_r,
        max_length=args.max_length,
        save_every=args.save_every,
        seed=args.seed,
    )
    model = ModelConfig(
        model=settings.base,
        backend="transformers",
        quant=args.quant,
        device=args.device,
        threads=args.threads,
    )
    runtime = Runtime(RunConfig(model=model), progress_printer)
    check_writable(out)
    loaded = runtime.training_model()
    examples = load_examples(data, loaded.tokenizer, settings.max_length)
    pad_id = loaded.tokenizer.pad_token_id
    if pad_id is None:
        pad_id = loaded.tokenizer.eos_token_id or 0
    trainee = EmotionTrainee(
        loaded.model, settings.layout, settings.lora_r, loaded.info.hidden_size, settings.seed
    )
    progress_printer(
        f"Training {loaded.info.name} on {len(examples)} examples "
        f"({settings.total_steps(len(examples))} steps, {loaded.info.device})…"
    )
    result = train(trainee, examples, settings, out, pad_id, args.resume, progress_printer)
    trainee.save(out, settings.base)
    write_card(out, data, len(examples), settings, result)
    print(f"Saved {out} (loss {result.losses[0]:.3f} → {result.losses[-1]:.3f})")
    return 0


def run_train_data(args: argparse.Namespace) -> int:
    from emochat.runtime import Runtime
    from emochat.training.recipe import build_training_set

    out = Path(args.out).expanduser()
    runtime = Runtime(train_data_config(args), progress_printer)
    check_writable(out.parent)
    kept, made = build_training_set(
        runtime.backend(),
        runtime.detector(),
        out,
        count=args.count,
        tokens=args.tokens,
        seed=args.seed,
        progress=progress_printer,
    )
    print(f"Kept {kept} of {made} replies: {out}")
    return 0


def run_train_detector(args: argparse.Namespace) -> int:
    from emochat.detect.train import train_detector
    from emochat.detect.tuned import tuned_path

    out = Path(args.out).expanduser() if args.out else tuned_path()
    check_writable(out.parent)
    train_detector(args.data, out, args.epochs, args.lr, args.seed, args.limit)
    return 0
