"""Where emochat keeps its files: data (transcripts), config, and a cache (converted models).

``EMOCHAT_HOME`` moves data and config (and, unless ``EMOCHAT_CACHE`` says otherwise, the cache)
into one folder, which is what tests and portable installs want.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "emochat"


def _home_override() -> Path | None:
    home = os.environ.get("EMOCHAT_HOME")
    return Path(home).expanduser() if home else None


def data_dir() -> Path:
    home = _home_override()
    if home is not None:
        return home / "data"
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME))


def config_dir() -> Path:
    home = _home_override()
    if home is not None:
        return home / "config"
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME))


def cache_dir() -> Path:
    explicit = os.environ.get("EMOCHAT_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    home = _home_override()
    if home is not None:
        return home / "cache"
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME))
