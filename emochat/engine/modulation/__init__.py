"""How the emotion vector reaches the model: the modulator interface (``base``), the ways to
do it (steering hooks, llama.cpp control vectors, the Emotional-Gemma embedding projection, the
persona prompt) and the factory that picks and builds one."""

from emochat.engine.modulation.base import CombinedModulator, Modulator, NoModulation
from emochat.engine.modulation.factory import (
    MODULATION_CHOICES,
    build_modulator,
    check_intensity,
    choose_modulation,
    set_intensity,
)

__all__ = [
    "MODULATION_CHOICES",
    "CombinedModulator",
    "Modulator",
    "NoModulation",
    "build_modulator",
    "check_intensity",
    "choose_modulation",
    "set_intensity",
]
