"""Outputs: each writes a `Summary` somewhere; `--to NAME` picks them."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, Protocol, cast

from pplog.errors import ReportError
from pplog.outputs._files import Staging
from pplog.outputs._options import ReportOptions
from pplog.outputs._safe import safe_text

if TYPE_CHECKING:
    from pplog.reports import Summary

__all__ = [
    "ReportOptions",
    "Reporter",
    "available",
    "get",
    "safe_text",
    "write_all",
]


class Reporter(Protocol):
    """Writes a `Summary`; never recomputes it."""

    name: ClassVar[str]

    def write(self, summary: Summary, options: ReportOptions) -> None:
        """Write `summary` as `options` say."""


# name -> module and class; a reporter's module is imported when it is used
_BUILTIN: dict[str, tuple[str, str]] = {
    "terminal": ("terminal", "TerminalReporter"),
    "json": ("json", "JsonReporter"),
    "csv": ("tables", "CsvReporter"),
    "parquet": ("tables", "ParquetReporter"),
    "html": ("html", "HtmlReporter"),
}


def available() -> list[str]:
    """Names accepted by `--to`."""
    return list(_BUILTIN)


def get(name: str) -> Reporter:
    """A reporter by name."""
    if name not in _BUILTIN:
        msg = f"unknown output `{name}`; choose one of {', '.join(_BUILTIN)}"
        raise ReportError(msg)
    module, cls = _BUILTIN[name]
    reporter = getattr(importlib.import_module(f"pplog.outputs.{module}"), cls)
    return cast("Reporter", reporter())


def write_all(summary: Summary, jobs: Sequence[tuple[str, ReportOptions]]) -> None:
    """Write `summary` with each (output name, options): every file or none.

    Outputs to files are built under temporary names first and moved into
    place only when all of them were written, so a failing output (a full
    disk, a bad target) leaves no partial set behind. The one output to
    stdout (terminal, or json without `-o`) comes after the files.
    """
    to_files = [(n, o) for n, o in jobs if o.out is not None]
    to_stdout = [(n, o) for n, o in jobs if o.out is None]
    staging = Staging()
    try:
        for name, options in to_files:
            get(name).write(summary, dataclasses.replace(options, staging=staging))
    except BaseException:
        staging.discard()
        raise
    staging.publish()
    for name, options in to_stdout:
        get(name).write(summary, options)
