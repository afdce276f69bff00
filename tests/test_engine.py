import threading

import pytest

from emochat.emotion import EmotionVector
from emochat.engine.generation import IncrementalDecoder, SamplingSettings
from emochat.errors import EmochatError
from tests.conftest import transformers_backend

HELLO = [{"role": "user", "content": "Hello there, how are you feeling today?"}]


def test_loading_a_folder_reports_the_model(tiny_loaded) -> None:
    info = tiny_loaded.info
    assert (info.n_layers, info.hidden_size, info.context_length) == (4, 64, 256)
    assert (info.quant, info.device, info.dtype) == ("none", "cpu", "float32")


def test_reply_streams_pieces_that_add_up_to_the_decoded_tokens(tiny_loaded) -> None:
    engine = transformers_backend(tiny_loaded)
    reply = engine.reply(HELLO, EmotionVector(), SamplingSettings(max_new_tokens=24, seed=1))
    pieces = list(reply)
    assert len(pieces) > 1
    decoded = tiny_loaded.tokenizer.decode(reply.token_ids, skip_special_tokens=True)
    assert "".join(pieces) == decoded
    assert reply.text == decoded.strip()
    assert reply.stats.new_tokens == len(reply.token_ids)
    assert 1 <= reply.stats.new_tokens <= 24
    assert not reply.stats.cancelled


def test_seed_makes_sampling_repeatable(tiny_loaded) -> None:
    engine = transformers_backend(tiny_loaded)
    settings = SamplingSettings(max_new_tokens=16, seed=7, temperature=1.0)
    first = engine.reply(HELLO, EmotionVector(), settings)
    first.finish()
    second = engine.reply(HELLO, EmotionVector(), settings)
    second.finish()
    other = engine.reply(HELLO, EmotionVector(), SamplingSettings(max_new_tokens=16, seed=8))
    other.finish()
    assert first.token_ids == second.token_ids
    assert first.token_ids != other.token_ids


def test_cancel_stops_generation_within_a_token(tiny_loaded) -> None:
    engine = transformers_backend(tiny_loaded)
    # The random model never emits its end token on purpose, so only cancel can stop it early.
    reply = engine.reply(HELLO, EmotionVector(), SamplingSettings(max_new_tokens=200, seed=2))
    for count, _ in enumerate(reply, start=1):
        if count == 3:
            reply.cancel()
    assert reply.stats.cancelled
    # Tokens already queued when cancel came still count, so the bound allows a backlog.
    assert reply.stats.new_tokens < 100
    # The engine is free again for the next turn.
    engine.reply(HELLO, EmotionVector(), SamplingSettings(max_new_tokens=2)).finish()


def test_one_reply_at_a_time(tiny_loaded) -> None:
    engine = transformers_backend(tiny_loaded)
    reply = engine.reply(HELLO, EmotionVector(), SamplingSettings(max_new_tokens=50))
    with pytest.raises(EmochatError, match="already"):
        engine.reply(HELLO, EmotionVector())
    reply.cancel()
    reply.finish()


def test_cancel_from_another_thread(tiny_loaded) -> None:
    engine = transformers_backend(tiny_loaded)
    reply = engine.reply(HELLO, EmotionVector(), SamplingSettings(max_new_tokens=200))
    timer = threading.Timer(0.05, reply.cancel)
    timer.start()
    reply.finish()
    assert reply.stats.cancelled
    assert reply.stats.new_tokens < 200


def test_incremental_decoder_never_splits_characters(tiny_loaded) -> None:
    tokenizer = tiny_loaded.tokenizer
    text = "Café naïve 日本語 🙂 done"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    decoder = IncrementalDecoder(tokenizer)
    pieces = [decoder.push(token) for token in ids]
    pieces.append(decoder.flush())
    assert "".join(pieces) == text
    assert not any("\ufffd" in piece for piece in pieces)


@pytest.mark.parametrize(
    "bad",
    [
        {"temperature": -1},
        {"top_p": 0},
        {"max_new_tokens": 0},
        {"repetition_penalty": 0},
    ],
)
def test_bad_sampling_settings_are_refused(bad: dict) -> None:
    with pytest.raises(EmochatError):
        SamplingSettings(**bad)


def test_greedy_decoding_when_temperature_is_zero() -> None:
    assert SamplingSettings(temperature=0).generate_kwargs()["do_sample"] is False


def test_finishing_a_finished_reply_returns_at_once(tiny_loaded) -> None:
    reply = transformers_backend(tiny_loaded).reply(
        HELLO, EmotionVector(), SamplingSettings(max_new_tokens=5)
    )
    text = reply.finish()
    seconds = reply.stats.seconds
    assert reply.finish() == text  # would wait forever on an exhausted queue
    assert list(reply) == []
    assert reply.stats.seconds == seconds


def test_the_prefix_rule_keeps_a_continuation_and_an_exact_unsteered_prefix() -> None:
    from emochat.engine.generation import PrefixCache

    # A reply to prompt [1 2 3 4] (its last token read steered) wrote 5 and 6, steered.
    cache = PrefixCache().after([1, 2, 3, 4, 5, 6], prompt_length=4, reused=0)
    assert cache.unsteered == 3
    assert cache.reusable([1, 2, 3, 4, 5, 6, 7, 8]) == 6  # the next turn: all of it
    assert cache.reusable([1, 2, 9, 9]) == 0  # another prompt where reuse is not exact
    assert cache.reusable([1, 2, 9, 9], exact=True) == 2  # the shared, unsteered start
    assert cache.reusable([1, 2, 3, 9], exact=True) == 3  # not the steered last token
    assert cache.reusable([1, 2, 3, 4], exact=True) == 3  # the same prompt again (a replay)
    assert cache.reusable([1, 2, 3], exact=True) == 2  # one token is always computed
    # The next turn kept the steered reply: its unsteered start stays where it was.
    turn = cache.after([1, 2, 3, 4, 5, 6, 7, 8, 10], prompt_length=8, reused=6)
    assert turn.unsteered == 3
    # Another conversation kept only the unsteered start, and read the rest unsteered.
    other = turn.after([1, 2, 9, 9, 11], prompt_length=4, reused=2)
    assert other.unsteered == 3
