"""A conversation as Markdown: front matter with its settings, then every turn with the mood it
was read in and the mood its reply carried. The app's export and ``emochat transcripts show``
and ``export`` write the same text, made inert for terminals."""

from __future__ import annotations

import json
from typing import Any

from emochat.emotion import EmotionVector
from emochat.errors import EmochatError
from emochat.terminal import inert
from emochat.transcripts import Conversation


def _mood(values: Any) -> str:
    try:
        return EmotionVector.from_json(values).describe()
    except (EmochatError, TypeError):
        return "?"


def _yaml_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # JSON scalars and lists are valid YAML


def to_markdown(conversation: Conversation) -> str:
    header = conversation.header
    front = {
        "id": conversation.id,
        "created": header.get("created"),
        "model": header.get("model"),
        "quantization": header.get("quantization"),
        "modulation": header.get("modulation"),
        "detector": header.get("detector"),
        "policy": header.get("policy"),
        "turns": conversation.turns(),
        "final_mood": conversation.final_emotion().describe(),
    }
    lines = ["---", *(f"{key}: {_yaml_value(value)}" for key, value in front.items()), "---", ""]
    lines.append(f"# {conversation.title or 'Conversation'}")
    lines.append("")
    for event in conversation.events:
        kind = event.get("type")
        if kind == "user":
            reading = event.get("reading")
            state = (event.get("state") or {}).get("vector")
            title = "**You**"
            if reading:
                title += f" · read as *{_mood(reading.get('vector'))}*"
            if state:
                title += f" → mood *{_mood(state)}*"
            lines.append(title)
            lines.append("")
            lines.extend(f"> {line}" for line in str(event.get("text", "")).splitlines())
        elif kind == "assistant":
            speed = event.get("tokens_per_second")
            details = f"{event.get('new_tokens', '?')} tokens"
            if speed:
                details += f", {speed} tok/s"
            if event.get("cancelled"):
                details += ", stopped"
            if event.get("continues"):
                details += ", continued"
            if event.get("truncated"):
                details += ", cut at the length limit"
            title = f"**emochat** · *{_mood(event.get('emotion', [0] * 8))}*"
            expressed = event.get("expressed")
            if isinstance(expressed, dict):
                title += f" · read back as *{_mood(expressed.get('vector'))}*"
            lines.append(f"{title} · {details}")
            lines.append("")
            lines.append(str(event.get("text", "")))
        elif kind == "retract":
            what = "the reply above" if event.get("what") == "reply" else "the turn above"
            lines.append(f"*{what[0].upper()}{what[1:]} was taken back ({_retract_reason(event)})*")
        elif kind == "emotion":
            source = event.get("source", "change")
            lines.append(f"*Mood set to {_mood(event.get('emotion', [0] * 8))} ({source})*")
        else:
            continue
        lines.append("")
    return inert("\n".join(lines).rstrip() + "\n")


def _retract_reason(event: dict[str, Any]) -> str:
    if event.get("reason"):
        return f"the reply failed: {event['reason']}"
    return "regenerated" if event.get("what") == "reply" else "edited"
