"""Report tables: one module each, the mergeable `Partial`, `finish` and `Summary`.

Pure functions from rows to partials and from partials to tables; the
orchestration that reads inputs and runs them is `pplog.run`.
"""

from __future__ import annotations

from pplog.reports._columns import FAILED
from pplog.reports._spool import spooled, with_report_columns, write_rejects
from pplog.reports.finish import FinishSettings, Tables, finish
from pplog.reports.mapping import MapSettings, partial_of
from pplog.reports.partial import Partial, merge
from pplog.reports.summary import Summary

__all__ = [
    "FAILED",
    "FinishSettings",
    "MapSettings",
    "Partial",
    "Summary",
    "Tables",
    "finish",
    "merge",
    "partial_of",
    "spooled",
    "with_report_columns",
    "write_rejects",
]
