"""Exceptions raised by pplog; every one is a `PplogError`."""

from __future__ import annotations


class PplogError(Exception):
    """Base class for every error pplog raises on purpose."""


class LogFormatError(PplogError):
    """A log format string, preset name or nginx configuration cannot be used."""


class SourceError(PplogError):
    """An input path cannot be read at all (missing, not a log, no files)."""


class OptionError(PplogError):
    """A setting passed to the library has an unusable value."""


class ReportError(PplogError):
    """A report cannot be produced or written."""


class PplogWarning(UserWarning):
    """A problem with one input that did not stop the run (unreadable file, ...)."""


def described(value: object) -> str:
    """A wrong argument as an error message names it: its type and a short repr.

    >>> described(b"10.0.0.0/8")
    "bytes b'10.0.0.0/8'"
    """
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"
