"""The decoder blocks of a transformers model, what a block's forward hook receives, and what
its forward calls the key/value cache."""

from __future__ import annotations

from typing import Any

from emochat.errors import EmochatError


def find_decoder_layers(model: Any) -> Any:
    """The ``ModuleList`` of decoder blocks, for plain, PEFT-wrapped and quantized models alike:
    the list whose length is the configured layer count (the name decides ties)."""
    import torch

    config = model.config
    if hasattr(config, "get_text_config"):
        config = config.get_text_config()
    count = int(config.num_hidden_layers)
    candidates = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.ModuleList) and len(module) == count
    ]
    if not candidates:
        raise EmochatError("cannot find the decoder layers of this model to steer")
    candidates.sort(key=lambda item: (not item[0].endswith(("layers", ".h", "blocks")), item[0]))
    return candidates[0][1]


def block_hidden(output: Any) -> Any:
    """The hidden states in a decoder block's output: some blocks return them alone, others
    in a tuple with attention weights or the cache."""
    return output[0] if isinstance(output, tuple) else output


def cache_argument(model: Any) -> str:
    """transformers 5 calls the key/value cache ``cache``; earlier versions (and models with
    their own forward) ``past_key_values``."""
    import inspect

    parameters = inspect.signature(model.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"
