"""Shared fixtures: a tiny random model built on the spot (mechanics), and the real default
model converted once per test session (behaviour)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CORPUS = [
    "Hello there, how are you feeling today?",
    "I am happy, joyful and calm. The sun is shining on the beach.",
    "I am sad and afraid; the rain will not stop.",
    "Explain briefly how to boil an egg: put it in water and wait.",
    "Café, naïve, über, 日本語, emoji 🙂 and other bytes.",
] * 20


def build_tiny_model(
    folder: Path,
    *,
    chat_template: bool = True,
    layers: int = 4,
    architecture: str = "llama",
    init_std: float = 0.02,
) -> Path:
    """A 4-layer Llama (or Gemma 3) with a byte-level BPE tokenizer trained on a few sentences.
    A larger ``init_std`` gives an output layer that can say something: a random one at 0.02
    keeps every logit near zero, and a loss near ln(vocabulary) that training cannot lower."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        Gemma3ForCausalLM,
        Gemma3TextConfig,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
    )

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    if chat_template:
        fast.chat_template = CHATML_TEMPLATE
    torch.manual_seed(0)
    shape = {
        "vocab_size": len(fast),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 256,
        "bos_token_id": fast.bos_token_id,
        "eos_token_id": fast.eos_token_id,
        "pad_token_id": fast.pad_token_id,
        "initializer_range": init_std,
    }
    if architecture == "gemma3":
        model = Gemma3ForCausalLM(Gemma3TextConfig(**shape, head_dim=16, sliding_window=64))
    else:
        model = LlamaForCausalLM(LlamaConfig(**shape))
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_loaded(tiny_model_dir: Path):
    from emochat.engine.loading import LoadOptions, load_model, resolve_source

    return load_model(
        resolve_source(str(tiny_model_dir)),
        LoadOptions(device="cpu", dtype="float32", quant="none"),
    )


def next_token_logits(backend, messages, emotion):
    """The logits of the reply's first token (float32 numpy, vocabulary-sized), read the way a
    reply reads its prompt (the prompt unsteered, steering from its last position on): what the
    mood does to the model's very next choice. The backend's key/value cache is left empty."""
    import numpy as np

    from emochat.engine.generation import PrefixCache

    prompt_ids, _ = backend._prepare(messages, emotion, 1)
    backend._prefix = PrefixCache()
    if backend.kind == "llama.cpp":
        import llama_cpp

        llama = backend._llama
        backend._read_prompt(prompt_ids, 0)
        llama.eval(prompt_ids[llama.n_tokens :])
        row = llama_cpp.llama_get_logits_ith(llama.ctx, -1)
        logits = np.ctypeslib.as_array(row, shape=(llama.n_vocab(),)).copy()
        llama.n_tokens = 0
        return logits
    import torch

    backend._cache = None
    with torch.inference_mode():
        output = backend.model(input_ids=torch.tensor([prompt_ids]))
    return output.logits[0, -1].float().cpu().numpy()


def transformers_backend(loaded, modulator=None):
    """The transformers backend around an already loaded model (with ``modulator`` attached:
    detach it when done, since the model is shared between tests)."""
    from emochat.engine.backends.transformers_backend import TransformersBackend

    backend = TransformersBackend(loaded)
    if modulator is not None:
        backend.use(modulator)
    return backend


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data and config folder; the model cache stays shared."""
    home = tmp_path / "emochat-home"
    monkeypatch.setenv("EMOCHAT_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One conversion of the default GGUF per test session, in a folder of its own, so the
    tests see the conversion happen and never touch the user's cache."""
    cache = Path(os.environ.get("EMOCHAT_TEST_CACHE") or tmp_path_factory.mktemp("cache"))
    os.environ["EMOCHAT_CACHE"] = str(cache)
    return cache


@pytest.fixture(scope="session")
def default_loaded(model_cache: Path):
    """The default model on the transformers backend, as a CPU user gets it (int4)."""
    from emochat.engine.loading import LoadOptions, load_model, resolve_source

    return load_model(resolve_source("default"), LoadOptions(device="cpu"))


@pytest.fixture(scope="session")
def default_float32(model_cache: Path):
    """The default model unquantized: the same weights llama.cpp runs, de-quantized."""
    from emochat.engine.loading import LoadOptions, load_model, resolve_source

    return load_model(
        resolve_source("default"), LoadOptions(device="cpu", quant="none", dtype="float32")
    )


@pytest.fixture(scope="session")
def default_llama(model_cache: Path):
    """The default GGUF on the llama.cpp backend."""
    from emochat.engine.backends import open_backend
    from emochat.engine.loading import LoadOptions, resolve_source
    from emochat.progress import no_progress

    source = resolve_source("default")
    return open_backend(source, LoadOptions(device="cpu", backend="llama.cpp"), no_progress)
