"""The llama.cpp backend: a ``.gguf`` model run natively by llama-cpp-python (no conversion, no
float32 copy), steered by llama.cpp's control vectors. Its key/value cache keeps the common
prefix between replies (``Llama.generate`` matches it; :class:`PrefixCache` bounds it)."""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emochat.engine.backends.base import Generation, TokenBackend
from emochat.engine.directions import EmotionDirections
from emochat.engine.generation import common_prefix_length
from emochat.engine.llama_process import open_llama, route_llama_logs
from emochat.engine.loading import (
    LoadOptions,
    ModelInfo,
    ModelSource,
    default_threads,
    prompt_threads,
)
from emochat.engine.modulation.base import Modulator
from emochat.engine.modulation.control_vector import ControlVectorModulator
from emochat.errors import EmochatError
from emochat.progress import Progress

if TYPE_CHECKING:
    from emochat.engine.framings import FramedQuestion
    from emochat.engine.llama_blocks import BlockReader

LLAMA_CPP_INSTALL = 'pip install "emochat[llamacpp]"'
# The context is capped: llama.cpp allocates the whole key/value cache up front, and a model
# trained for 128k tokens would take gigabytes for it. 4096 tokens of SmolLM2 take 94 MiB.
MAX_CONTEXT = 4096


class GGUFTokenizer:
    """The few Hugging Face tokenizer calls emochat makes (chat template, encode, decode),
    answered from the GGUF's own vocabulary and template, so prompts are built the same way on
    both backends without loading transformers."""

    def __init__(self, llama: Any) -> None:
        self._llama = llama
        self.chat_template: str | None = llama.metadata.get("tokenizer.chat_template")
        self.eos_token_id = int(llama.token_eos())
        self.bos_token = self._piece(llama.token_bos())
        self.eos_token = self._piece(self.eos_token_id)
        self._formatters: dict[bool, Any] = {}

    def _piece(self, token: int) -> str:
        if token < 0:
            return ""
        return self._llama.detokenize([token], special=True).decode("utf-8", errors="replace")

    def apply_chat_template(
        self, messages: list[Any], add_generation_prompt: bool = True, tokenize: bool = False
    ) -> str:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        if self.chat_template is None:
            raise ValueError("this model has no chat template")
        formatter = self._formatters.get(add_generation_prompt)
        if formatter is None:
            formatter = self._formatters[add_generation_prompt] = Jinja2ChatFormatter(
                self.chat_template,
                eos_token=self.eos_token,
                bos_token=self.bos_token,
                add_generation_prompt=add_generation_prompt,
            )
        return str(formatter(messages=messages).prompt)

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        ids = self._llama.tokenize(text.encode("utf-8"), add_bos=add_special_tokens, special=True)
        return {"input_ids": list(ids)}

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        data = self._llama.detokenize(list(ids), special=not skip_special_tokens)
        return data.decode("utf-8", errors="replace")


def _quantization_name(llama: Any) -> str:
    """The GGUF's weight type as llama.cpp describes the model ("llama 135M Q4_1" → "Q4_1")."""
    import llama_cpp

    buffer = ctypes.create_string_buffer(256)
    llama_cpp.llama_model_desc(llama.model, buffer, len(buffer))
    return buffer.value.decode("utf-8", errors="replace").split(" ")[-1] or "gguf"


def _why(source: ModelSource, log: object) -> str:
    """What a GGUF that llama.cpp would not load is, as far as its header tells."""
    from emochat.engine.stores.gguf_header import read_summary

    try:
        architecture = read_summary(Path(source.location)).architecture
    except EmochatError:
        architecture = "?"
    if architecture == "?":
        return f"not a GGUF model it can read (its log: {log})"
    return f"a {architecture} model this llama.cpp cannot run, or a damaged file (its log: {log})"


def gpu_offload_available() -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


class LlamaCppBackend(TokenBackend):
    kind = "llama.cpp"
    # Measured: a prompt's last-token logits were bit-identical whether its shared prefix was
    # kept from another prompt or computed afresh (20 of 20 pairs; tests/test_backends.py).
    exact_prefix = True

    def __init__(self, llama: Any, info: ModelInfo, read_threads: int) -> None:
        super().__init__()
        import llama_cpp

        self._llama = llama
        self._vocab = llama_cpp.llama_model_get_vocab(llama.model)
        self._read_threads = read_threads
        self.info = info
        self.tokenizer = GGUFTokenizer(llama)
        self._reader: BlockReader | None = None

    @classmethod
    def load(cls, source: ModelSource, options: LoadOptions, progress: Progress) -> LlamaCppBackend:
        try:
            import llama_cpp
        except ImportError as error:
            raise EmochatError(
                f"the llama.cpp backend needs llama-cpp-python: {LLAMA_CPP_INSTALL}"
            ) from error
        log = route_llama_logs()
        threads = options.threads or default_threads()
        on_gpu = options.device != "cpu" and gpu_offload_available()
        device = "gpu" if on_gpu else "cpu"
        progress(f"Loading {source.display_name} (llama.cpp, {device})…")
        try:
            llama = open_llama(
                source.location,
                n_ctx=MAX_CONTEXT,
                n_threads=threads,
                n_threads_batch=options.threads or prompt_threads(),
                n_gpu_layers=-1 if on_gpu else 0,
            )
        except (ValueError, RuntimeError, OSError) as error:
            raise EmochatError(
                f"llama.cpp cannot load {source.location}: {_why(source, log)}"
            ) from error
        trained = int(llama_cpp.llama_model_n_ctx_train(llama.model))
        info = ModelInfo(
            name=source.display_name,
            source=source.location,
            quant=_quantization_name(llama),
            device=device,
            dtype="gguf",
            n_layers=int(llama_cpp.llama_model_n_layer(llama.model)),
            hidden_size=int(llama.n_embd()),
            context_length=min(int(llama.n_ctx()), trained) if trained > 0 else llama.n_ctx(),
            backend=cls.kind,
            architecture=str(llama.metadata.get("general.architecture", "")),
        )
        return cls(llama, info, options.threads or prompt_threads())

    def _modulation_target(self) -> Any:
        return self._llama

    def steering(self, directions: EmotionDirections, intensity: float) -> Modulator:
        return ControlVectorModulator(directions, intensity)

    # a second context on the same weights: replies on the first go on meanwhile
    reads_beside_replies = True

    def read_framings(self, question: FramedQuestion, blocks: int) -> Any:
        """Read natively, from the GGUF's own weights (no transformers copy)."""
        from emochat.engine.llama_blocks import BlockReader

        if self._reader is None:
            self._reader = BlockReader(self._llama, self._read_threads)
        return self._reader.read(question, blocks)

    def _read_prompt(self, prompt_ids: list[int], keep: int) -> int:
        """Keep the cached tokens that match ``prompt_ids`` (at most ``keep``), then evaluate
        the rest but the last token with the control vector suspended: only the reply is
        steered, from the position that chooses its first token on. How many were kept."""
        llama = self._llama
        cached = [int(token) for token in llama.input_ids[: min(llama.n_tokens, keep)]]
        llama.n_tokens = reused = common_prefix_length(cached, prompt_ids)
        if reused < len(prompt_ids) - 1:
            with self.modulator.prompt_phase():
                llama.eval(prompt_ids[reused:-1])
        return reused

    def _cached(self) -> list[int]:
        return [int(token) for token in self._llama.input_ids[: self._llama.n_tokens]]

    def _run(self, job: Generation) -> tuple[int, list[int]]:
        import llama_cpp

        llama, settings = self._llama, job.settings
        reused = self._read_prompt(job.prompt_ids, job.keep)
        seed = settings.seed if settings.seed is not None else llama_cpp.LLAMA_DEFAULT_SEED
        llama.set_seed(seed)
        # min-p and typical-p off: the same sampling chain as transformers' generate().
        tokens = llama.generate(
            job.prompt_ids,
            temp=settings.temperature,
            top_k=settings.top_k,
            top_p=settings.top_p,
            min_p=0.0,
            typical_p=1.0,
            repeat_penalty=settings.repetition_penalty,
        )
        for produced, token in enumerate(tokens, start=1):
            if llama_cpp.llama_vocab_is_eog(self._vocab, token) and not settings.ignore_eos:
                break
            job.emit(int(token))
            if produced >= settings.max_new_tokens or job.cancel.is_set():
                break
        tokens.close()
        return reused, self._cached()
