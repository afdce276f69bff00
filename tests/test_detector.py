import json
import subprocess
import sys

import pytest

from emochat.detect import Reading, load_detector
from emochat.detect.goemotions import Example, auroc, score_poles
from emochat.emotion import AXES
from emochat.errors import EmochatError

AXIS = {
    pole: (index, sign)
    for index, a in enumerate(AXES)
    for pole, sign in ((a.negative, -1), (a.positive, 1))
}

CLEAR_EXAMPLES = [
    ("joy", "I'm so happy, this is the best day of my life!"),
    ("sadness", "I feel so sad and lonely since she died, I miss her every day."),
    ("fear", "I'm terrified, I'm so scared of what will happen tomorrow."),
    ("courage", "I'm not backing down, bring it on, I'm ready to face anything."),
    ("disgust", "That is disgusting and gross, it makes me sick."),
    ("acceptance", "I agree completely, that's a good decision and I approve."),
    ("anger", "This makes me so angry, I'm absolutely furious with them!"),
    ("calmness", "What a relief, everything is fine now and I can finally relax."),
    ("surprise", "Wow, I did not see that coming at all, I'm shocked!"),
    ("expectation", "I really hope it works out, I want that so much."),
    ("distrust", "I don't believe a word he says, it sounds like a scam."),
    ("trust", "Thank you so much, I really admire your work and I'm grateful."),
    ("boredom", "This is so boring, I can barely stay awake, nothing ever happens."),
    ("interest", "I'm curious, how does that work? Tell me more!"),
    ("indifference", "I don't care either way, whatever, not my problem."),
    ("empathy", "I'm so sorry you're going through this, I'm here for you and I care."),
]


@pytest.fixture(scope="module")
def minilm():
    return load_detector("minilm")


@pytest.mark.parametrize(("pole", "text"), CLEAR_EXAMPLES, ids=[p for p, _ in CLEAR_EXAMPLES])
def test_clear_examples_read_with_the_right_sign(minilm, pole: str, text: str) -> None:
    index, sign = AXIS[pole]
    reading = minilm.read(text)
    assert sign * reading.vector[index] > 0.2, reading.vector.to_dict()
    assert reading.confidence > 0.4


def test_negation_flips_or_cancels_joy(minilm) -> None:
    happy = minilm.read("I am happy with how it went.").vector[0]
    unhappy = minilm.read("I am not happy with how it went.").vector[0]
    assert happy > 0.3
    assert unhappy < happy - 0.3
    assert unhappy < 0.1


NEUTRAL_TEXTS = [
    "The meeting is at 3pm in room 204.",
    "The file is in the shared folder.",
    "It is a table.",
    "The train leaves at noon.",
    "The report has twelve pages.",
    "I bought milk and bread.",
]


def test_neutral_text_stays_near_zero(minilm) -> None:
    # A statistical reader has a lean (this one reads a little interest into plain
    # statements), so the bound is on the typical text and a looser one on every text.
    readings = minilm.read_many(NEUTRAL_TEXTS)
    strongest = sorted(max(abs(value) for value in reading.vector) for reading in readings)
    assert strongest[len(strongest) // 2] < 0.2, strongest
    assert strongest[-1] < 0.45, strongest
    assert all(reading.confidence < 0.55 for reading in readings)


def test_read_many_matches_read(minilm) -> None:
    texts = [text for _, text in CLEAR_EXAMPLES[:5]]
    batched = minilm.read_many(texts)
    for text, reading in zip(texts, batched, strict=True):
        single = minilm.read(text)
        # bfloat16 rounds a padded batch's sums a little differently from a single message's
        assert reading.vector.values == pytest.approx(single.vector.values, abs=0.01)


PLAIN = [  # (message, the pole it should lean to)
    ("I just got the job!!!", "joy"),
    ("We won the match and I passed my exam!", "joy"),
    ("My dog died this morning.", "sadness"),
    ("I failed the exam and lost my wallet.", "sadness"),
    ("Someone is following me home and I am scared.", "fear"),
    ("My neighbour threatened to kill me last night.", "fear"),
    ("What time does the library open tomorrow?", "interest"),
]


@pytest.mark.parametrize(("text", "pole"), PLAIN, ids=[text for text, _ in PLAIN])
def test_plain_messages_read_the_right_way_round(minilm, text: str, pole: str) -> None:
    index, sign = AXIS[pole]
    reading = minilm.read(text)
    assert sign * reading.vector[index] > 0.1, reading.vector.to_dict()


# Recorded when the shipped detector was trained, in bfloat16 on this machine's CPU (float32
# reads within the tolerance too): (text, the eight values, confidence).
RECORDED = [
    (
        "Thank you so much, you really helped me.",
        (0.96, -0.001, 0.123, 0.02, 0.071, 0.992, 0.011, 0.142),
        0.993,
    ),
    (
        "I am furious, they cancelled my flight again.",
        (-0.785, -0.549, -0.295, -0.728, -0.02, -0.001, 0.015, 0.01),
        0.893,
    ),
    (
        "The train leaves at noon.",
        (-0.032, -0.049, 0.032, -0.009, -0.017, 0.002, -0.053, 0.004),
        0.368,
    ),
]


def test_the_shipped_detector_reproduces_its_recorded_readings(minilm) -> None:
    """Loaded offline from the package (the LoRA merged into the wheel's encoder, run by
    llama.cpp from the GGUF made of them): a change in how it loads, merges or pools shows
    here."""
    assert type(minilm).__name__ == "LlamaCppDetector"  # the default, without torch
    for text, values, confidence in RECORDED:
        reading = minilm.read(text)
        assert reading.vector.values == pytest.approx(values, abs=0.01), text
        assert reading.confidence == pytest.approx(confidence, abs=0.01), text


@pytest.fixture(scope="module")
def torch_float32():
    from emochat.detect.tuned import TunedDetector

    return TunedDetector(fast=False)


def test_llama_cpp_reads_what_torch_reads(minilm, torch_float32) -> None:
    """The same tokens (a word of over 100 letters is [UNK] in both), the same merged weights
    in float16: every value within 0.01 of the float32 torch encoder's."""
    texts = [text for _, text in CLEAR_EXAMPLES]
    texts += ["Café, naïve, über, 日本語 🙂", "x" * 400, "word " * 200, ""]
    pairs = zip(minilm.read_many(texts), torch_float32.read_many(texts), strict=True)
    for text, (fast, exact) in zip(texts, pairs, strict=True):
        assert fast.vector.values == pytest.approx(exact.vector.values, abs=0.01), text
        assert fast.confidence == pytest.approx(exact.confidence, abs=0.01), text


def test_the_torch_fallback_reads_like_the_float32_one(torch_float32) -> None:
    from emochat.detect.tuned import TunedDetector

    quick = TunedDetector()  # bfloat16 where the CPU has it
    texts = [text for _, text in CLEAR_EXAMPLES]
    pairs = zip(quick.read_many(texts), torch_float32.read_many(texts), strict=True)
    for fast, exact in pairs:
        assert fast.vector.values == pytest.approx(exact.vector.values, abs=0.08)


def test_without_llama_cpp_the_torch_detector_reads_and_says_so(monkeypatch) -> None:
    from emochat.engine import backends

    monkeypatch.setattr(backends, "llama_cpp_installed", lambda: False)
    notes: list[str] = []
    detector = load_detector("minilm", progress=notes.append)
    assert type(detector).__name__ == "TunedDetector"
    assert notes == [
        "the detector runs on torch, slower to start (llama-cpp-python is not installed)"
    ]
    assert detector.read("My dog died this morning.").vector[0] < -0.3


def test_training_a_few_steps_on_a_tiny_slice_lowers_the_loss(tmp_path) -> None:
    import random

    import torch

    from emochat.detect.goemotions import load_split
    from emochat.detect.train import Trainer, length_batches, training_rows

    (tmp_path / "labels.txt").write_text("joy\nsadness\nfear\nneutral\n")  # GoEmotions' format
    rows = [("what a wonderful happy day", 0), ("I am so sad and alone", 1)] * 8
    rows += [("I am scared of the dark", 2), ("the bus comes at nine", 3)] * 8
    lines = [f"{text}\t{label}\tc{n}\n" for n, (text, label) in enumerate(rows)]
    (tmp_path / "train.tsv").write_text("".join(lines))
    examples = load_split("train", tmp_path)
    texts, targets = training_rows(examples)
    texts, targets = texts[: len(examples)], torch.tensor(targets[: len(examples)])
    trainer = Trainer("cpu", seed=0, lr=5e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    batches = length_batches([len(t) for t in texts], random.Random(0))
    first = trainer.epoch(texts, targets, batches, loss_fn)
    for _ in range(3):
        last = trainer.epoch(texts, targets, batches, loss_fn)
    assert last < first * 0.7, (first, last)


def test_vader_reads_valence_only() -> None:
    vader = load_detector("vader")
    assert vader.read("I love this, wonderful!").vector[0] > 0.5
    assert vader.read("This is terrible and sad.").vector[0] < -0.3
    assert all(value == 0 for value in vader.read("I love this!").vector[1:])


def test_unknown_detector_is_a_clear_error() -> None:
    with pytest.raises(EmochatError, match="choose one of minilm, vader, probe"):
        load_detector("psychic")
    with pytest.raises(EmochatError, match="needs the chat model"):
        load_detector("probe")


def test_reading_round_trip() -> None:
    reading = Reading(AXES and load_detector("vader").read("great!").vector, 0.7)
    assert Reading.from_dict(json.loads(json.dumps(reading.to_dict()))) == reading


def test_auroc_counts_pairs_and_ties() -> None:
    assert auroc([3, 4], [1, 2]) == 1.0
    assert auroc([1, 2], [3, 4]) == 0.0
    assert auroc([1, 1], [1, 1]) == 0.5
    assert auroc([2, 0], [1]) == 0.5


def test_scoring_follows_the_shared_readme() -> None:
    examples = [
        Example("yay", frozenset({"joy"})),
        Example("meh", frozenset({"neutral"})),
        Example("boo", frozenset({"sadness"})),
    ]
    vectors = [[0.9] + [0] * 7, [0.0] * 8, [-0.9] + [0] * 7]
    scores = score_poles(examples, vectors)
    assert scores["joy"] == scores["sadness"] == scores["joy vs sadness"] == 1.0
    assert "courage" not in scores  # no GoEmotions label, so not scored


def _detect(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "emochat", "detect", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=300,
    )


def test_detect_cli_table_json_and_jsonl() -> None:
    table = _detect("I'm so happy today!")
    assert table.returncode == 0, table.stderr
    assert "sadness" in table.stdout and "joy" in table.stdout and "confidence" in table.stdout

    single = json.loads(_detect("I'm so happy today!", "--json").stdout)
    assert set(single) == {"text", "vector", "confidence"}
    assert len(single["vector"]) == 8 and single["vector"][0] > 0.2

    lines = [f"message number {i} {'great' if i % 2 else 'awful'}" for i in range(150)]
    result = _detect("--jsonl", stdin="\n".join(lines) + "\n")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [record["text"] for record in records] == lines
    assert records[1]["vector"][0] > records[0]["vector"][0]


def test_detect_reads_without_a_chat_model() -> None:
    """A text detector needs no chat model: a --model that is not there (or a default model
    that is not installed) is not looked for; the probe, which reads the model, refuses it."""
    result = _detect("My dog died this morning.", "--model", "./nowhere", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["vector"][0] < -0.3
    result = _detect("hi", "--model", "./nowhere", "--detector", "probe")
    assert result.returncode == 2 and "no such model folder" in result.stderr


def test_detect_cli_errors() -> None:
    result = _detect("text", "--jsonl")
    assert result.returncode == 2 and "give no TEXT" in result.stderr
    result = _detect("x", "--detector", "nope")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_calibration_recovers_a_known_scaling() -> None:
    import torch

    from emochat.detect.train import fit_calibration

    torch.manual_seed(0)
    logits = torch.randn(4000) * 3
    truth = torch.sigmoid(0.5 * logits - 1.0)  # an over-confident, shifted "neutral" output
    labels = torch.bernoulli(truth)
    scale, bias = fit_calibration(logits, labels)
    assert scale == pytest.approx(0.5, abs=0.08) and bias == pytest.approx(-1.0, abs=0.15)


def test_the_detector_gguf_is_made_once_without_torch_and_remade_when_damaged(tmp_path) -> None:
    """Made from the wheel and the shipped LoRA in a process that never imports torch; kept in
    the cache; a damaged copy there is made again, not fatal."""
    import os

    env = {**os.environ, "EMOCHAT_CACHE": str(tmp_path)}
    code = (
        "import sys\n"
        "from emochat.detect.llamacpp_detector import LlamaCppDetector\n"
        "reading = LlamaCppDetector().read('My dog died this morning.')\n"
        "print('SAD', reading.vector[0] < -0.3, 'TORCH', 'torch' in sys.modules)\n"
    )
    made = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert "SAD True TORCH False" in made.stdout, made.stderr
    (gguf,) = (tmp_path / "detector").glob("*.gguf")
    stamp = gguf.stat().st_mtime_ns
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert "SAD True" in again.stdout and gguf.stat().st_mtime_ns == stamp  # not made twice
    gguf.write_bytes(gguf.read_bytes()[:5000])
    mended = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert "SAD True" in mended.stdout, mended.stderr
    assert gguf.stat().st_size > 10_000_000
