"""The model being trained: a base causal LM with LoRA adapters, and an emotion projection whose
output (times 3, as Emotional-Gemma does) is added to every token embedding of each example,
from that example's own vector. Saved in exactly the three files emochat loads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from emochat.engine.modulation.projection import EMBEDDING_SCALE, PROJECTION_FILE, new_projection
from emochat.errors import EmochatError

ADAPTER_WEIGHTS = "adapter_model.safetensors"


class EmotionTrainee:
    """LoRA-wrapped ``model`` plus a trainable projection hooked onto its input embeddings."""

    def __init__(self, model: Any, layout: str, lora_r: int, hidden_size: int, seed: int) -> None:
        import torch
        from peft import LoraConfig, get_peft_model

        torch.manual_seed(seed)  # the projection's and the adapters' first values
        config = LoraConfig(
            r=lora_r,
            lora_alpha=2 * lora_r,
            lora_dropout=0.0,  # no randomness in a step, so a resumed run repeats its losses
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )
        self.model = get_peft_model(model, config)
        device = next(model.parameters()).device
        self.projection = new_projection(layout, hidden_size).to(device)
        # Its output layer starts at zero, as LoRA's B does: every vector begins as the base
        # model (a random 8 → h map, times 3, would outweigh unscaled token embeddings).
        last = self.projection if layout == "linear" else self.projection[-1]
        torch.nn.init.zeros_(last.weight)
        if last.bias is not None:
            torch.nn.init.zeros_(last.bias)
        self.layout = layout
        self._vectors: Any = None
        embeddings = self.model.get_input_embeddings()
        self._handle = embeddings.register_forward_hook(self._add_emotion)

    def _add_emotion(self, module: Any, args: Any, output: Any) -> Any:
        if self._vectors is None:
            return None
        offset = EMBEDDING_SCALE * self.projection(self._vectors.to(output.device))
        return output + offset[:, None, :].to(output.dtype)

    def loss(self, batch: dict[str, Any]) -> Any:
        """Mean cross-entropy over the batch's target tokens, each example under its vector."""
        device = next(self.projection.parameters()).device
        self._vectors = batch["vectors"].to(device)
        try:
            output = self.model(
                input_ids=batch["input_ids"].to(device),
                attention_mask=batch["attention_mask"].to(device),
                labels=batch["labels"].to(device),
            )
        finally:
            self._vectors = None
        return output.loss

    def lora_parameters(self) -> list[Any]:
        return [
            p for name, p in self.model.named_parameters() if p.requires_grad and "lora_" in name
        ]

    def trainable_state(self) -> dict[str, Any]:
        """Every trained tensor (adapters and projection), for checkpoints."""
        state = {
            f"lora.{name}": p.detach().cpu().clone()
            for name, p in self.model.named_parameters()
            if p.requires_grad
        }
        state.update({f"projection.{k}": v.cpu() for k, v in self.projection.state_dict().items()})
        return state

    def load_trainable_state(self, state: dict[str, Any]) -> None:
        import torch

        with torch.no_grad():
            parameters = dict(self.model.named_parameters())
            for key, value in state.items():
                if key.startswith("lora."):
                    parameters[key.removeprefix("lora.")].copy_(value)
        self.projection.load_state_dict(
            {
                k.removeprefix("projection."): v
                for k, v in state.items()
                if k.startswith("projection.")
            }
        )

    def save(self, folder: Path, base: str) -> None:
        """The adapter (float16) and the projection, as emochat's ``--model FOLDER`` loads them,
        with ``base`` as the adapter's base model."""
        import copy

        import torch
        from peft import get_peft_model_state_dict
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        try:
            adapter = get_peft_model_state_dict(self.model)
            halved = {k: v.detach().to(torch.float16).contiguous() for k, v in adapter.items()}
            save_file(halved, str(folder / ADAPTER_WEIGHTS), metadata={"format": "pt"})
            config = copy.copy(self.model.peft_config["default"])
            config.base_model_name_or_path = base
            config.save_pretrained(str(folder))
            torch.save(
                {k: v.detach().cpu() for k, v in self.projection.state_dict().items()},
                folder / PROJECTION_FILE,
            )
        except OSError as error:
            raise EmochatError(f"cannot save the checkpoint to {folder}: {error}") from error
