"""Outputs: each writes a `Summary` somewhere; `--to NAME` picks them."""

from __future__ import annotations

from typing import ClassVar, Protocol

from pplog.errors import ReportError
from pplog.outputs import doctor
from pplog.outputs._options import ReportOptions
from pplog.outputs.html import HtmlReporter
from pplog.outputs.json import JsonReporter
from pplog.outputs.tables import CsvReporter, ParquetReporter
from pplog.outputs.terminal import TerminalReporter
from pplog.reports import Summary

__all__ = ["ReportOptions", "Reporter", "available", "doctor", "get"]


class Reporter(Protocol):
    """Writes a `Summary`; never recomputes it."""

    name: ClassVar[str]

    def write(self, summary: Summary, options: ReportOptions) -> None:
        """Write `summary` as `options` say."""


_BUILTIN: dict[str, type[Reporter]] = {
    r.name: r
    for r in (
        TerminalReporter,
        JsonReporter,
        CsvReporter,
        ParquetReporter,
        HtmlReporter,
    )
}


def available() -> list[str]:
    """Names accepted by `--to`."""
    return list(_BUILTIN)


def get(name: str) -> Reporter:
    """A reporter by name."""
    try:
        return _BUILTIN[name]()
    except KeyError:
        msg = f"unknown output `{name}`; choose one of {', '.join(_BUILTIN)}"
        raise ReportError(msg) from None
