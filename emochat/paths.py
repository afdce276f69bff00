"""Where emochat keeps its files: data (transcripts), config, and a cache (converted models).

``EMOCHAT_HOME`` moves data and config (and, unless ``EMOCHAT_CACHE`` says otherwise, the cache)
into one folder, which is what tests and portable installs want.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
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


def private_dir(folder: Path) -> Path:
    """Make ``folder`` (and any missing folder above it) readable by the user only: what is
    kept there is what the user said."""
    missing = []
    current = folder
    while not current.exists():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)
    return folder


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` all at once, readable by the user only. The text goes to a
    temporary file of its own first (two processes never share one), then takes the name."""
    private_dir(path.parent)
    descriptor, staging = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staging, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(staging)
        raise


@contextlib.contextmanager
def held_lock(path: Path) -> Iterator[None]:
    """Wait for, then hold, an exclusive lock on ``path`` (made if missing): one process at a
    time does what it guards (converting a model on first start), the others then find it done."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; the rename below stays atomic
            yield
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
