"""Random GGUF models written with the ``gguf`` package, laid out as llama.cpp's converter lays
them out (Llama and Gemma 3), with a small byte-level BPE vocabulary padded to the size asked
for: tiny ones for the mechanics of native extraction, bigger ones for the build-time
benchmarks (the time, not the quality)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.conftest import CHATML_TEMPLATE, CORPUS

SHAPES = {
    # hidden, feed-forward, layers, heads, key/value heads, head width
    "tiny": (64, 128, 4, 4, 2, 16),
    "gemma-3-270m": (640, 2048, 18, 4, 1, 256),
    "gemma-3-1b": (1152, 6912, 26, 4, 1, 256),
}


def _bpe_vocabulary(size: int) -> tuple[list[str], list[str], list[int]]:
    """Tokens, merges and token types of a byte-level BPE trained on a few sentences, with the
    chat markers as control tokens, padded with unused control tokens to ``size``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(CORPUS, trainer)
    model = json.loads(tokenizer.to_str())["model"]
    tokens = [token for token, _ in sorted(model["vocab"].items(), key=lambda item: item[1])]
    merges = [" ".join(pair) if isinstance(pair, list) else pair for pair in model["merges"]]
    types = [3 if token in specials else 1 for token in tokens]
    for index in range(len(tokens), size):
        tokens.append(f"<unused{index}>")
        types.append(3)
    return tokens, merges, types


def write_random_gguf(
    path: Path,
    architecture: str = "llama",
    shape: str = "tiny",
    vocab_size: int = 512,
    quant: str = "Q8_0",
    embedding_quant: str | None = None,
    seed: int = 0,
) -> Path:
    """A randomly initialised ``architecture`` ("llama" or "gemma3") model of ``shape``, its
    matrices in ``quant`` (the token embedding in ``embedding_quant``, as llama.cpp's 4-bit
    files keep it in 6 or 8 bits)."""
    import gguf

    hidden, ffn, layers, heads, kv_heads, head_width = SHAPES[shape]
    if architecture == "llama":
        head_width = hidden // heads
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_name(f"random {architecture} {shape}")
    writer.add_context_length(2048)
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(ffn)
    writer.add_block_count(layers)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_freq_base(10000.0)
    if architecture == "gemma3":
        writer.add_key_length(head_width)
        writer.add_value_length(head_width)
        writer.add_sliding_window(512)
    else:
        writer.add_rope_dimension_count(head_width)
    writer.add_file_type(getattr(gguf.LlamaFileType, f"MOSTLY_{quant}"))
    tokens, merges, types = _bpe_vocabulary(vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokens.index("<|endoftext|>"))
    writer.add_eos_token_id(tokens.index("<|im_end|>"))
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHATML_TEMPLATE)

    def matrix(name: str, rows: int, columns: int, kind: str | None = None) -> None:
        qtype = getattr(gguf.GGMLQuantizationType, kind or quant)
        values = rng.normal(0, 0.02, (rows, columns)).astype(np.float32)
        data = gguf.quants.quantize(values, qtype)
        writer.add_tensor(name, data, raw_shape=data.shape, raw_dtype=qtype)

    def norm(name: str, width: int) -> None:
        writer.add_tensor(name, np.ones(width, dtype=np.float32))

    matrix("token_embd.weight", vocab_size, hidden, embedding_quant)
    norm("output_norm.weight", hidden)
    for block in range(layers):
        prefix = f"blk.{block}."
        norm(prefix + "attn_norm.weight", hidden)
        matrix(prefix + "attn_q.weight", heads * head_width, hidden)
        matrix(prefix + "attn_k.weight", kv_heads * head_width, hidden)
        matrix(prefix + "attn_v.weight", kv_heads * head_width, hidden)
        matrix(prefix + "attn_output.weight", hidden, heads * head_width)
        norm(prefix + "ffn_norm.weight", hidden)
        matrix(prefix + "ffn_gate.weight", ffn, hidden)
        matrix(prefix + "ffn_up.weight", ffn, hidden)
        matrix(prefix + "ffn_down.weight", hidden, ffn)
        if architecture == "gemma3":
            norm(prefix + "attn_q_norm.weight", head_width)
            norm(prefix + "attn_k_norm.weight", head_width)
            norm(prefix + "post_attention_norm.weight", hidden)
            norm(prefix + "post_ffw_norm.weight", hidden)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
