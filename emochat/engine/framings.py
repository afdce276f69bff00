"""The contrast pairs directions are measured from (``data/steering_prompts.json``), as a
model's tokenizer reads them: each question templated as a chat, and each framing sentence as
the start of the assistant's reply."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from emochat.engine.prompt import render_prompt


def load_prompt_set() -> dict[str, Any]:
    text = resources.files("emochat").joinpath("data/steering_prompts.json").read_text("utf-8")
    return json.loads(text)


@dataclass(frozen=True)
class FramedQuestion:
    """One question as the model reads it, and the framings that answer it: each framing's own
    tokens (they follow ``prompt_ids``), with the pole it speaks for."""

    prompt_ids: list[int]
    framings: list[list[int]]
    poles: list[str]


def framed_questions(tokenizer: Any, prompt_set: dict[str, Any]) -> list[FramedQuestion]:
    """Every question of the prompt set, templated as a chat, with every framing tokenized as
    the start of the assistant's reply."""
    questions = []
    for question in prompt_set["questions"]:
        prompt, _ = render_prompt(tokenizer, [{"role": "user", "content": question}])
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        framings, poles = [], []
        for pole, texts in prompt_set["framings"].items():
            for text in texts:
                full = tokenizer(prompt + text, add_special_tokens=False)["input_ids"]
                if full[: len(prompt_ids)] == prompt_ids:
                    own = full[len(prompt_ids) :]
                else:  # the tokenizer merged across the seam: read the framing on its own
                    own = tokenizer(text, add_special_tokens=False)["input_ids"]
                framings.append(list(own))
                poles.append(pole)
        questions.append(FramedQuestion(list(prompt_ids), framings, poles))
    return questions
