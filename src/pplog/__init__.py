"""pplog: real clients, paths and errors from nginx logs behind load balancers."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pplog.batch.dataset import scan_dataset, verify
    from pplog.batch.ingest import ingest
    from pplog.clientip import ProxyPolicy
    from pplog.errors import (
        LogFormatError,
        OptionError,
        PplogError,
        ReportError,
        SourceError,
    )
    from pplog.formats import PRESETS, LogFormat, get_format
    from pplog.pipeline import PplogWarning, read_log, scan_log
    from pplog.pipeline.spec import LogSpec
    from pplog.reports import Summary
    from pplog.reports.doctor import Finding
    from pplog.run import diagnose, summarize

__version__ = "0.1.0"

# Every name is imported when first used: `import pplog` loads nothing, so
# the command line (`pplog.cli`) can set the allocator before polars loads
# (`pplog._memory`), and `pplog summarize` does not load the dataset side.
_HOMES = {
    "LogFormatError": "pplog.errors",
    "OptionError": "pplog.errors",
    "PplogError": "pplog.errors",
    "ReportError": "pplog.errors",
    "SourceError": "pplog.errors",
    "PRESETS": "pplog.formats",
    "LogFormat": "pplog.formats",
    "get_format": "pplog.formats",
    "PplogWarning": "pplog.pipeline",
    "read_log": "pplog.pipeline",
    "scan_log": "pplog.pipeline",
    "LogSpec": "pplog.pipeline.spec",
    "ProxyPolicy": "pplog.clientip",
    "Summary": "pplog.reports",
    "Finding": "pplog.reports.doctor",
    "diagnose": "pplog.run",
    "summarize": "pplog.run",
    "ingest": "pplog.batch",
    "scan_dataset": "pplog.batch",
    "verify": "pplog.batch",
}


def __getattr__(name: str) -> Any:  # noqa: ANN401 - module attributes
    home = _HOMES.get(name)
    if home is None:
        msg = f"module 'pplog' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})


__all__ = [
    "PRESETS",
    "Finding",
    "LogFormat",
    "LogFormatError",
    "LogSpec",
    "OptionError",
    "PplogError",
    "PplogWarning",
    "ProxyPolicy",
    "ReportError",
    "SourceError",
    "Summary",
    "__version__",
    "diagnose",
    "get_format",
    "ingest",
    "read_log",
    "scan_dataset",
    "scan_log",
    "summarize",
    "verify",
]
