"""The one exception type whose message is shown to users as a single line."""


class EmochatError(Exception):
    """A problem the user can fix; the CLI prints ``emochat: <message>`` and exits with 2."""
