"""Reading decoder-block outputs out of a transformers model: forward hooks on the blocks, the
decoder run without its output layer (a large vocabulary's lm_head can cost more than the rest
of a small model), and the forward pass cut short after the last block wanted.

A question's prompt is read once; its key/value cache is repeated for every framing, and the
framings are read in one batch beside each other (padded on the right, so every framing starts
at the same position)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from emochat.engine.layers import block_hidden, cache_argument, find_decoder_layers

if TYPE_CHECKING:
    from emochat.engine.framings import FramedQuestion


class _EnoughBlocks(Exception):
    """Raised by the hook on the last block wanted: nothing after it is computed."""


def read_framings(model: Any, question: FramedQuestion, blocks: int) -> Any:
    """For each framing: blocks ``0..blocks-1``'s outputs averaged over the framing's tokens,
    float32 numpy [framings, blocks, hidden]."""
    import torch
    from transformers import DynamicCache

    layers = find_decoder_layers(model)
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model
    device = next(model.parameters()).device
    captured: list[Any] = [None] * blocks

    def hook_for(index: int) -> Any:
        def record(_module: Any, _args: Any, output: Any) -> None:
            captured[index] = block_hidden(output).float()
            if index == blocks - 1:
                raise _EnoughBlocks

        return record

    handles = [layers[index].register_forward_hook(hook_for(index)) for index in range(blocks)]
    try:
        with torch.inference_mode():
            cache = DynamicCache(config=model.config)
            prompt = torch.tensor([question.prompt_ids], device=device)
            cache_name = cache_argument(decoder)
            _run(decoder, input_ids=prompt, **{cache_name: cache})
            count = len(question.framings)
            longest = max(len(framing) for framing in question.framings)
            ids = torch.zeros((count, longest), dtype=torch.long, device=device)
            mask = torch.zeros((count, len(question.prompt_ids) + longest), device=device)
            mask[:, : len(question.prompt_ids)] = 1
            for row, framing in enumerate(question.framings):
                ids[row, : len(framing)] = torch.tensor(framing)
                mask[row, len(question.prompt_ids) : len(question.prompt_ids) + len(framing)] = 1
            cache.batch_repeat_interleave(count)
            _run(decoder, input_ids=ids, attention_mask=mask.long(), **{cache_name: cache})
            own = mask[:, len(question.prompt_ids) :, None]  # [framings, longest, 1]
            means = [(states * own).sum(1) / own.sum(1) for states in captured]
    finally:
        for handle in handles:
            handle.remove()
    return torch.stack(means, dim=1).cpu().numpy()


def _run(decoder: Any, **inputs: Any) -> None:
    with contextlib.suppress(_EnoughBlocks):
        decoder(**inputs, use_cache=True)
