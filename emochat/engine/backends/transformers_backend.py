"""The transformers backend: any causal LM that transformers loads (hub id, folder, converted
GGUF, PEFT adapter), steered by forward hooks, with ``generate`` in a worker thread. The past
key/values of one reply are kept for the next, cropped to the prefix they share."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from emochat.engine.backends.base import Generation, TokenBackend
from emochat.engine.directions import EmotionDirections
from emochat.engine.generation import Emit
from emochat.engine.layers import cache_argument
from emochat.engine.loading import LoadedModel
from emochat.engine.modulation.base import Modulator
from emochat.engine.modulation.projection import PROJECTION_FILE
from emochat.engine.modulation.steering import SteeringModulator
from emochat.errors import EmochatError

if TYPE_CHECKING:
    from emochat.engine.framings import FramedQuestion

OUT_OF_MEMORY = "out of memory while generating; a 4-bit model needs about a quarter of it"


class _TokenStreamer:
    """The streamer protocol of ``generate``: first the prompt ids, then one tensor a step."""

    def __init__(self, emit: Emit) -> None:
        self._emit = emit
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        for token_id in value.reshape(-1).tolist():
            self._emit(int(token_id))

    def end(self) -> None:
        pass


class TransformersBackend(TokenBackend):
    kind = "transformers"

    def __init__(self, loaded: LoadedModel) -> None:
        super().__init__()
        self.loaded = loaded
        self.info = loaded.info
        self.tokenizer = loaded.tokenizer
        self._cache: Any = None
        self._cache_argument = cache_argument(loaded.model)

    @property
    def model(self) -> Any:
        return self.loaded.model

    def _modulation_target(self) -> Any:
        return self.loaded.model

    def steering(self, directions: EmotionDirections, intensity: float) -> Modulator:
        return SteeringModulator(directions, intensity)

    def read_framings(self, question: FramedQuestion, blocks: int) -> Any:
        from emochat.engine.torch_blocks import read_framings

        with self.unmodulated():
            return read_framings(self.loaded.model, question, blocks)

    @property
    def projection_dir(self) -> Path | None:
        folder = self.loaded.adapter_dir
        return folder if folder is not None and (folder / PROJECTION_FILE).is_file() else None

    def _past(self, keep: int) -> Any:
        """The kept cache cut back to its first ``keep`` tokens, or ``None`` to start afresh."""
        cache, self._cache = self._cache, None
        if cache is None or keep == 0 or not getattr(cache, "is_croppable", True):
            return None
        surplus = cache.get_seq_length() - keep
        if surplus < 0:
            return None
        try:
            cache.crop(-surplus)  # a negative count removes that many from the end
        except (ValueError, RuntimeError, NotImplementedError):
            return None
        return cache

    @staticmethod
    def _returned_cache(output: Any) -> Any:
        cache = getattr(output, "cache", None)
        return cache if cache is not None else getattr(output, "past_key_values", None)

    def _input(self, ids: list[int]) -> Any:
        import torch

        return torch.tensor([ids], device=next(self.model.parameters()).device)

    def _run(self, job: Generation) -> tuple[int, list[int]]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        class StopOnCancel(StoppingCriteria):
            def __call__(self, ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((ids.shape[0],), job.cancel.is_set(), dtype=torch.bool)

        input_ids = self._input(job.prompt_ids)
        past = self._past(job.keep)
        if job.settings.seed is not None:
            torch.manual_seed(job.settings.seed)
        try:
            with torch.inference_mode():
                output = self.model.generate(
                    input_ids=input_ids,
                    attention_mask=torch.ones_like(input_ids),
                    streamer=_TokenStreamer(job.emit),
                    stopping_criteria=StoppingCriteriaList([StopOnCancel()]),
                    pad_token_id=self._pad_token_id(),
                    return_dict_in_generate=True,
                    **{self._cache_argument: past},
                    **job.settings.generate_kwargs(),
                )
        except torch.cuda.OutOfMemoryError as error:
            raise EmochatError(OUT_OF_MEMORY) from error
        reused = job.keep if past is not None else 0
        self._cache = self._returned_cache(output)
        if self._cache is None:
            return reused, []
        return reused, output.sequences[0].tolist()[: self._cache.get_seq_length()]

    def _pad_token_id(self) -> int | None:
        tokenizer = self.tokenizer
        if tokenizer.pad_token_id is not None:
            return int(tokenizer.pad_token_id)
        return None if tokenizer.eos_token_id is None else int(tokenizer.eos_token_id)
