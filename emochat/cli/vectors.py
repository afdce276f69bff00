"""``emochat vectors build|export``: make steering vectors for a model, and hand them to
llama.cpp users."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from emochat.cli.output import progress_printer
from emochat.cli.settings import emotion_from_flag, vectors_config
from emochat.emotion import AXES, EmotionVector
from emochat.errors import EmochatError


def check_writable(folder: Path) -> None:
    """Before loading a model for minutes: can files be written where they are to go?"""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise EmochatError(f"cannot write to {folder}: {error.strerror or error}") from error


def run_build(args: argparse.Namespace) -> int:
    from emochat.engine.directions import cached_directions_dir
    from emochat.engine.extraction import extract_directions
    from emochat.runtime import Runtime

    runtime = Runtime(vectors_config(args), progress_printer)
    if args.out:
        check_writable(Path(args.out).expanduser())
    backend = runtime.backend()
    started = time.perf_counter()
    directions = extract_directions(backend, progress_printer)
    info = backend.info
    folder = Path(args.out).expanduser() if args.out else cached_directions_dir(info)
    try:
        directions.save(folder)
    except OSError as error:
        raise EmochatError(f"cannot save the vectors to {folder}: {error}") from error
    seconds = time.perf_counter() - started
    start, stop = directions.band
    print(
        f"Built emotion vectors for {info.name} on {info.backend} in {seconds:.0f} s "
        f"(layers {start}-{stop - 1} of {directions.n_layers}): {folder}"
    )
    return 0


def run_export(args: argparse.Namespace) -> int:
    from emochat.engine.extraction import directions_for
    from emochat.engine.modulation import check_intensity
    from emochat.runtime import Runtime

    out = Path(args.out).expanduser()
    if out.suffix == ".gguf" and not args.emotion:
        raise EmochatError("without --emotion, --out is a folder (one file per axis)")
    check_intensity(args.intensity)
    emotion = emotion_from_flag(args.emotion)
    runtime = Runtime(vectors_config(args), progress_printer)
    check_writable(out.parent if out.suffix == ".gguf" else out)
    backend = runtime.backend()
    directions = directions_for(backend, progress_printer, build=args.build_vectors)
    if directions is None:
        raise EmochatError(
            f"no emotion vectors for {backend.info.name}; run `emochat vectors build`"
        )
    hint = backend.info.architecture
    if emotion is not None:
        target = out if out.suffix == ".gguf" else out / "emotion.gguf"
        offsets = directions.offsets(emotion, args.intensity)
        print(_write(target, offsets, hint))
        return 0
    for axis in AXES:
        offsets = directions.offsets(EmotionVector.pole(axis.positive), args.intensity)
        print(_write(out / f"{axis.name}.gguf", offsets, hint))
    return 0


def _write(target: Path, offsets: object, hint: str) -> Path:
    from emochat.engine.directions import write_control_vector

    try:
        return write_control_vector(target, offsets, hint)
    except OSError as error:
        raise EmochatError(f"cannot write {target}: {error.strerror or error}") from error
