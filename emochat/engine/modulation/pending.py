"""Steering that starts once its directions are built: a model met for the first time chats at
once, unsteered, while its directions are measured beside the chat, and is steered from the
first reply after they are ready. Only for backends that can read the model while it replies
(llama.cpp, through a second context on the same weights)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from emochat.emotion import EmotionVector
from emochat.engine.modulation.base import Modulator, NoModulation
from emochat.engine.modulation.loop import NO_GAINS
from emochat.errors import EmochatError
from emochat.progress import Progress


class PendingSteering(Modulator):
    """Stands in for the steering modulator that ``build`` makes in a thread of its own; the
    backend calls it under its reply lock, so the switch never happens mid-reply."""

    name = "steer"

    def __init__(
        self, build: Callable[[], Modulator], intensity: float, progress: Progress
    ) -> None:
        self._active: Modulator = NoModulation()
        self._built: Modulator | None = None
        self._intensity = intensity
        self._gains: Sequence[float] = NO_GAINS
        self._target: Any = None
        self._progress = progress
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._build, args=(build,), name="emochat-directions", daemon=True
        )
        self._thread.start()

    def _build(self, build: Callable[[], Modulator]) -> None:
        try:
            self._built = build()
        except EmochatError as error:
            self._say(f"Could not build emotion vectors ({error}); replies stay unsteered")
        except Exception as error:  # a thread's error would otherwise vanish unsaid
            self._say(f"Could not build emotion vectors ({error!r}); replies stay unsteered")
        else:
            self._say("Emotion vectors ready: replies are steered from the next one")
        finally:
            self._done.set()

    def _say(self, message: str) -> None:
        # whoever listened may have gone (the app quit meanwhile): then there is no one to tell
        with contextlib.suppress(Exception):
            self._progress(message)

    def wait(self, timeout: float | None = None) -> bool:
        """Until the build has ended (for callers that would rather wait); whether it has."""
        return self._done.wait(timeout)

    def _switch(self) -> None:
        if self._built is None or self._active is self._built or not self._done.is_set():
            return
        self._built.set_intensity(self._intensity)
        self._built.set_gains(self._gains)
        if self._target is not None:
            self._built.attach(self._target)
        self._active = self._built

    def attach(self, model: Any) -> None:
        self._target = model
        self._active.attach(model)

    def set_emotion(self, emotion: EmotionVector) -> None:
        self._switch()
        self._active.set_emotion(emotion)

    def set_gains(self, gains: Sequence[float]) -> None:
        self._gains = gains
        self._active.set_gains(gains)

    def set_intensity(self, intensity: float) -> bool:
        self._intensity = intensity
        self._active.set_intensity(intensity)
        return True

    @contextmanager
    def prompt_phase(self) -> Iterator[None]:
        with self._active.prompt_phase():
            yield

    def detach(self) -> None:
        self._active.detach()
        self._target = None
