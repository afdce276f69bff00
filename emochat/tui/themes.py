"""Load colour themes: the ones that ship in ``themes/`` and any in ``<config dir>/themes``."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from textual.theme import Theme

from emochat import paths
from emochat.config import tomllib

THEME_FIELDS = (
    "primary",
    "secondary",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "success",
    "warning",
    "error",
    "dark",
)
DEFAULT_THEME = "emochat-dusk"


def _theme_files() -> list[Path]:
    shipped = Path(str(resources.files("emochat.themes")))
    user = paths.config_dir() / "themes"
    files = sorted(shipped.glob("*.toml"))
    if user.is_dir():
        files += sorted(user.glob("*.toml"))
    return files


def load_themes(warn: callable = print) -> list[Theme]:  # type: ignore[valid-type]
    """Every readable theme file as a Textual theme; a broken user theme is skipped with a
    warning rather than stopping the app."""
    themes = []
    for path in _theme_files():
        try:
            data = tomllib.loads(path.read_text("utf-8"))
            fields = {key: data[key] for key in THEME_FIELDS if key in data}
            themes.append(Theme(name=str(data.get("name", path.stem)), **fields))
        except (OSError, ValueError, TypeError, KeyError) as error:
            warn(f"skipped theme {path}: {error}")
    return themes
