"""One behaviour, every backend: each test runs against the transformers backend (int4, as a CPU
user gets it) and the llama.cpp backend, both on the real default model, steered."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from emochat.emotion import EmotionVector
from emochat.engine.directions import find_directions
from emochat.engine.generation import SamplingSettings
from emochat.engine.modulation import NoModulation
from emochat.engine.prompt import build_prompt_ids
from tests.conftest import next_token_logits, transformers_backend

pytestmark = pytest.mark.slow

HELLO = [{"role": "user", "content": "How are you feeling today?"}]
STORY = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]
GREEDY = SamplingSettings(temperature=0, max_new_tokens=16)


@pytest.fixture(scope="module", params=["transformers", "llama.cpp"])
def backend(request):
    if request.param == "transformers":
        backend = transformers_backend(request.getfixturevalue("default_loaded"))
    else:
        backend = request.getfixturevalue("default_llama")
    assert backend.kind == request.param
    backend.use(backend.steering(find_directions(backend.info), 1.0))
    yield backend
    backend.use(NoModulation())  # the model is shared with other modules


def fresh(backend) -> None:
    """Forget the key/value cache, so the next reply computes everything."""
    backend.use(backend.modulator)


def test_reply_streams_pieces_that_add_up_to_the_text(backend) -> None:
    reply = backend.reply(HELLO, EmotionVector(), SamplingSettings(max_new_tokens=24, seed=1))
    pieces = list(reply)
    assert len(pieces) > 3
    assert "".join(pieces).strip() == reply.text
    assert reply.text == backend.tokenizer.decode(reply.token_ids).strip()
    assert 1 <= reply.stats.new_tokens <= 24
    assert reply.stats.first_token_seconds > 0 and reply.stats.tokens_per_second > 0


@pytest.mark.parametrize("pole", [None, "joy", "sadness"])
def test_a_factual_question_gets_its_answer_in_any_mood(backend, pole) -> None:
    question = [{"role": "user", "content": "What is the capital of France?"}]
    emotion = EmotionVector.pole(pole) if pole else EmotionVector()
    settings = SamplingSettings(temperature=0, max_new_tokens=40)
    assert "Paris" in backend.reply(question, emotion, settings).finish()


def test_llama_cpp_reads_the_prompt_unsteered(default_llama) -> None:
    """Like the forward hooks, the control vector acts from the prompt's last position on: the
    engine's logits differ both from the unsteered ones and from those of a prompt read wholly
    under the control vector."""
    from emochat.engine.modulation.control_vector import ControlVectorModulator

    backend = default_llama
    steering = ControlVectorModulator(find_directions(backend.info))
    backend.use(steering)
    try:
        joyful = next_token_logits(backend, HELLO, EmotionVector.pole("joy"))
        neutral = next_token_logits(backend, HELLO, EmotionVector())
        ids = build_prompt_ids(backend.tokenizer, HELLO, backend.info.context_length)
        steering.set_emotion(EmotionVector.pole("joy"))
        backend._llama.n_tokens = 0
        backend._llama.eval(ids)
        wholly = np.array(backend._llama.scores[len(ids) - 1])
    finally:
        backend.use(NoModulation())
    assert not np.allclose(joyful, neutral, atol=1e-3)
    assert not np.allclose(joyful, wholly, atol=1e-3)


def test_cancel_stops_within_a_token_and_frees_the_backend(backend) -> None:
    reply = backend.reply(STORY, EmotionVector(), SamplingSettings(max_new_tokens=300, seed=2))
    for count, _ in enumerate(reply, start=1):
        if count == 3:
            reply.cancel()
    assert reply.stats.cancelled
    # Tokens already queued when cancel came still count: a small backlog at most.
    assert reply.stats.new_tokens <= 12
    assert backend.reply(HELLO, EmotionVector(), GREEDY).finish()


def test_seed_makes_sampling_repeatable(backend) -> None:
    def sample(seed: int) -> list[int]:
        settings = SamplingSettings(max_new_tokens=16, seed=seed, temperature=1.0)
        reply = backend.reply(STORY, EmotionVector.pole("joy"), settings)
        reply.finish()
        return reply.token_ids

    first, second, other = sample(7), sample(7), sample(8)
    assert first == second
    assert first != other


def test_the_zero_vector_changes_nothing(backend) -> None:
    steering = backend.modulator
    fresh(backend)
    zero = next_token_logits(backend, HELLO, EmotionVector())
    zero_reply = backend.reply(HELLO, EmotionVector(), GREEDY)
    zero_reply.finish()
    backend.use(NoModulation())
    try:
        bare = next_token_logits(backend, HELLO, EmotionVector())
        bare_reply = backend.reply(HELLO, EmotionVector(), GREEDY)
        bare_reply.finish()
    finally:
        backend.use(steering)
    np.testing.assert_array_equal(zero, bare)
    assert zero_reply.token_ids == bare_reply.token_ids
    joy = next_token_logits(backend, HELLO, EmotionVector.pole("joy"))
    assert not np.array_equal(joy, bare)


def test_joy_reads_happier_than_sadness(backend) -> None:
    """Scored by VADER, which the project did not train."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    vader = SentimentIntensityAnalyzer()
    prompts = [
        "How are you feeling today?",
        "Tell me about your weekend plans.",
        "What do you think of rainy days?",
        "Describe your morning.",
        "What is your favourite memory?",
    ]
    wins = 0
    for prompt in prompts:
        scores = []
        for pole in ("joy", "sadness"):
            reply = backend.reply(
                [{"role": "user", "content": prompt}],
                EmotionVector.pole(pole),
                SamplingSettings(max_new_tokens=40, seed=11),
            )
            scores.append(vader.polarity_scores(reply.finish())["compound"])
        wins += scores[0] > scores[1]
    assert wins >= 4, f"joy read happier than sadness on only {wins}/5 prompts"


def test_a_prompt_longer_than_the_context_keeps_its_end(backend, monkeypatch) -> None:
    monkeypatch.setattr(backend, "info", dataclasses.replace(backend.info, context_length=256))
    long = " ".join(["lighthouse"] * 1500) + " What is the capital of France?"
    reply = backend.reply([{"role": "user", "content": long}], EmotionVector(), GREEDY)
    reply.finish()
    assert reply.stats.prompt_tokens <= 256 - GREEDY.max_new_tokens
    assert reply.stats.new_tokens >= 1


def test_the_next_turn_reuses_the_conversation_so_far(backend) -> None:
    fresh(backend)
    first = backend.reply(HELLO, EmotionVector.pole("joy"), GREEDY)
    first.finish()
    assert first.stats.cached_tokens == 0
    history = [
        *HELLO,
        {"role": "assistant", "content": first.text},
        {"role": "user", "content": "And what will you do tomorrow?"},
    ]
    # The mood moved, as it does every turn: the conversation so far is kept all the same.
    second = backend.reply(history, EmotionVector.pole("sadness"), GREEDY)
    second.finish()
    assert second.stats.cached_tokens >= first.stats.prompt_tokens
    # Not a continuation: whatever the mood, only what was read unsteered may be kept (the
    # system prompt both share), and only where kept keys and values are exact (llama.cpp).
    for emotion in (EmotionVector.pole("sadness"), EmotionVector.pole("anger")):
        other = backend.reply(STORY, emotion, GREEDY)
        other.finish()
        if backend.kind == "llama.cpp":
            assert 0 < other.stats.cached_tokens < other.stats.prompt_tokens
        else:
            assert other.stats.cached_tokens == 0


def test_another_conversation_replies_as_if_computed_afresh(backend) -> None:
    """A new conversation after another keeps their shared, unsteered system prompt on
    llama.cpp (the first token comes sooner) and replies token for token as a fresh start."""
    sadness, joy = EmotionVector.pole("sadness"), EmotionVector.pole("joy")
    fresh(backend)
    alone = backend.reply(STORY, sadness, GREEDY)
    alone.finish()
    backend.reply(HELLO, joy, GREEDY).finish()
    after = backend.reply(STORY, sadness, GREEDY)
    after.finish()
    assert alone.stats.cached_tokens == 0
    assert after.token_ids == alone.token_ids
    shared = [*build_prompt_ids(backend.tokenizer, HELLO, 4096)]
    story = build_prompt_ids(backend.tokenizer, STORY, 4096)
    common = next(i for i, (a, b) in enumerate(zip(shared, story, strict=False)) if a != b)
    expected = common if backend.kind == "llama.cpp" else 0
    assert after.stats.cached_tokens == expected


def test_a_reused_cache_gives_the_reply_a_fresh_start_would(backend) -> None:
    """The first turn is unsteered, so its cached tokens are what a fresh start computes (a
    steered reply's tokens keep, while cached, the steering they were written under; read again
    from scratch they are prompt, and unsteered)."""
    joy = EmotionVector.pole("joy")
    fresh(backend)
    first = backend.reply(HELLO, EmotionVector(), GREEDY)
    first.finish()
    history = [
        *HELLO,
        {"role": "assistant", "content": first.text},
        {"role": "user", "content": "Tell me more."},
    ]
    cached = backend.reply(history, joy, GREEDY)
    cached.finish()
    fresh(backend)
    recomputed = backend.reply(history, joy, GREEDY)
    recomputed.finish()
    assert cached.stats.cached_tokens > 0 and recomputed.stats.cached_tokens == 0
    assert cached.token_ids[:8] == recomputed.token_ids[:8]


def test_both_backends_build_the_same_prompt(default_float32, default_llama) -> None:
    from emochat.engine.prompt import build_prompt_ids

    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Café, naïve, 日本語 🙂 — how are you?"},
        {"role": "assistant", "content": "Fine, thanks."},
        {"role": "user", "content": "And now?"},
    ]
    hf = build_prompt_ids(default_float32.tokenizer, messages, 4000)
    gguf = build_prompt_ids(default_llama.tokenizer, messages, 4000)
    assert hf == gguf


def _first_token_shift(backend, directions, emotion: EmotionVector) -> np.ndarray:
    """How the steered model's next-token logits move away from the unsteered ones."""
    backend.use(backend.steering(directions, 1.0))
    neutral = next_token_logits(backend, HELLO, EmotionVector())
    fresh(backend)
    return next_token_logits(backend, HELLO, emotion) - neutral


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _moved(directions, blocks: int):
    """The same offsets added ``blocks`` decoder blocks later (earlier when negative): what an
    off-by-one in the control vector's rows would do."""
    return dataclasses.replace(
        directions,
        values=np.roll(directions.values, blocks, axis=1),
        residual_norms=np.roll(directions.residual_norms, blocks),
        band=(directions.band[0] + blocks, directions.band[1] + blocks),
    )


def test_control_vectors_and_forward_hooks_steer_the_same_way(
    default_float32, default_llama
) -> None:
    """The same offsets, added after the same decoder blocks: llama.cpp's control vector (rows
    from block 1) and the transformers hooks move the first token's logits alike (measured with
    the reply-only steering: cosine 0.978-0.996), and more alike than with the rows one block
    off (0.904-0.994)."""
    hf = transformers_backend(default_float32)
    directions = find_directions(hf.info)
    try:
        for pole in ("joy", "sadness"):
            emotion = EmotionVector.pole(pole)
            hooks = _first_token_shift(hf, directions, emotion)
            aligned = _cosine(hooks, _first_token_shift(default_llama, directions, emotion))
            assert aligned > 0.95, pole
            for blocks in (-1, 1):
                moved = _first_token_shift(default_llama, _moved(directions, blocks), emotion)
                assert aligned > _cosine(hooks, moved), (pole, blocks)
    finally:
        hf.use(NoModulation())
        default_llama.use(NoModulation())


def test_a_reply_cut_by_the_limit_continues_where_it_stopped(backend) -> None:
    """Greedy: 8 tokens, then 8 more from where they stopped. The prompt ends inside the reply
    (no end of turn, no new assistant header); on llama.cpp the result is word for word the
    16-token reply. On transformers int4 the continuation reuses the cached bfloat16 keys and
    values, which are not bit-identical to recomputed ones, so a near tie may go the other way
    a token or two on."""
    short = dataclasses.replace(GREEDY, max_new_tokens=8)
    fresh(backend)
    whole = backend.reply(STORY, EmotionVector(), GREEDY)
    whole.finish()
    first = backend.reply(STORY, EmotionVector(), short)
    first.finish()
    assert first.stats.truncated and whole.stats.truncated
    history = [*STORY, {"role": "assistant", "content": first.text}]
    prompt = backend.tokenizer.decode(
        build_prompt_ids(backend.tokenizer, history, 4096), skip_special_tokens=False
    )
    assert prompt.endswith(first.text)
    rest = "".join(backend.reply(history, EmotionVector(), short))
    # It goes on with what the whole reply had next: at least its next characters (on a CPU
    # without native bfloat16, transformers continued "the year 1850" as "the year 1870").
    joined = first.text + rest
    pairs = zip(joined, whole.text, strict=False)
    common = next((i for i, (a, b) in enumerate(pairs) if a != b), len(joined))
    assert common > len(first.text) and joined[len(first.text) : common].strip()
    if backend.kind == "llama.cpp":
        assert (first.text + rest).split() == whole.text.split()


def test_a_reply_the_model_ends_is_not_marked_cut(backend) -> None:
    question = [{"role": "user", "content": "Say only the word yes."}]
    reply = backend.reply(question, EmotionVector(), SamplingSettings(temperature=0))
    reply.finish()
    assert reply.stats.new_tokens < SamplingSettings().max_new_tokens
    assert not reply.stats.truncated
