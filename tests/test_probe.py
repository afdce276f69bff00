import pytest

from emochat.detect.goemotions import auroc
from emochat.detect.probe import ProbeDetector
from emochat.emotion import EmotionVector
from emochat.engine.extraction import extract_directions
from emochat.engine.modulation.steering import SteeringModulator
from emochat.errors import EmochatError
from tests.conftest import transformers_backend


def test_probe_reads_without_the_steering_it_shares_the_model_with(tiny_loaded) -> None:
    directions = extract_directions(transformers_backend(tiny_loaded))
    steering = SteeringModulator(directions, intensity=3)
    engine = transformers_backend(tiny_loaded, steering)
    try:
        probe = ProbeDetector(tiny_loaded, directions, guard=engine.unmodulated)
        before = probe.read("I am happy and calm today")
        assert all(-1 <= value <= 1 for value in before.vector)
        assert 0 <= before.confidence <= 1
        steering.set_emotion(EmotionVector((1.0,) * 8))
        after = probe.read("I am happy and calm today")
        assert after.vector.values == pytest.approx(before.vector.values, abs=1e-5)
        # the guard put the hooks back: the model is still steered afterwards
        assert steering._handles
    finally:
        engine.modulator.detach()


def test_probe_without_vectors_is_a_clear_error(tiny_loaded, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("EMOCHAT_CACHE", str(tmp_path))
    with pytest.raises(EmochatError, match="emochat vectors build"):
        ProbeDetector(tiny_loaded)


@pytest.mark.slow
def test_probe_separates_happy_from_sad_on_the_default_model(default_loaded) -> None:
    probe = ProbeDetector(default_loaded)
    happy = [
        "I'm so happy, this is the best day ever!",
        "We won the game and everyone was cheering with joy.",
        "What a wonderful surprise party, I'm thrilled.",
        "I love spending sunny afternoons with my friends.",
        "She laughed and danced, delighted by the good news.",
        "Finally on holiday, feeling cheerful and free!",
    ]
    sad = [
        "I feel so sad and alone since she left.",
        "My dog died yesterday and I can't stop crying.",
        "Everything is grey and hopeless lately.",
        "I lost my job and I feel miserable.",
        "He sat alone in the rain, heartbroken.",
        "I miss my grandmother so much it hurts.",
    ]
    joy = [probe.read(text).vector[0] for text in happy]
    sadness = [probe.read(text).vector[0] for text in sad]
    assert auroc(joy, sadness) >= 0.85, (joy, sadness)
