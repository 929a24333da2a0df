"""pplog: real clients, paths and errors from nginx logs behind load balancers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
from pplog.run import diagnose, summarize

if TYPE_CHECKING:
    from pplog.batch.dataset import scan_dataset, verify
    from pplog.batch.ingest import ingest
    from pplog.reports.doctor import Finding

__version__ = "0.1.0"

# The dataset side and the doctor's checks are imported when first used:
# `pplog summarize` starts faster.
_BATCH = frozenset({"ingest", "scan_dataset", "verify"})
_DOCTOR = frozenset({"Finding"})


def __getattr__(name: str) -> Any:  # noqa: ANN401 - module attributes
    if name in _BATCH:
        from pplog import batch

        return getattr(batch, name)
    if name in _DOCTOR:
        from pplog.reports import doctor

        return getattr(doctor, name)
    msg = f"module 'pplog' has no attribute {name!r}"
    raise AttributeError(msg)


__all__ = [
    "PRESETS",
    "Finding",
    "LogFormat",
    "LogFormatError",
    "LogSpec",
    "OptionError",
    "PplogError",
    "PplogWarning",
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
