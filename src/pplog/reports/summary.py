"""`Summary`: every report table for one set of logs."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape as html_escape
from typing import Any

import polars as pl

from pplog.schema import REJECT_REASON


@dataclass
class Summary:
    """Every report table for one set of logs.

    Attributes
    ----------
    overview
        One row: ``lines``, ``requests``, ``rejected``, ``clients``, ``bytes``,
        ``first_time``, ``last_time``, ``status_1xx`` ... ``status_other``, and
        the attribution checks. With filters, ``requests`` and everything
        after it describe the matching requests; ``filtered_out`` and
        ``excluded_bots`` count the rest, and ``lines`` stays every line read.
    clients, paths, errors
        The tables, busiest first, cut to ``top`` rows (0 = all). With
        ``by="route"`` the paths table is grouped by ``route`` instead.
    rejects
        Rejected lines per ``reject_reason``.
    reject_samples
        The first few rejected lines (``source``, ``line``, ``reject_reason``, ``raw``).
    extra
        The other tables by name: ``timeline``, ``status``, ``user_agents``,
        ``referrers``, ``hosts`` and ``lb`` when the format logs what they
        need, and ``agents``, ``countries``, ``networks`` when enriched.
        With user agents logged, ``browsers`` (``browser``, ``major``),
        ``operating_systems`` (``os``, ``version``) and ``devices``
        (``device``: desktop, mobile, tablet, bot, other), each with
        ``requests``, ``visitors`` (distinct clients) and ``bytes``, health
        checks left out.
    formats
        Which input was read with which format (``source``, ``format``,
        ``detection``); ``format`` is None for an input no preset fits, whose
        lines are rejects (``unknown_format``).
    interval
        The timeline's interval (``1m`` ... ``1w``).
    filters
        The filters applied, as readable labels.
    """

    overview: pl.DataFrame
    clients: pl.DataFrame
    paths: pl.DataFrame
    errors: pl.DataFrame
    rejects: pl.DataFrame
    reject_samples: pl.DataFrame
    format: str = "custom"
    detection: str | None = None
    formats: list[dict[str, str | None]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    top: int = 10
    extra: dict[str, pl.DataFrame] = field(default_factory=dict)
    geoip: str | None = None
    interval: str | None = None
    filters: tuple[str, ...] = ()
    by: str = "path"

    def tables(self) -> dict[str, pl.DataFrame]:
        """The row tables by name, in report order (enrichment tables last)."""
        paths = "routes" if self.by == "route" else "paths"
        return {
            "clients": self.clients,
            paths: self.paths,
            "errors": self.errors,
            **self.extra,
        }

    def overview_dict(self) -> dict[str, Any]:
        """The overview as a plain dict, with rejects by reason and the format."""
        row = self.overview.row(0, named=True) if self.overview.height else {}
        row["rejected_by_reason"] = {
            r[REJECT_REASON]: r["lines"] for r in self.rejects.iter_rows(named=True)
        }
        row["format"] = self.format
        row["formats"] = [dict(f) for f in self.formats]
        row["geoip"] = self.geoip
        row["interval"] = self.interval
        row["filters"] = list(self.filters)
        row["sources"] = list(self.sources)
        row["unreadable"] = [{"source": s, "problem": p} for s, p in self.problems]
        return row

    def __repr__(self) -> str:
        ov = self.overview_dict()
        return (
            f"<pplog.Summary {ov.get('requests', 0):,} requests from "
            f"{ov.get('clients', 0):,} clients, {ov.get('rejected', 0):,} rejected; "
            f"tables: overview, {', '.join(self.tables())}, rejects>"
        )

    def _repr_html_(self) -> str:
        parts = [f"<p>{html_escape(repr(self))}</p>"]
        for name, table in {"overview": self.overview, **self.tables()}.items():
            parts.append(f"<h4>{name}</h4>{table._repr_html_()}")
        return "".join(parts)
