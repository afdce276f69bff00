"""``emochat train`` and ``emochat train-data``: teach a model the emotion vector, and build the
data to teach it with."""

from __future__ import annotations

import argparse
from pathlib import Path

from emochat.errors import EmochatError
from emochat.options import progress_printer
from emochat.vectors_cli import check_writable


def base_spec(base: str) -> str:
    """How the checkpoint names its base so that emochat finds it again: local paths become
    absolute, ``default`` and hub ids stay as they are."""
    path = Path(base).expanduser()
    return str(path.resolve()) if path.exists() else base


def run_train(args: argparse.Namespace) -> int:
    from emochat.engine.loading import LoadOptions, load_model
    from emochat.training.card import write_card
    from emochat.training.data import load_examples
    from emochat.training.model import EmotionTrainee
    from emochat.training.trainer import TrainSettings, train

    data, out = Path(args.data).expanduser(), Path(args.out).expanduser()
    check_writable(out)
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
    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.quant == "4bit" and not device.startswith("cuda"):
        raise EmochatError("--quant 4bit (QLoRA) needs a CUDA GPU; on the CPU train with none")
    options = LoadOptions(
        model=settings.base,
        device=device,
        quant=args.quant,
        dtype="float32" if device == "cpu" else "bfloat16",
        threads=args.threads,
    )
    loaded = load_model(options, progress_printer)
    if args.quant == "4bit":
        from peft import prepare_model_for_kbit_training

        loaded.model = prepare_model_for_kbit_training(loaded.model)
    examples = load_examples(data, loaded.tokenizer, settings.max_length)
    pad_id = loaded.tokenizer.pad_token_id
    if pad_id is None:
        pad_id = loaded.tokenizer.eos_token_id or 0
    trainee = EmotionTrainee(
        loaded.model, settings.layout, settings.lora_r, loaded.info.hidden_size, settings.seed
    )
    progress_printer(
        f"Training {loaded.info.name} on {len(examples)} examples "
        f"({settings.total_steps(len(examples))} steps, {device})…"
    )
    result = train(trainee, examples, settings, out, pad_id, args.resume, progress_printer)
    trainee.save(out, settings.base)
    write_card(out, data, len(examples), settings, result)
    print(f"Saved {out} (loss {result.losses[0]:.3f} → {result.losses[-1]:.3f})")
    return 0


def run_train_data(args: argparse.Namespace) -> int:
    from emochat.training.recipe import build_training_set

    out = Path(args.out).expanduser()
    check_writable(out.parent)
    kept, made = build_training_set(args, out, progress_printer)
    print(f"Kept {kept} of {made} replies: {out}")
    return 0
