"""Load colour themes: the ones that ship in ``themes/`` and any in ``<config dir>/themes``."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from textual.color import Color, ColorParseError
from textual.theme import Theme

from emochat import paths
from emochat.config import tomllib
from emochat.errors import EmochatError
from emochat.textfiles import read_text

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
            data = tomllib.loads(read_text(path))
            fields = {key: data[key] for key in THEME_FIELDS if key in data}
            _check_fields(fields)
            themes.append(Theme(name=str(data.get("name", path.stem)), **fields))
        except (EmochatError, ValueError, TypeError, KeyError) as error:
            warn(f"skipped theme {path}: {error}")
    return themes


def _check_fields(fields: dict[str, object]) -> None:
    """Textual reads a theme's colours only when it applies the theme, and a bad one then stops
    the app: read them now."""
    for key, value in fields.items():
        if key == "dark":
            if not isinstance(value, bool):
                raise EmochatError("dark must be true or false")
        elif not isinstance(value, str):
            raise EmochatError(f"{key} must be a colour in quotes")
        else:
            try:
                Color.parse(value)
            except ColorParseError as error:
                raise EmochatError(f"{key} = {value!r} is not a colour") from error
