"""The user's config file: defaults for the command line and the app, and key remaps.

``<config dir>/config.toml``::

    [defaults]          # any long option of `emochat chat`, with dashes as underscores
    model = "default"
    theme = "emochat-paper"
    detector = "minilm"
    policy = "soothe"
    intensity = 1.2

    [keys]              # binding id = keys, as listed on the help screen (F1)
    toggle_lock = "ctrl+l"

Flags on the command line override the file.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from emochat import paths
from emochat.errors import EmochatError
from emochat.textfiles import read_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


def config_path() -> Path:
    return paths.config_dir() / "config.toml"


def load_config(path: Path | None = None) -> dict[str, Any]:
    location = path or config_path()
    if not location.exists():
        return {}
    try:
        data = tomllib.loads(read_text(location))
    except tomllib.TOMLDecodeError as error:
        raise EmochatError(f"cannot read the config file {location}: {error}") from error
    for table in ("defaults", "keys"):
        if not isinstance(data.get(table, {}), dict):
            raise EmochatError(f"{location}: [{table}] must be a table")
    for binding, keys in data.get("keys", {}).items():
        if not isinstance(keys, str):
            raise EmochatError(f'{location}: [keys] {binding} must be keys in quotes, e.g. "f9"')
    return data


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def dump_config(data: dict[str, Any]) -> str:
    lines = []
    for table, values in data.items():
        if not isinstance(values, dict):
            continue
        lines.append(f"[{table}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)


def remember(key: str, value: Any, path: Path | None = None) -> None:
    """Store one default (such as the chosen theme) in the config file, keeping the rest."""
    location = path or config_path()
    data = load_config(location)
    data.setdefault("defaults", {})[key] = value
    location.parent.mkdir(parents=True, exist_ok=True)
    location.write_text(dump_config(data), encoding="utf-8")
