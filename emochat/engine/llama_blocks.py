"""Reading decoder-block outputs out of llama.cpp, as its cvector-generator does: the eval
callback (``cb_eval``) is shown each tensor of the graph as it is computed, and copies out the
blocks' outputs, which llama.cpp names ``l_out-N``.

The reader is a second context on the loaded model (the weights are shared, not loaded again),
so it reads the 4-bit weights that actually run, and a chat on the first context is untouched
by it. A question's prompt belongs to every framing's sequence and its framings follow it as
sequences of their own, all in one batch: the prompt is computed once, no framing sees
another, and no logits are asked for."""

from __future__ import annotations

import ctypes
import threading
from typing import TYPE_CHECKING, Any

from emochat.errors import EmochatError

if TYPE_CHECKING:
    from emochat.engine.framings import FramedQuestion

BLOCK_OUTPUT = b"l_out-"
# llama.cpp keeps at most this many sequences in a context (LLAMA_MAX_SEQ is 64 in older builds)
MAX_SEQUENCES = 64


def _ggml() -> Any:
    """The ggml calls the callback needs, from the library llama-cpp-python loaded."""
    from llama_cpp import _ggml

    library = _ggml.libggml
    library.ggml_get_name.restype = ctypes.c_char_p
    library.ggml_get_name.argtypes = [ctypes.c_void_p]
    library.ggml_nelements.restype = ctypes.c_int64
    library.ggml_nelements.argtypes = [ctypes.c_void_p]
    library.ggml_backend_tensor_get.restype = None
    library.ggml_backend_tensor_get.argtypes = [
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_size_t,
    ]
    return library


class BlockReader:
    """Block outputs of the model behind ``llama`` (a ``llama_cpp.Llama``), averaged over each
    framing's tokens. One read at a time; ``close`` frees the context."""

    def __init__(self, llama: Any, threads: int) -> None:
        self._llama = llama
        self._threads = threads
        self._hidden = int(llama.n_embd())
        self._ggml = _ggml()
        self._wanted = 0  # blocks 0..wanted-1 are read; computing stops after the last of them
        self._rows = 0  # tokens in the batch being read
        self._starts: Any = None  # where each framing starts in it (they follow the prompt)
        self._captured: dict[int, Any] = {}  # per block: each framing's summed outputs
        self._lock = threading.Lock()
        self._context: Any = None
        self._size = 0
        import llama_cpp

        @llama_cpp.ggml_backend_sched_eval_callback
        def observe(tensor: int, ask: bool, _user_data: Any) -> bool:
            name = self._ggml.ggml_get_name(tensor) or b""
            if not name.startswith(BLOCK_OUTPUT):
                return False
            block = int(name[len(BLOCK_OUTPUT) :])
            if ask:
                return block < self._wanted
            import numpy as np

            count = int(self._ggml.ggml_nelements(tensor))
            values = np.empty(count, dtype=np.float32)
            self._ggml.ggml_backend_tensor_get(tensor, values.ctypes.data, 0, count * 4)
            values = values.reshape(-1, self._hidden)
            if len(values) == self._rows:  # averaged at once: a block's rows are not kept
                framings = values[self._starts[0] :]
                self._captured[block] = np.add.reduceat(framings, self._starts - self._starts[0])
            # False after the last block wanted ends the computation there
            return block < self._wanted - 1

        self._observe = observe  # ctypes calls it while the context lives: keep it

    def _context_for(self, tokens: int) -> Any:
        """A context whose one batch holds ``tokens`` (made anew when a question needs more)."""
        import llama_cpp

        if self._context is not None and tokens <= self._size:
            return self._context
        self.close()
        size = max(512, 1 << (tokens - 1).bit_length())
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = params.n_batch = params.n_ubatch = size
        params.n_seq_max = MAX_SEQUENCES
        params.kv_unified = True  # the prompt's cells are shared by every framing's sequence
        params.n_threads = params.n_threads_batch = self._threads
        params.cb_eval = self._observe
        params.cb_eval_user_data = None
        context = llama_cpp.llama_init_from_model(self._llama.model, params)
        if not context:
            raise EmochatError("llama.cpp could not make a context to read the model with")
        self._context, self._size = context, size
        return context

    def read(self, question: FramedQuestion, blocks: int) -> Any:
        """For each framing: blocks ``0..blocks-1``'s outputs averaged over the framing's
        tokens, float32 [framings, blocks, hidden]."""
        import numpy as np

        parts = []
        with self._lock:
            for first in range(0, len(question.framings), MAX_SEQUENCES):
                chunk = question.framings[first : first + MAX_SEQUENCES]
                parts.append(self._read_chunk(question.prompt_ids, chunk, blocks))
        return np.concatenate(parts)

    def _read_chunk(self, prompt: list[int], framings: list[list[int]], blocks: int) -> Any:
        import llama_cpp
        import numpy as np

        total = len(prompt) + sum(len(framing) for framing in framings)
        context = self._context_for(total)
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(context), True)
        batch = llama_cpp.llama_batch_init(total, 0, len(framings))
        try:
            for position, token in enumerate(prompt):
                _put(batch, position, token, position, range(len(framings)))
            index = len(prompt)
            for sequence, framing in enumerate(framings):
                for offset, token in enumerate(framing):
                    _put(batch, index, token, len(prompt) + offset, (sequence,))
                    index += 1
            batch.n_tokens = total
            lengths = np.array([len(framing) for framing in framings])
            self._starts = len(prompt) + np.concatenate(([0], np.cumsum(lengths)[:-1]))
            self._wanted, self._rows, self._captured = blocks, total, {}
            status = llama_cpp.llama_decode(context, batch)
        finally:
            llama_cpp.llama_batch_free(batch)
        if any(block not in self._captured for block in range(blocks)):
            raise EmochatError(f"llama.cpp did not compute the model's blocks (status {status})")
        sums = np.stack([self._captured[block] for block in range(blocks)], axis=1)
        return sums / lengths[:, None, None]  # [framings, blocks, hidden]

    def close(self) -> None:
        if self._context is not None:
            import llama_cpp

            llama_cpp.llama_free(self._context)
            self._context, self._size = None, 0


def _put(batch: Any, index: int, token: int, position: int, sequences: Any) -> None:
    batch.token[index] = token
    batch.pos[index] = position
    count = 0
    for count, sequence in enumerate(sequences, start=1):
        batch.seq_id[index][count - 1] = sequence
    batch.n_seq_id[index] = count
    batch.logits[index] = 0
