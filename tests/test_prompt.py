import pytest
from transformers import AutoTokenizer

from emochat.engine.prompt import build_prompt_ids, fallback_prompt, render_prompt


def test_chat_template_is_used_when_present(tiny_model_dir) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    text, templated = render_prompt(tokenizer, [{"role": "user", "content": "Hi"}])
    assert templated
    assert text == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def test_plain_fallback_without_a_template(tiny_model_dir) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = None
    messages = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}]
    text, templated = render_prompt(tokenizer, messages)
    assert not templated
    assert text == fallback_prompt(messages) == "System: Be kind.\nUser: Hi\nAssistant:"


def test_a_template_that_rejects_system_gets_it_folded_into_the_user_turn(tiny_model_dir) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}"
        "{{ raise_exception('no system role') }}{% endif %}[{{ m['content'] }}]{% endfor %}"
    )
    messages = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}]
    text, templated = render_prompt(tokenizer, messages)
    assert templated
    assert text == "[Be kind.\n\nHi]"


def _history(turns: int) -> list[dict]:
    messages = [{"role": "system", "content": "You are calm."}]
    for index in range(turns):
        messages.append({"role": "user", "content": f"question {index} about the sunny beach"})
        messages.append({"role": "assistant", "content": f"answer {index} about the rain"})
    messages.append({"role": "user", "content": "the newest question"})
    return messages


def test_history_is_trimmed_from_the_oldest_turn(tiny_model_dir) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    messages = _history(12)
    full = build_prompt_ids(tokenizer, messages, budget=10_000)
    budget = len(full) // 2
    trimmed = build_prompt_ids(tokenizer, messages, budget=budget)
    text = tokenizer.decode(trimmed)
    assert len(trimmed) <= budget
    assert "You are calm." in text
    assert "the newest question" in text
    assert "question 0 " not in text
    assert "question 11 " in text
    assert text.split("<|im_start|>")[2].startswith("user")


def test_an_overlong_newest_message_keeps_its_end(tiny_model_dir) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    long_message = "rain " * 300 + "THE END"
    ids = build_prompt_ids(tokenizer, [{"role": "user", "content": long_message}], budget=60)
    assert len(ids) <= 60
    assert "THE END" in tokenizer.decode(ids)


def test_a_reply_to_continue_ends_the_prompt_inside_it(tiny_model_dir) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    messages = [
        {"role": "user", "content": "Count"},
        {"role": "assistant", "content": "one two"},
    ]
    text, templated = render_prompt(tokenizer, messages)
    assert templated
    assert text == "<|im_start|>user\nCount<|im_end|>\n<|im_start|>assistant\none two"
    tokenizer.chat_template = None
    assert render_prompt(tokenizer, messages)[0] == "User: Count\nAssistant: one two"


class CountingTokenizer:
    """The tiny model's tokenizer, counting the characters it is asked to encode."""

    def __init__(self, tokenizer) -> None:
        self._tokenizer = tokenizer
        self.chat_template = tokenizer.chat_template
        self.characters = 0

    def apply_chat_template(self, messages, **kwargs):
        return self._tokenizer.apply_chat_template(messages, **kwargs)

    def __call__(self, text, **kwargs):
        self.characters += len(text)
        return self._tokenizer(text, **kwargs)

    def decode(self, ids):
        return self._tokenizer.decode(ids)


@pytest.mark.parametrize("turns", [300, 1200])
def test_a_long_history_is_encoded_in_linear_work(tiny_model_dir, turns: int) -> None:
    tokenizer = CountingTokenizer(AutoTokenizer.from_pretrained(tiny_model_dir))
    messages = _history(turns)
    history_characters = sum(len(m["content"]) for m in messages)
    ids = build_prompt_ids(tokenizer, messages, budget=200)
    assert len(ids) <= 200
    assert "the newest question" in tokenizer._tokenizer.decode(ids)
    # each message once, plus the window that fits: not the history once per dropped turn
    assert tokenizer.characters < 2 * history_characters
