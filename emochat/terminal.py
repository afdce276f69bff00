"""Stored text shown on a terminal: control characters made visible instead of obeyed.

A prompt (or a model's reply) may hold ``ESC ] 0;… BEL`` (retitle the terminal), OSC 52 (write
the clipboard) or cursor moves; printed as they are, the terminal would carry them out. The
transcript and JSON output keep the text exactly; what is printed or drawn goes through here.
"""

from __future__ import annotations

KEPT = frozenset("\n\t")


def _visible(character: str) -> str:
    code = ord(character)
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode "control picture": ␛ for ESC, ␇ for BEL
    if code == 0x7F:
        return "␡"
    return f"\\x{code:02x}"  # C1 controls have no pictures


def inert(text: str) -> str:
    if text.isprintable():  # the common case, checked in C
        return text
    text = text.replace("\r\n", "\n")  # Windows line ends are line ends, not a visible ␍
    return "".join(
        character if character in KEPT or not _is_control(character) else _visible(character)
        for character in text
    )


def _is_control(character: str) -> bool:
    code = ord(character)
    return code < 0x20 or 0x7F <= code <= 0x9F
