"""``emochat vectors build|export``: make steering vectors for a model, and hand them to
llama.cpp users."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from emochat.emotion import AXES, EmotionVector
from emochat.engine.control_vector import write_control_vector
from emochat.engine.loading import load_model
from emochat.engine.steering import cached_vectors_dir, extract_directions, vectors_for
from emochat.errors import EmochatError
from emochat.options import emotion_from_args, load_options_from_args, progress_printer


def run_build(args: argparse.Namespace) -> int:
    loaded = load_model(load_options_from_args(args), progress_printer)
    started = time.perf_counter()
    directions = extract_directions(loaded, progress_printer)
    folder = Path(args.out).expanduser() if args.out else cached_vectors_dir(loaded.info)
    try:
        directions.save(folder)
    except OSError as error:
        raise EmochatError(f"cannot save the vectors to {folder}: {error}") from error
    seconds = time.perf_counter() - started
    start, stop = directions.band
    print(
        f"Built emotion vectors for {loaded.info.name} in {seconds:.0f} s "
        f"(layers {start}-{stop - 1} of {directions.n_layers}): {folder}"
    )
    return 0


def run_export(args: argparse.Namespace) -> int:
    loaded = load_model(load_options_from_args(args), progress_printer)
    directions = vectors_for(loaded, progress_printer, build=args.build_vectors)
    if directions is None:
        raise EmochatError(
            f"no emotion vectors for {loaded.info.name}; run `emochat vectors build`"
        )
    hint = str(getattr(loaded.model.config, "model_type", "llama"))
    out = Path(args.out).expanduser()
    if args.emotion:
        target = out if out.suffix == ".gguf" else out / "emotion.gguf"
        offsets = directions.offsets(emotion_from_args(args), args.intensity)
        print(write_control_vector(target, offsets, hint))
        return 0
    if out.suffix == ".gguf":
        raise EmochatError("without --emotion, --out is a folder (one file per axis)")
    for axis in AXES:
        offsets = directions.offsets(EmotionVector.pole(axis.positive), args.intensity)
        print(write_control_vector(out / f"{axis.name}.gguf", offsets, hint))
    return 0
