"""Measuring a model's emotion directions: the mean difference of decoder-block outputs between
contrast pairs that hold the topic fixed (the same question, answered with a framing sentence
worded alike for the two poles of an axis, read over the framing's tokens). Strength is set
relative to the residual-stream norm at each layer, so one ``intensity`` means about the same on
models of different sizes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

from emochat.emotion import AXES, N_AXES
from emochat.engine.directions import EmotionDirections, cached_directions_dir, find_directions
from emochat.engine.layers import block_hidden, find_decoder_layers
from emochat.engine.loading import LoadedModel
from emochat.engine.prompt import render_prompt
from emochat.progress import Progress, no_progress

# At |e| = 1 and intensity 1 an axis adds this fraction of the residual norm, averaged over the
# band. On the default model the raw JOY−SADNESS difference is 0.04 of the norm there; 0.03
# already turned replies sad or thrilled and 0.06 made them poetic, so 0.04 it is.
TARGET_RELATIVE_STRENGTH = 0.04


def default_band(n_layers: int) -> tuple[int, int]:
    """The middle third of the layers: early blocks barely act, late ones break the text."""
    return n_layers // 3, max(n_layers // 3 + 1, (2 * n_layers) // 3)


def load_prompt_set() -> dict[str, Any]:
    text = resources.files("emochat").joinpath("data/steering_prompts.json").read_text("utf-8")
    return json.loads(text)


@contextmanager
def _capture_block_outputs(layers: Any) -> Iterator[list[Any]]:
    """While open, ``captured[i]`` holds decoder block i's output (first sequence) of the last
    forward pass."""
    captured: list[Any] = [None] * len(layers)
    handles = []
    for index, layer in enumerate(layers):

        def record(module: Any, args: Any, output: Any, index: int = index) -> None:
            captured[index] = block_hidden(output)[0].detach().float()

        handles.append(layer.register_forward_hook(record))
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def _framed_states(loaded: LoadedModel, prompt_set: dict[str, Any]) -> dict[str, Any]:
    """Per pole, for every question and every framing of that pole: the block outputs averaged
    over the framing's tokens, read as the start of the assistant's reply.
    {pole: [pairs, n_layers, hidden]}"""
    import torch

    model, tokenizer = loaded.model, loaded.tokenizer
    device = next(model.parameters()).device
    rows: dict[str, list[Any]] = {pole: [] for pole in prompt_set["framings"]}
    with torch.inference_mode(), _capture_block_outputs(find_decoder_layers(model)) as captured:
        for question in prompt_set["questions"]:
            prompt, _ = render_prompt(tokenizer, [{"role": "user", "content": question}])
            start = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
            for pole, framings in prompt_set["framings"].items():
                for framing in framings:
                    text = prompt + framing
                    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
                    model(input_ids=ids["input_ids"].to(device))
                    rows[pole].append(torch.stack([h[start:].mean(0).cpu() for h in captured]))
    return {pole: torch.stack(states) for pole, states in rows.items()}


def extract_directions(loaded: LoadedModel, progress: Progress = no_progress) -> EmotionDirections:
    """Build the directions for ``loaded`` from the shipped contrast pairs: the same question
    answered with the same framing sentence in each pole's words."""
    import torch

    prompt_set = load_prompt_set()
    progress(f"Reading {N_AXES} axes × 2 poles over the contrast pairs…")
    states = _framed_states(loaded, prompt_set)
    values = torch.stack([(states[axis.positive] - states[axis.negative]).mean(0) for axis in AXES])
    residual_norms = torch.cat(list(states.values())).mean(0).norm(dim=-1)
    band = default_band(values.shape[1])
    start, stop = band
    relative = values[:, start:stop].norm(dim=-1) / residual_norms[start:stop]
    scales = (TARGET_RELATIVE_STRENGTH / relative.mean(dim=-1).clamp_min(1e-6)).tolist()
    metadata = {
        "model": loaded.info.name,
        "model_source": loaded.info.source,
        "hidden_size": loaded.info.hidden_size,
        "n_layers": loaded.info.n_layers,
        "prompt_set_version": prompt_set["version"],
        "target_relative_strength": TARGET_RELATIVE_STRENGTH,
    }
    return EmotionDirections(values.numpy(), residual_norms.numpy(), band, scales, metadata)


def build_and_cache_directions(
    loaded: LoadedModel, progress: Progress = no_progress
) -> EmotionDirections:
    """Extract new directions for ``loaded`` and keep them in the cache."""
    progress(f"No emotion vectors for {loaded.info.name} yet: building them once…")
    directions = extract_directions(loaded, progress)
    try:
        directions.save(cached_directions_dir(loaded.info))
    except OSError as error:
        progress(f"Could not cache the emotion vectors: {error}")
    return directions


def directions_for(
    loaded: LoadedModel, progress: Progress = no_progress, build: bool = True
) -> EmotionDirections | None:
    """The shipped or cached directions for this model, else (if ``build``) new ones."""
    found = find_directions(loaded.info)
    if found is not None or not build:
        return found
    return build_and_cache_directions(loaded, progress)
