"""Outputs: each writes a `Summary` somewhere; `--to NAME` picks them."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, ClassVar, Protocol, cast

from pplog.errors import ReportError
from pplog.outputs._options import ReportOptions

if TYPE_CHECKING:
    from pplog.reports import Summary

__all__ = ["ReportOptions", "Reporter", "available", "get"]


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
