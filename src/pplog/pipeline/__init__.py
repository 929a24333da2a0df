"""From sources to attributed rows: detect each input's format, open, parse, attribute.

`detect` decides which format each input is read with (`_cuts` cuts a file
whose format changed within it); `opening` reads the
inputs in batches and turns lines into rows (parse, attribute, classify);
`scan` is the public `scan_log` / `read_log`.
"""

from __future__ import annotations

from pplog.errors import PplogWarning
from pplog.pipeline._cuts import zone_lines
from pplog.pipeline.detect import (
    DETECT_LINES,
    UNKNOWN_FORMAT,
    detect_format,
    had_no_lines,
    resolve_format,
    resolve_groups,
)
from pplog.pipeline.filters import Filters
from pplog.pipeline.opening import (
    LogScan,
    PathArg,
    collected_rows,
    open_log,
    parse_lines,
    resolve_policy,
    rows,
)
from pplog.pipeline.scan import read_log, scan_log
from pplog.pipeline.spec import FileGroup, LogSpec

__all__ = [
    "DETECT_LINES",
    "UNKNOWN_FORMAT",
    "FileGroup",
    "Filters",
    "LogScan",
    "LogSpec",
    "PathArg",
    "PplogWarning",
    "collected_rows",
    "detect_format",
    "had_no_lines",
    "open_log",
    "parse_lines",
    "read_log",
    "resolve_format",
    "resolve_groups",
    "resolve_policy",
    "rows",
    "scan_log",
    "zone_lines",
]
