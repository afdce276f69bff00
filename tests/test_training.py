"""``emochat train``: the projection and LoRA learn, save in the three files emochat loads, and
resume exactly; mechanics on tiny random Llama and Gemma 3 models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from emochat.cli import main
from emochat.emotion import EmotionVector
from emochat.engine.loading import LoadOptions, load_model, resolve_source
from emochat.engine.modulation.projection import (
    PROJECTION_FILE,
    EmbeddingProjectionModulator,
    load_projection,
)
from emochat.errors import EmochatError
from emochat.training.data import IGNORE, collate, load_examples
from emochat.training.model import EmotionTrainee
from emochat.training.trainer import TrainSettings, train
from tests.conftest import build_tiny_model

REPLIES = {
    "joy": "I am happy, joyful and calm. The sun is shining on the beach.",
    "sadness": "I am sad and afraid; the rain will not stop.",
}


@pytest.fixture(scope="module", params=["llama", "gemma3"])
def tiny_base(request, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp(f"tiny-{request.param}")
    return build_tiny_model(folder, architecture=request.param, init_std=0.2)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    """The same question answered happily under joy and sadly under sadness."""
    path = tmp_path_factory.mktemp("data") / "train.jsonl"
    records = []
    for pole, reply in REPLIES.items():
        messages = [
            {"role": "user", "content": "Hello there, how are you feeling today?"},
            {"role": "assistant", "content": reply},
        ]
        records += [{"messages": messages, "vector": EmotionVector.pole(pole).to_list()}] * 8
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def _train_args(base: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train", "--base", str(base), "--data", str(data), "--out", str(out),
        "--device", "cpu", "--batch-size", "4", "--lr-projection", "5e-2", "--lr-lora", "5e-2",
        *extra,
    ]  # fmt: skip


@pytest.mark.parametrize("layout", ["linear", "mlp"])
def test_train_lowers_the_loss_and_the_checkpoint_round_trips(
    tiny_base, data_file, tmp_path, layout, capsys
) -> None:
    out = tmp_path / "ckpt"
    assert main(_train_args(tiny_base, data_file, out, "--epochs", "10", "--layout", layout)) == 0
    record = json.loads((out / "training.json").read_text())
    assert record["steps"] == 40
    losses = record["losses"]
    assert sum(losses[-5:]) < 0.8 * sum(losses[:5])
    assert {"adapter_config.json", "adapter_model.safetensors", PROJECTION_FILE} <= {
        path.name for path in out.iterdir()
    }
    assert "loss" in (out / "README.md").read_text()
    capsys.readouterr()
    # emochat loads it back: base from adapter_config.json, LoRA merged, projection by embed.
    say = ["say", "Hello there, how are you feeling today?", "--model", str(out),
           "--backend", "transformers", "--quant", "none", "--max-new-tokens", "6", "--seed", "1",
           "--json"]  # fmt: skip
    for pole in REPLIES:
        assert main([*say, "--emotion", pole]) == 0
        printed = json.loads(capsys.readouterr().out)
        assert printed["model"] == out.name and printed["reply"]
        assert printed["emotion"] == EmotionVector.pole(pole).to_list()


def test_the_vector_is_what_tells_the_replies_apart(tiny_base, data_file, tmp_path) -> None:
    """After training, the reply the projection produces follows the vector: the first reply
    token under joy is the first token of the joyful reply, and under sadness of the sad one."""
    out = tmp_path / "ckpt"
    assert main(_train_args(tiny_base, data_file, out, "--epochs", "10")) == 0
    loaded = load_model(
        resolve_source(str(out)), LoadOptions(device="cpu", quant="none", dtype="float32")
    )
    modulator = EmbeddingProjectionModulator(load_projection(out, loaded.info.hidden_size))
    modulator.attach(loaded.model)
    prompt = loaded.tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hello there, how are you feeling today?"}],
        add_generation_prompt=True,
        tokenize=False,
    )
    for pole, reply in REPLIES.items():
        ids = loaded.tokenizer(prompt + reply, add_special_tokens=False, return_tensors="pt")
        prompt_length = len(loaded.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        scores = {}
        for other in REPLIES:
            modulator.set_emotion(EmotionVector.pole(other))
            with torch.inference_mode():
                logits = loaded.model(**ids).logits[0, prompt_length - 1 : -1]
            targets = ids["input_ids"][0, prompt_length:]
            scores[other] = torch.nn.functional.cross_entropy(logits, targets).item()
        assert scores[pole] < scores[next(p for p in REPLIES if p != pole)]


def test_resume_repeats_the_uninterrupted_losses(tiny_model_dir, data_file, tmp_path) -> None:
    settings = TrainSettings(
        base=str(tiny_model_dir), epochs=3, batch_size=4, save_every=3, log_every=1,
        lr_projection=1e-2, lr_lora=1e-2,
    )  # fmt: skip

    def fresh() -> tuple[EmotionTrainee, list, int]:
        loaded = load_model(
            resolve_source(str(tiny_model_dir)),
            LoadOptions(device="cpu", quant="none", dtype="float32"),
        )
        examples = load_examples(data_file, loaded.tokenizer, settings.max_length)
        trainee = EmotionTrainee(loaded.model, "linear", 8, loaded.info.hidden_size, 0)
        return trainee, examples, int(loaded.tokenizer.pad_token_id)

    whole = train(*_args(fresh(), settings, tmp_path / "whole"), progress=lambda _: None)

    def stop_after_the_checkpoint(message: str) -> None:
        if message.startswith("step 4/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(*_args(fresh(), settings, tmp_path / "cut"), progress=stop_after_the_checkpoint)
    assert (tmp_path / "cut" / "checkpoint-3" / "trainer_state.pt").is_file()
    resumed = train(
        *_args(fresh(), settings, tmp_path / "cut"), resume=True, progress=lambda _: None
    )
    assert resumed.resumed_from == 3
    assert len(resumed.losses) == len(whole.losses) == 12
    assert resumed.losses == pytest.approx(whole.losses, rel=1e-5)


def _args(made: tuple, settings: TrainSettings, out: Path) -> tuple:
    trainee, examples, pad_id = made
    return trainee, examples, settings, out, pad_id


def test_a_zero_vector_through_a_bias_free_projection_changes_nothing(tiny_loaded) -> None:
    trainee = EmotionTrainee(tiny_loaded.model, "linear", 4, tiny_loaded.info.hidden_size, 0)
    try:
        with torch.no_grad():
            trainee.projection.weight.normal_()  # trained-looking weights, not zeros
        batch = collate(
            load_examples_from([("Hello there", "I am happy.")], tiny_loaded.tokenizer), 0
        )
        ids = batch["input_ids"]
        with torch.inference_mode():
            plain = trainee.model(input_ids=ids).logits
            trainee._vectors = torch.zeros(1, 8)
            zero = trainee.model(input_ids=ids).logits
            trainee._vectors = torch.tensor([EmotionVector.pole("joy").to_list()])
            joyful = trainee.model(input_ids=ids).logits
            trainee._vectors = None
        assert torch.equal(plain, zero)
        assert not torch.allclose(plain, joyful)
    finally:
        trainee._handle.remove()
        trainee.model.unload()


def load_examples_from(pairs: list[tuple[str, str]], tokenizer, tmp=None) -> list:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.jsonl"
        path.write_text(
            "".join(
                json.dumps(
                    {
                        "messages": [
                            {"role": "user", "content": question},
                            {"role": "assistant", "content": answer},
                        ],
                        "vector": [0.0] * 8,
                    }
                )
                + "\n"
                for question, answer in pairs
            )
        )
        return load_examples(path, tokenizer, 128)


def test_the_loss_is_on_the_reply_only(tiny_loaded) -> None:
    [example] = load_examples_from([("Hello there", "I am happy.")], tiny_loaded.tokenizer)
    learned = [token for token in example.labels if token != IGNORE]
    reply = tiny_loaded.tokenizer.decode(learned)
    assert reply.startswith("I am happy.")
    assert example.labels[0] == IGNORE and len(learned) < len(example.input_ids)
    batch = collate([example, *load_examples_from([("Hi", "Ok")], tiny_loaded.tokenizer)], 0)
    assert batch["vectors"].shape == (2, 8)
    assert (batch["labels"][1][batch["attention_mask"][1] == 0] == IGNORE).all()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"text": "hi", "vector": [1, 2]}', "line 1: 'vector' must be a list of 8"),
        ('{"vector": [0, 0, 0, 0, 0, 0, 0, 0]}', "line 1: needs 'text'"),
        ("not json", "line 1 is not JSON"),
    ],
)
def test_bad_training_records_are_clear_errors(tiny_loaded, tmp_path, line, message) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(EmochatError, match=message):
        load_examples(path, tiny_loaded.tokenizer, 128)


@pytest.mark.slow
def test_the_shipped_checkpoint_moves_the_default_models_mood(
    model_cache, tmp_path, monkeypatch, capsys
) -> None:
    """Offline, ``--modulation embed`` on the default model loads the shipped projection and
    LoRA, and the joy vector makes replies read more joyful than the sadness vector."""
    from emochat.detect import load_detector
    from emochat.engine.loading import resolve_source
    from emochat.engine.modulation.projection import shipped_embed_checkpoint

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert shipped_embed_checkpoint(resolve_source("default")) is not None
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(
        "How was your day?\nTell me about your weekend plans.\nWhat do you think of rain?\n"
    )
    detector = load_detector("minilm")
    joy = {}
    for pole in ("joy", "sadness"):
        command = ["say", "--file", str(prompts), "--modulation", "embed", "--emotion", pole,
                   "--seed", "3", "--max-new-tokens", "40", "--json", "--no-save"]  # fmt: skip
        assert main(command) == 0
        lines = capsys.readouterr().out.splitlines()
        replies = [json.loads(line) for line in lines if line.startswith("{")]
        assert len(replies) == 3 and replies[0]["model"] == "SmolLM2-135M-Instruct-embed"
        joy[pole] = sum(detector.read(reply["reply"]).vector[0] for reply in replies) / 3
    assert joy["joy"] > joy["sadness"] + 0.2, joy


def test_sampled_vectors_cover_none_single_poles_and_mixes() -> None:
    import random

    from emochat.training.recipe import sample_vector

    rng = random.Random(0)
    active = [sum(value != 0 for value in sample_vector(rng)) for _ in range(500)]
    shares = [active.count(count) / len(active) for count in (0, 1, 2)]
    assert 0.12 < shares[0] < 0.28 and 0.3 < shares[1] < 0.5 and 0.3 < shares[2] < 0.5
    assert sum(shares) == 1


def test_poles_that_rarely_pass_are_asked_for_more_often() -> None:
    import random

    from emochat.emotion import EmotionVector
    from emochat.training.recipe import PoleBalance, sample_vector

    balance = PoleBalance()
    for _ in range(20):  # joy passes every time, sadness never
        balance.record(EmotionVector.pole("joy"), True)
        balance.record(EmotionVector.pole("sadness"), False)
    rng = random.Random(1)
    singles = [v for v in (sample_vector(rng, balance) for _ in range(4000)) if sum(map(abs, v))]
    singles = [v for v in singles if sum(x != 0 for x in v) == 1]
    sad = sum(v[0] < 0 for v in singles)
    joy = sum(v[0] > 0 for v in singles)
    assert sad > 10 * joy  # weights (20+2)/1 against (20+2)/21
    untried = sum(v[1] != 0 for v in singles)  # FEAR↔COURAGE: never tried, weight 2 each
    assert joy < untried < sad


def test_a_steered_reply_is_judged_by_how_far_it_moved_from_the_unsteered_ones() -> None:
    from emochat.emotion import EmotionVector, parse_emotion
    from emochat.training.recipe import MoodBaseline

    baseline = MoodBaseline()
    for text in ("empathy=0.3", "empathy=0.5"):  # a warm model: unsteered replies read empathic
        baseline.add(parse_emotion(text)[0])
    indifferent = EmotionVector.pole("indifference")
    assert baseline.moved(indifferent, EmotionVector()) == pytest.approx(0.4)  # 0.4 less warm
    assert baseline.moved(indifferent, parse_emotion("empathy=0.6")[0]) == pytest.approx(-0.2)
    assert baseline.moved(EmotionVector(), parse_emotion("joy=1")[0]) == 0.0
    mixed = parse_emotion("joy=0.6,fear=0.8")[0]  # projected on the unit vector asked for
    assert baseline.moved(mixed, parse_emotion("joy=0.5")[0]) == pytest.approx(0.5 * 0.6)


def test_a_reply_cut_mid_sentence_is_trimmed_or_dropped() -> None:
    from emochat.training.recipe import whole_sentences

    assert whole_sentences("It rained. We stayed in and read a lot of bo") is None
    assert whole_sentences("It rained all day. We stayed in. Then the su") == (
        "It rained all day. We stayed in."
    )
    assert whole_sentences("Done!") == "Done!"


@pytest.mark.slow
def test_train_data_writes_judged_records_that_train_reads(model_cache, tmp_path, capsys) -> None:
    out = tmp_path / "data.jsonl"
    command = ["train-data", "--backend", "llama.cpp", "--count", "12", "--tokens", "40",
               "--out", str(out)]  # fmt: skip
    assert main(command) == 0
    kept = int(capsys.readouterr().out.split()[1])
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == kept >= 1
    for record in records:
        assert [m["role"] for m in record["messages"]] == ["user", "assistant"]
        assert len(record["vector"]) == 8
        if any(record["vector"]):
            assert record["judged"]["mood"] >= 0.15
    from emochat.engine.backends import open_backend
    from emochat.engine.loading import LoadOptions, resolve_source

    source = resolve_source("default")
    tokenizer = open_backend(source, LoadOptions(backend="llama.cpp"), lambda _: None).tokenizer
    assert len(load_examples(out, tokenizer, 128)) == len(records)
