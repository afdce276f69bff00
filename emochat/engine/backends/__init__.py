"""Choose and open the backend that runs the model.

``auto`` takes llama.cpp for a ``.gguf`` model when llama-cpp-python is installed (the fast
path: the GGUF's own 4-bit weights, no conversion) and transformers for everything else: hub
ids, folders, PEFT/Emotional-Gemma checkpoints, a quantization picked by hand, and CUDA where
the llama.cpp build cannot offload to the GPU.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from emochat.engine.loading import LoadOptions, ModelSource, load_model
from emochat.errors import EmochatError
from emochat.progress import Progress

if TYPE_CHECKING:
    from emochat.engine.backends.base import Backend

__all__ = ["BACKEND_CHOICES", "choose_backend", "open_backend"]

# openai: a model on a server (OpenAI-compatible); the runtime opens it, not open_backend
BACKEND_CHOICES = ("auto", "transformers", "llama.cpp", "openai")


def llama_cpp_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def _llama_cpp_blocker(source: ModelSource, options: LoadOptions) -> str | None:
    """Why llama.cpp cannot run this model as asked, or ``None`` when it can."""
    if source.kind != "gguf":
        name = source.requested or source.display_name
        return f"llama.cpp runs .gguf files, and {name} is a {source.kind} model"
    if source.adapter is not None:
        return "llama.cpp cannot apply a PEFT adapter and its emotion projection"
    if options.quant != "auto":
        return "llama.cpp runs the GGUF's own quantization; other ones need transformers"
    if not llama_cpp_installed():
        return "llama-cpp-python is not installed"
    if options.device.startswith("cuda"):
        from emochat.engine.backends.llamacpp_backend import gpu_offload_available

        if not gpu_offload_available():
            return "this llama-cpp-python was built without GPU support"
    return None


def choose_backend(source: ModelSource, options: LoadOptions, progress: Progress) -> str:
    requested = options.backend
    if requested not in BACKEND_CHOICES:
        raise EmochatError(f"backend must be one of {', '.join(BACKEND_CHOICES)}")
    if requested == "transformers":
        return requested
    blocker = _llama_cpp_blocker(source, options)
    if requested == "llama.cpp":
        if blocker is not None:
            raise EmochatError(f"cannot use the llama.cpp backend: {blocker}")
        return requested
    if blocker is None:
        return "llama.cpp"
    if source.kind == "gguf" and not llama_cpp_installed():
        progress(
            "llama-cpp-python is not installed, so the GGUF runs through transformers "
            '(pip install "emochat[llamacpp]" for the fast engine)'
        )
    return "transformers"


def open_backend(source: ModelSource, options: LoadOptions, progress: Progress) -> Backend:
    """Load the model on the backend ``options`` ask for (or the best one, for ``auto``)."""
    if choose_backend(source, options, progress) == "llama.cpp":
        from emochat.engine.backends.llamacpp_backend import LlamaCppBackend

        if options.dtype != "auto":
            progress(f"llama.cpp computes in the GGUF's own types; dtype {options.dtype} is unused")
        return LlamaCppBackend.load(source, options, progress)
    from emochat.engine.backends.transformers_backend import TransformersBackend

    return TransformersBackend(load_model(source, options, progress))
