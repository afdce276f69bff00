"""Training examples: JSONL records of ``{"messages": [...], "vector": [8 floats]}`` (the loss
is on the last assistant message) or ``{"text": "...", "vector": [...]}`` (the loss is on all of
it), tokenized once, and a collator that pads a batch and carries each example's vector."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emochat.emotion import N_AXES, EmotionSpecError, EmotionVector
from emochat.engine.prompt import render_prompt
from emochat.errors import EmochatError
from emochat.textfiles import read_text

IGNORE = -100  # label of a position the loss skips


@dataclass(frozen=True)
class Example:
    input_ids: list[int]
    labels: list[int]
    vector: tuple[float, ...]


def _vector(record: dict[str, Any], where: str) -> tuple[float, ...]:
    raw = record.get("vector")
    if not isinstance(raw, list) or len(raw) != N_AXES:
        raise EmochatError(f"{where}: 'vector' must be a list of {N_AXES} numbers")
    try:
        return tuple(EmotionVector.from_json(raw))
    except (EmotionSpecError, TypeError, ValueError) as error:
        raise EmochatError(f"{where}: {error}") from error


def _tokens(tokenizer: Any, record: dict[str, Any], where: str) -> tuple[list[int], int]:
    """The example's ids and how many leading ones carry no loss."""
    if isinstance(record.get("text"), str):
        ids = tokenizer(record["text"], add_special_tokens=True)["input_ids"]
        return list(ids), 0
    messages = record.get("messages")
    if (
        not isinstance(messages, list)
        or not messages
        or not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages)
        or messages[-1].get("role") != "assistant"
    ):
        raise EmochatError(f"{where}: needs 'text', or 'messages' ending with an assistant message")
    prompt, templated = render_prompt(tokenizer, messages[:-1])
    if templated:  # the template's own end-of-turn closes the reply
        full = tokenizer.apply_chat_template(messages, tokenize=False)
    else:
        full = render_prompt(tokenizer, messages)[0] + (tokenizer.eos_token or "")
    if not full.startswith(prompt):
        raise EmochatError(f"{where}: the chat template does not extend the prompt")
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    reply_ids = tokenizer(full[len(prompt) :], add_special_tokens=False)["input_ids"]
    return list(prompt_ids) + list(reply_ids), len(prompt_ids)


def load_examples(path: Path, tokenizer: Any, max_length: int) -> list[Example]:
    """Every record of ``path``, cut to ``max_length`` tokens; a record whose target would be
    cut away entirely is an error, not a silent skip."""
    examples = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}: line {number}"
        try:
            record = json.loads(line)
        except ValueError as error:
            raise EmochatError(f"{where} is not JSON: {error}") from error
        if not isinstance(record, dict):
            raise EmochatError(f"{where} is not a JSON object")
        vector = _vector(record, where)
        ids, unlearned = _tokens(tokenizer, record, where)
        ids = ids[:max_length]
        if unlearned >= len(ids) - 1:
            raise EmochatError(f"{where}: nothing to learn within {max_length} tokens")
        labels = [IGNORE] * unlearned + ids[unlearned:]
        examples.append(Example(ids, labels, vector))
    if not examples:
        raise EmochatError(f"{path} holds no examples")
    return examples


def collate(examples: list[Example], pad_id: int) -> dict[str, Any]:
    """Right-padded tensors: input_ids, attention_mask, labels (padding ignored) and vectors."""
    import torch

    width = max(len(example.input_ids) for example in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        length = len(example.input_ids)
        ids[row, :length] = torch.tensor(example.input_ids)
        labels[row, :length] = torch.tensor(example.labels)
        mask[row, :length] = 1
    vectors = torch.tensor([example.vector for example in examples], dtype=torch.float32)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "vectors": vectors}
