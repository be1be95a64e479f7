"""Errors a user can meet; each message says what went wrong and with which path."""


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
