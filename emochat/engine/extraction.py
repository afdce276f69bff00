"""Measuring a model's emotion directions: the mean difference of decoder-block outputs between
contrast pairs that hold the topic fixed (the same question, answered with a framing sentence
worded alike for the two poles of an axis, read over the framing's tokens). Strength is set
relative to the residual-stream norm at each layer, so one ``intensity`` means about the same on
models of different sizes.

How the block outputs are read is the backend's (:meth:`Backend.read_framings`): llama.cpp reads
them from the GGUF's own 4-bit weights through its eval callback, transformers through forward
hooks. Both read each question once and all its framings beside it, and only the blocks up to
the end of the steered band: later blocks are never steered, and skipping them saves a third of
the work."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from emochat.emotion import AXES, N_AXES
from emochat.engine.directions import EmotionDirections, cached_directions_dir, find_directions
from emochat.engine.framings import load_prompt_set
from emochat.progress import Progress, no_progress

if TYPE_CHECKING:
    from emochat.engine.backends.base import Backend

# At |e| = 1 and intensity 1 an axis adds this fraction of the residual norm, averaged over the
# band. On the default model the raw JOY−SADNESS difference is 0.04 of the norm there; 0.03
# already turned replies sad or thrilled and 0.06 made them poetic, so 0.04 it is.
TARGET_RELATIVE_STRENGTH = 0.04


def default_band(n_layers: int) -> tuple[int, int]:
    """The middle third of the layers: early blocks barely act, late ones break the text."""
    return n_layers // 3, max(n_layers // 3 + 1, (2 * n_layers) // 3)


def extract_directions(backend: Backend, progress: Progress = no_progress) -> EmotionDirections:
    """Build the directions for the model on ``backend`` from the shipped contrast pairs: the
    same question answered with the same framing sentence in each pole's words."""
    import numpy as np

    prompt_set = load_prompt_set()
    questions = backend.framed_questions(prompt_set)
    info = backend.info
    band = default_band(info.n_layers)
    measured = band[1]
    rows: dict[str, list[Any]] = {pole: [] for pole in prompt_set["framings"]}
    started = time.perf_counter()
    for done, question in enumerate(questions, start=1):
        means = backend.read_framings(question, measured)  # [framings, measured, hidden]
        for pole, state in zip(question.poles, means, strict=True):
            rows[pole].append(state)
        progress(_progress_line(info.name, done, len(questions), time.perf_counter() - started))
    states = {pole: np.stack(values) for pole, values in rows.items()}
    values = np.zeros((N_AXES, info.n_layers, info.hidden_size), dtype=np.float32)
    for index, axis in enumerate(AXES):
        values[index, :measured] = (states[axis.positive] - states[axis.negative]).mean(0)
    residual_norms = np.zeros(info.n_layers, dtype=np.float32)
    every_framing = np.concatenate(list(states.values()))
    residual_norms[:measured] = np.linalg.norm(every_framing.mean(0), axis=-1)
    start, stop = band
    relative = np.linalg.norm(values[:, start:stop], axis=-1) / residual_norms[start:stop]
    scales = (TARGET_RELATIVE_STRENGTH / np.maximum(relative.mean(axis=-1), 1e-6)).tolist()
    metadata = {
        "model": info.name,
        "model_source": info.source,
        "hidden_size": info.hidden_size,
        "n_layers": info.n_layers,
        # blocks from here on were not read (never steered): their rows are zero
        "measured_layers": measured,
        "built_with": info.backend,
        "prompt_set_version": prompt_set["version"],
        "target_relative_strength": TARGET_RELATIVE_STRENGTH,
    }
    return EmotionDirections(values, residual_norms, band, [float(s) for s in scales], metadata)


def _progress_line(name: str, done: int, total: int, seconds: float) -> str:
    left = seconds / done * (total - done)
    bar = "█" * round(20 * done / total)
    estimate = f", about {left:.0f} s left" if done < total else f" in {seconds:.0f} s"
    return f"Building emotion vectors for {name}: {bar:░<20} {done}/{total}{estimate}"


def build_and_cache_directions(
    backend: Backend, progress: Progress = no_progress
) -> EmotionDirections:
    """Extract new directions for the model on ``backend`` and keep them in the cache."""
    directions = extract_directions(backend, progress)
    try:
        directions.save(cached_directions_dir(backend.info))
    except OSError as error:
        progress(f"Could not cache the emotion vectors: {error}")
    return directions


def directions_for(
    backend: Backend, progress: Progress = no_progress, build: bool = True
) -> EmotionDirections | None:
    """The shipped or cached directions for this model, else (if ``build``) new ones."""
    found = find_directions(backend.info)
    if found is not None or not build:
        return found
    return build_and_cache_directions(backend, progress)
