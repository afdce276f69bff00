"""The mood the last chat ended in, kept in the data folder so the next chat starts there."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from emochat import paths
from emochat.errors import EmochatError
from emochat.state import EmotionState

LAST_STATE_FILE = "last_state.json"


def last_state_path() -> Path:
    return paths.data_dir() / LAST_STATE_FILE


def load_last_state() -> EmotionState | None:
    try:
        return EmotionState.from_dict(json.loads(last_state_path().read_text("utf-8")))
    except (OSError, ValueError, TypeError, AttributeError, EmochatError):
        return None  # a damaged file only loses the carried-over mood


def save_last_state(state: EmotionState) -> None:
    # losing the carried-over mood is not worth interrupting a chat for
    with contextlib.suppress(OSError):
        paths.write_private(last_state_path(), json.dumps(state.to_dict()))
