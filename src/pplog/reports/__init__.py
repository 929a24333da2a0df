"""Report tables (one module each) and the `Summary` that holds them."""

from __future__ import annotations

from pplog.reports.summary import Summary, summarize

__all__ = ["Summary", "summarize"]
