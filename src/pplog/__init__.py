"""pplog: real clients, paths and errors from nginx logs behind load balancers."""

from __future__ import annotations

from pplog.batch import ingest, scan_dataset, verify
from pplog.errors import (
    LogFormatError,
    OptionError,
    PplogError,
    ReportError,
    SourceError,
)
from pplog.formats import PRESETS, LogFormat, get_format
from pplog.pipeline import PplogWarning, read_log, scan_log
from pplog.reports import Summary, summarize

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "LogFormat",
    "LogFormatError",
    "OptionError",
    "PplogError",
    "PplogWarning",
    "ReportError",
    "SourceError",
    "Summary",
    "__version__",
    "get_format",
    "ingest",
    "read_log",
    "scan_dataset",
    "scan_log",
    "summarize",
    "verify",
]
