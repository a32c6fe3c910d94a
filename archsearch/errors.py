"""The one base class for errors a user can fix: the CLI prints them as one line, never a traceback."""


class ArchsearchError(ValueError):
    """Bad input (config, space, data, run directory): the message names the problem and the fix."""


class ConfigError(ArchsearchError):
    """A configuration or override that cannot be composed or instantiated."""


def printable(value: object) -> str:
    """``value`` as text on one line: as written, or quoted with escapes where it holds a line break or
    another control character (a value from a user or from someone else's file, inside a message)."""
    text = str(value)
    return text if text.isprintable() else repr(text)


def one_line(text: str, limit: int = 500) -> str:
    """The first line of ``text``, cut to ``limit`` characters: how a failure's reason is recorded."""
    return (text.splitlines() or [""])[0][:limit]
