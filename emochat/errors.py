"""The one exception type whose message is shown to users as a single line."""


class EmochatError(Exception):
    """A problem the user can fix; the CLI prints ``emochat: <message>`` and exits with 2."""


def first_line(error: BaseException) -> str:
    """An error's message cut to its first line (libraries raise multi-line ones), or its type
    where it has none."""
    message = str(error).strip()
    return message.splitlines()[0] if message else type(error).__name__
