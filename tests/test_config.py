import pytest

from emochat.cli import main
from emochat.cli.parser import apply_config_defaults, build_parser
from emochat.cli.settings import chat_config
from emochat.config import config_path, load_config, remember
from emochat.emotion import EmotionVector
from emochat.errors import EmochatError
from emochat.last_mood import load_last_state, save_last_state
from emochat.runtime.restore import starting_state
from emochat.state import EmotionState


def test_config_defaults_apply_and_flags_win(capsys) -> None:
    config_path().parent.mkdir(parents=True)
    config_path().write_text(
        '[defaults]\ntemperature = 0.2\npolicy = "soothe"\nmystery = 1\n'
        '[keys]\ntoggle_lock = "f9"\n'
    )
    parser = build_parser()
    apply_config_defaults(parser, load_config()["defaults"])
    args = parser.parse_args(["chat"])
    assert (args.temperature, args.policy) == (0.2, "soothe")
    assert parser.parse_args(["chat", "--temperature", "0.9"]).temperature == 0.9
    assert parser.parse_args(["say", "hi"]).temperature == 0.2
    assert "unknown setting 'mystery'" in capsys.readouterr().err
    assert load_config()["keys"] == {"toggle_lock": "f9"}


def test_remember_keeps_the_rest_of_the_file() -> None:
    config_path().parent.mkdir(parents=True)
    config_path().write_text('[defaults]\nmodel = "x/y"\n[keys]\nhelp = "f2"\n')
    remember("theme", "emochat-paper")
    data = load_config()
    assert data == {"defaults": {"model": "x/y", "theme": "emochat-paper"}, "keys": {"help": "f2"}}


def test_a_broken_config_is_one_clear_error(capsys) -> None:
    config_path().parent.mkdir(parents=True)
    config_path().write_text("[defaults\n")
    with pytest.raises(EmochatError, match="cannot read the config file"):
        load_config()
    assert main(["say", "hi"]) == 2
    assert capsys.readouterr().err.startswith("emochat: cannot read the config file")


def test_resuming_an_unknown_conversation_fails_before_the_app_opens(capsys) -> None:
    assert main(["--resume", "nope"]) == 2
    assert "no conversation 'nope'" in capsys.readouterr().err


def _starting_state(*argv: str) -> EmotionState:
    config = chat_config(build_parser().parse_args(["chat", *argv]))
    return starting_state(config.policy, config.generation.emotion, resumed=None)


def test_a_new_chat_starts_in_the_mood_the_last_one_ended_in() -> None:
    assert load_last_state() is None
    save_last_state(EmotionState(vector=EmotionVector.pole("joy", 0.5), policy="soothe"))
    state = _starting_state()
    assert state.vector == EmotionVector.pole("joy", 0.5)
    assert state.policy == "mirror"  # the policy comes from the flags, the mood carries over
    state = _starting_state("--emotion", "calm", "--policy", "soothe")
    assert state.vector == EmotionVector.pole("calmness")
    assert state.policy == "soothe"
