"""What a transcript record may hold. Every reader (the chat, the list, show, export, import)
checks records here, so one line of valid JSON with the wrong types is skipped with a warning
instead of breaking every conversation that is listed with it. Safe conversation ids live here
too: an id becomes a file name, so it is checked wherever one comes in.
"""

from __future__ import annotations

import math
import re
from typing import Any

from emochat.emotion import N_AXES
from emochat.state import POLICIES

# Letters, digits, dot, dash and underscore, starting with a letter or digit: never a path
# separator, never "..", never a control character.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
RETRACTABLE = ("reply", "turn")


def is_safe_id(value: object) -> bool:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None and ".." not in value


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _vector(value: object) -> bool:
    return isinstance(value, list) and len(value) == N_AXES and all(_number(v) for v in value)


def _state(value: object) -> bool:
    if not isinstance(value, dict) or not _vector(value.get("vector")):
        return False
    if "baseline" in value and not _vector(value["baseline"]):
        return False
    return all(value.get(key, "mirror") in POLICIES for key in ("policy", "unlocked_policy"))


def _reading(value: object) -> bool:
    return (
        isinstance(value, dict)
        and _vector(value.get("vector"))
        and _number(value.get("confidence", 0.0))
    )


def _text(value: object) -> bool:
    return isinstance(value, str)


def _flag(value: object) -> bool:
    return isinstance(value, bool)


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# Per record type: field -> (required, check). Fields not named here are kept as they are.
FIELDS: dict[str, dict[str, tuple[bool, Any]]] = {
    "user": {"text": (True, _text), "state": (False, _state), "reading": (False, _reading)},
    "assistant": {
        "text": (True, _text),
        "emotion": (False, _vector),
        "new_tokens": (False, _count),
        "tokens_per_second": (False, _number),
        "cancelled": (False, _flag),
        "truncated": (False, _flag),
        "continues": (False, _flag),
        "expressed": (False, _reading),  # the reply read back by the detector
        "broken": (False, _text),
    },
    "emotion": {"emotion": (True, _vector), "state": (False, _state), "source": (False, _text)},
    "retract": {"what": (True, lambda value: value in RETRACTABLE), "reason": (False, _text)},
    "title": {"title": (True, _text)},
}

HEADER_FIELDS: dict[str, Any] = {
    "id": is_safe_id,
    "created": _text,
    "model": _text,
    "state": _state,
    "emotion": _vector,
    "sampling": lambda value: isinstance(value, dict),
    "system_prompt": lambda value: value is None or isinstance(value, str),
    "intensity": _number,
    "policy": lambda value: value in POLICIES,
}


def record_problem(record: object) -> str | None:
    """Why an event record cannot be used, or None when it can. A type this version does not
    know is kept (a later version may have written it) and ignored when the chat is read."""
    if not isinstance(record, dict):
        return "not an object"
    kind = record.get("type")
    if not isinstance(kind, str):
        return "no record type"
    if "time" in record and not _text(record["time"]):
        return "a time that is not text"
    for name, (required, check) in FIELDS.get(kind, {}).items():
        if name not in record:
            if required:
                return f"a {kind} record without {name}"
        elif not check(record[name]):
            return f"a {kind} record with a malformed {name}"
    return None


def clean_header(header: dict[str, Any]) -> list[str]:
    """Drop the header fields of the wrong type (a header is needed whole, so its bad fields go
    rather than the whole line); returns their names."""
    dropped = [
        name for name, check in HEADER_FIELDS.items() if name in header and not check(header[name])
    ]
    for name in dropped:
        del header[name]
    return dropped
