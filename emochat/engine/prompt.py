"""Turn a chat history into prompt token ids that fit the model's context window."""

from __future__ import annotations

from typing import Any, TypedDict


class ChatMessage(TypedDict):
    role: str  # "system" | "user" | "assistant"
    content: str


def render_prompt(tokenizer: Any, messages: list[ChatMessage]) -> tuple[str, bool]:
    """The prompt text, and whether it came from the model's chat template (which then carries
    the special tokens itself). A history ending with the assistant is a reply to continue: the
    prompt then ends inside that reply, where the model left it."""
    continuing = bool(messages) and messages[-1]["role"] == "assistant"
    if getattr(tokenizer, "chat_template", None):
        try:
            text = tokenizer.apply_chat_template(
                messages, add_generation_prompt=not continuing, tokenize=False
            )
            return (_cut_after_reply(text, messages[-1]["content"]) if continuing else text), True
        except Exception:
            # Some templates (older Gemma, Mistral) refuse a system role: fold it into the first
            # user message and try once more before falling back to plain text.
            if messages and messages[0]["role"] == "system":
                return render_prompt(tokenizer, _fold_system(messages))
    return fallback_prompt(messages), False


def _cut_after_reply(text: str, reply: str) -> str:
    """The templated prompt up to the end of the unfinished reply (what transformers'
    ``continue_final_message`` does, for every tokenizer): its end-of-turn marker goes."""
    reply = reply.rstrip()
    position = text.rfind(reply)
    if not reply or position < 0:
        raise ValueError("the chat template rewrote the reply; it cannot be continued")
    return text[: position + len(reply)]


def _fold_system(messages: list[ChatMessage]) -> list[ChatMessage]:
    system, rest = messages[0], list(messages[1:])
    if rest and rest[0]["role"] == "user":
        rest[0] = {"role": "user", "content": f"{system['content']}\n\n{rest[0]['content']}"}
        return rest
    return [{"role": "user", "content": system["content"]}, *rest]


def fallback_prompt(messages: list[ChatMessage]) -> str:
    """A plain transcript for base models without a chat template."""
    names = {"system": "System", "user": "User", "assistant": "Assistant"}
    lines = [f"{names.get(m['role'], m['role'].title())}: {m['content']}" for m in messages]
    if messages and messages[-1]["role"] == "assistant":
        return "\n".join(lines)
    return "\n".join([*lines, "Assistant:"])


def _encode(tokenizer: Any, messages: list[ChatMessage]) -> list[int]:
    text, templated = render_prompt(tokenizer, messages)
    return list(tokenizer(text, add_special_tokens=not templated)["input_ids"])


# Tokens a chat template adds around each message (role markers, separators), for estimating
# which turns fit before encoding them; the estimate is checked by encoding the result.
TEMPLATE_TOKENS_PER_MESSAGE = 8


def _window_start(tokenizer: Any, turns: list[ChatMessage], room: int) -> int:
    """The first turn of the longest recent stretch whose estimated length fits ``room``:
    each message is encoded once, so a long history costs linear work."""
    start = len(turns) - 1
    used = 0
    for index in range(len(turns) - 1, -1, -1):
        content_ids = tokenizer(turns[index]["content"], add_special_tokens=False)["input_ids"]
        used += len(content_ids) + TEMPLATE_TOKENS_PER_MESSAGE
        if used > room and index < len(turns) - 1:
            break
        start = index
    return start


def _opening_with_user(turns: list[ChatMessage]) -> list[ChatMessage]:
    """A history should open with the user speaking (the newest message always stays)."""
    while len(turns) > 1 and turns[0]["role"] != "user":
        turns = turns[1:]
    return turns


def build_prompt_ids(tokenizer: Any, messages: list[ChatMessage], budget: int) -> list[int]:
    """Encode ``messages``, dropping the oldest turns (never the system prompt or the newest
    message) until the prompt fits in ``budget`` tokens; a newest message that alone is too long
    keeps its end."""
    if budget < 1:
        raise ValueError("the prompt budget must be at least one token")
    system = [m for m in messages[:1] if m["role"] == "system"]
    turns = list(messages[len(system) :])
    if turns:
        system_size = len(_encode(tokenizer, system)) if system else 0
        turns = _opening_with_user(turns[_window_start(tokenizer, turns, budget - system_size) :])
    while True:
        ids = _encode(tokenizer, system + turns)
        if len(ids) <= budget or len(turns) <= 1:
            break
        turns = _opening_with_user(turns[1:])
    if len(ids) <= budget:
        return ids
    last = turns[-1]
    overhead = len(_encode(tokenizer, [*system, {"role": last["role"], "content": ""}]))
    content_ids = tokenizer(last["content"], add_special_tokens=False)["input_ids"]
    keep = max(1, budget - overhead)
    shortened = tokenizer.decode(content_ids[-keep:])
    ids = _encode(tokenizer, [*system, {"role": last["role"], "content": shortened}])
    return ids[-budget:]
