"""The default detector without torch: the fine-tuned MiniLM run by llama.cpp as a BERT
embedding model (its GGUF made once by :mod:`emochat.detect.minilm_gguf`), mean-pooled by
llama.cpp, and the 17-output head in numpy. Texts are split into tokens by the encoder's own
``tokenizer.json`` (the Rust tokenizers library, as transformers does), so both detectors read
the same tokens; the readings agree within 0.01 a value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from emochat.detect.embedding import minilm_path, readings_from_logits
from emochat.detect.minilm_gguf import detector_gguf
from emochat.detect.types import Reading
from emochat.errors import EmochatError

# Texts are cut to this many tokens, [CLS] and [SEP] included, as the torch detector cuts them.
MAX_TOKENS = 64
# One decode reads up to this many texts (``detect --jsonl``): texts in one batch attend over
# each other's positions (masked), a cost that grows with its square. Measured per text on one
# thread: 11.4 ms in eights, 16 ms in sixteens, 32 ms in batches of 64.
TEXTS_PER_DECODE = 8
BATCH_TOKENS = TEXTS_PER_DECODE * MAX_TOKENS


class Head:
    """The detector's linear head and its calibration of "neutral", in numpy."""

    calibration: tuple[float, float]

    def __init__(self, tuned: Path) -> None:
        import numpy as np
        from safetensors.numpy import load_file

        from emochat.detect.tuned import check_outputs

        check_outputs(tuned)
        try:
            tensors = load_file(str(tuned))
            self.weight = tensors["head.weight"].astype(np.float32)
            self.bias = tensors["head.bias"].astype(np.float32)
        except (OSError, KeyError, ValueError) as error:
            raise EmochatError(f"cannot read the detector {tuned}: {error}") from error
        scale, bias = tensors.get("calibration", np.array([1.0, 0.0])).tolist()
        self.calibration = (float(scale), float(bias))

    def readings(self, pooled: Any) -> list[Reading]:
        return readings_from_logits(pooled @ self.weight.T + self.bias, self.calibration)


def _tokenizer(encoder_dir: Path) -> Any:
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(encoder_dir / "tokenizer.json"))
    except Exception as error:  # the Rust library raises its own exception type
        raise EmochatError(f"cannot read the detector's tokenizer: {error}") from error
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_TOKENS)
    return tokenizer


def _open(gguf: Path) -> Any:
    import llama_cpp

    from emochat.engine.llama_process import open_llama

    try:
        return open_llama(
            str(gguf),
            embedding=True,
            pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
            n_ctx=BATCH_TOKENS,
            n_batch=BATCH_TOKENS,
            n_ubatch=BATCH_TOKENS,
            n_threads=1,  # as the torch detector: a message in a few ms, the chat unslowed
            n_threads_batch=1,
        )
    except (ValueError, RuntimeError, OSError) as error:
        raise EmochatError(f"llama.cpp cannot load the detector {gguf}: {error}") from error


class LlamaCppDetector:
    name = "minilm"

    def __init__(self, tuned: Path | None = None) -> None:
        from emochat.detect.tuned import tuned_path

        tuned = tuned or tuned_path()
        self._head = Head(tuned)
        encoder = minilm_path()
        gguf = detector_gguf(encoder, tuned)
        try:
            self._llama = _open(gguf)
        except EmochatError:  # a damaged file in the cache (a full disk, a crash): once more
            gguf.unlink(missing_ok=True)
            self._llama = _open(detector_gguf(encoder, tuned))
        self._n_embd = int(self._llama.n_embd())
        self._tokenizer = _tokenizer(encoder)

    def _pooled(self, texts: list[str]) -> Any:
        """The mean-pooled sentence states, [texts, hidden], eight texts a decode."""
        import llama_cpp
        import numpy as np

        # Llama.embed would tokenize with llama.cpp's own WordPiece, which differs from BERT's
        # at the edges (a word over 100 letters is [UNK] in BERT): the encoder's tokens go
        # into llama-cpp-python's batch and context directly instead.
        llama, rows = self._llama, []
        context = llama._ctx
        batch = llama._batch
        group: list[list[int]] = []

        def decode() -> None:
            batch.reset()
            for index, tokens in enumerate(group):
                batch.add_sequence(tokens, index, True)
            context.kv_cache_clear()
            context.decode(batch)
            for index in range(len(group)):
                pointer = llama_cpp.llama_get_embeddings_seq(context.ctx, index)
                rows.append(np.ctypeslib.as_array(pointer, shape=(self._n_embd,)).copy())
            group.clear()

        for encoding in self._tokenizer.encode_batch(texts):
            tokens = encoding.ids
            if len(group) == TEXTS_PER_DECODE:
                decode()
            group.append(tokens)
        if group:
            decode()
        return np.stack(rows) if rows else np.zeros((0, self._n_embd), dtype=np.float32)

    def read_many(self, texts: list[str]) -> list[Reading]:
        if not texts:
            return []
        return self._head.readings(self._pooled(texts))

    def read(self, text: str) -> Reading:
        return self.read_many([text])[0]
