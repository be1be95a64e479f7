"""Errors a user can meet; each message says what went wrong and with which path."""

import re


class QviError(Exception):
    """Base of all errors qvi reports to a user instead of a traceback."""


class AudioError(QviError):
    """An audio file cannot be used (unreadable, empty, silent, absurd)."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class LibraryIndexError(QviError):
    """A reference index is missing, damaged or belongs to another encoder."""


class StaleIndexError(LibraryIndexError):
    """The index was built by another encoder (or another version of it)."""


class EncoderError(QviError):
    """An encoder cannot be built or its weights cannot be loaded."""


class DeviceError(QviError):
    """No usable microphone or speaker: none present, busy, or refused the settings."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def sentence(line: str) -> str:
    """A message line as a sentence of its own (the window's banner): capitalised, with a full stop."""
    return line[:1].upper() + line[1:] + "."


def counted(n: int, word: str, plural: str | None = None) -> str:
    """ "1 sound", "604 sounds", "1,200 categories" (``plural`` for a word that is not made so
    with an s): one spelling of a count for every line that says one."""
    return f"{n:,} {word if n == 1 else plural or word + 's'}"


def printable(name: str) -> str:
    """A name safe to print: control characters (terminal escapes, tabs, newlines) and bytes
    that are not UTF-8 shown as escapes, so a file name cannot drive the terminal or break
    tab-separated output."""
    name = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", name)
