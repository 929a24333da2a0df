"""`--to terminal`: rich tables sized to the terminal.

Every value that came from a log goes through `safe_text` and is handed to
rich as a `Text` object, so neither control bytes nor rich markup in a log can
reach the screen.
"""

from __future__ import annotations

import re
import sys
from typing import ClassVar

import polars as pl
from rich.text import Text

from pplog.outputs._format import (
    cut_raw,
    format_inputs,
    human_bytes,
    overview,
    shown,
    when_text,
)
from pplog.outputs._options import ReportOptions
from pplog.outputs._rich import TITLES, Console, binned, fitted, spark
from pplog.outputs._safe import safe_text
from pplog.reports import Summary
from pplog.reports.timeline import interval_seconds

# Who the visitors are: a glance, not a list (the files have every row)
_BRIEF = {"browsers": 5, "operating_systems": 5}


def _when(value: str | None) -> str:
    """A time formatted by `when_text`, or `-`."""
    return "-" if value is None else value


def _formats(summary: Summary) -> list[Text]:
    """Which inputs were read with which format, when they differ."""
    if summary.format != "mixed":
        return []
    by_format: dict[str, list[str]] = {}
    for source, fmt in format_inputs(summary):
        name = fmt or "(none: no preset fits; lines rejected)"
        by_format.setdefault(name, []).append(source)
    out = []
    for i, (name, files) in enumerate(by_format.items()):
        shown = ", ".join(safe_text(s) for s in files[:3])
        more = f" and {len(files) - 3} more" if len(files) > 3 else ""
        label = "formats:  " if i == 0 else "          "
        out.append(Text(f"{label}{safe_text(name)}: {shown}{more}"))
    return out


def _overview(summary: Summary) -> list[Text]:
    ov = overview(summary)
    lines = []
    head = Text("pplog ", style="bold")
    head.append(safe_text(summary.format), style="cyan")
    if summary.detection:
        head.append(f"  ({safe_text(summary.detection)})", style="dim")
    lines.append(head)
    if summary.sources:
        shown = ", ".join(safe_text(s) for s in summary.sources[:3])
        more = len(summary.sources) - 3
        lines.append(
            Text(f"inputs:   {shown}" + (f" and {more} more" if more > 0 else ""))
        )
    lines.extend(_formats(summary))
    rejected = f"{ov.get('rejected', 0):,}"
    reasons = ov.get("rejected_by_reason") or {}
    if reasons:
        rejected += " (" + ", ".join(f"{k} {v:,}" for k, v in reasons.items()) + ")"
    lines.append(
        Text(
            f"lines:    {ov.get('lines', 0):,}   requests: {ov.get('requests', 0):,}   "
            f"rejected: {rejected}"
        )
    )
    clients, size = ov.get("clients", 0), human_bytes(ov.get("bytes"))
    lines.append(Text(f"clients:  {clients:,}   bytes: {size}"))
    first, last = _when(ov.get("first_time")), _when(ov.get("last_time"))
    lines.append(Text(f"time:     {first} → {last} UTC"))
    classes = [
        f"{name} {ov.get(f'status_{name}', 0):,}"
        for name in ("1xx", "2xx", "3xx", "4xx", "5xx", "other")
        if ov.get(f"status_{name}", 0)
    ]
    lines.append(Text("status:   " + ("   ".join(classes) or "-")))
    if summary.filters:
        shown = "; ".join(safe_text(f) for f in summary.filters)
        left = ov.get("filtered_out", 0) + ov.get("excluded_bots", 0)
        lines.append(
            Text(f"filter:   {shown} ({left:,} requests left out)", style="cyan")
        )
    distrust = [
        f"{label} {ov[key]:,}"
        for key, label in (
            ("excluded_bots", "bot requests left out"),
            ("health_checks", "health checks"),
            ("without_client_address", "no client address"),
            ("forwarded_by_untrusted", "XFF from untrusted peers"),
            ("client_private_or_trusted", "credited to private/balancer addresses"),
        )
        if ov.get(key)
    ]
    if distrust:
        lines.append(Text("check:    " + "   ".join(distrust), style="yellow"))
    if ov.get("approximate"):
        lines.append(
            Text(
                "note:     estimated (--approx): "
                f"{ov['approximate']} (distinct counts ±1.6%, percentiles ±1%)",
                style="dim",
            )
        )
    if summary.geoip and not summary.geoip.startswith("GeoIP:"):
        lines.append(Text(f"note:     {summary.geoip}", style="dim"))
    return lines


def _duration(seconds: int) -> str:
    """300 -> '5m'; the largest unit that divides evenly."""
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _times(interval: str, size: int) -> str:
    """`size` intervals as one duration: 10s x 3 -> '30s', 1y x 2 -> '2y'."""
    calendar = re.fullmatch(r"(\d+)(mo|y)", interval.strip())
    if calendar:  # months and years have no fixed length
        return f"{int(calendar.group(1)) * size}{calendar.group(2)}"
    return _duration(interval_seconds(interval) * size)


def sparklines(df: pl.DataFrame, interval: str | None, width: int) -> list[Text]:
    """The timeline as two sparklines (requests, errors) sharing one scale."""
    if df.height == 0:
        return [Text("Timeline: none", style="bold")]
    room = max(10, width - 22)
    requests = binned(df.get_column("requests").to_list(), room)
    errors = binned(
        (df.get_column("errors_4xx") + df.get_column("errors_5xx")).to_list(), room
    )
    size = -(-df.height // len(requests))  # points summed into each bar
    every = interval or "?"
    if size > 1 and interval:
        every = _times(interval, size)
    times = df.select(when_text("time")).get_column("time")
    first, last = _when(times[0]), _when(times[-1])
    head = Text(f"Timeline ({every} per bar, {first} → {last} UTC)", style="bold")
    top = max(requests)
    line = Text("requests  ")
    line.append(spark(requests, top), style="cyan")
    line.append(f"  max {top:,}")
    err = Text("4xx+5xx   ")
    err.append(spark(errors, top), style="red")
    err.append(f"  max {max(errors):,}")
    return [head, line, err]


_STATUS_STYLES = {2: "green", 3: "blue", 4: "yellow", 5: "red"}


def status_lines(df: pl.DataFrame, width: int) -> list[Text]:
    """Every status code with its count and share, wrapped between codes."""
    lines = [Text("Status codes: ", style="bold")]
    for row in df.iter_rows(named=True):
        code = row["status"]
        item = Text("-" if code is None else str(code))
        item.stylize(_STATUS_STYLES.get((code or 0) // 100, ""))
        item.append(f" {row['requests']:,} ({row['share']:.1%})")
        line = lines[-1]
        gap = "   " if line.plain.strip() and not line.plain.endswith(": ") else ""
        if line.cell_len + len(gap) + item.cell_len > width and line.plain.strip():
            lines.append(Text("  "))
            line, gap = lines[-1], ""
        line.append(gap)
        line.append_text(item)
    return lines


def _without_empty_counts(df: pl.DataFrame) -> pl.DataFrame:
    """Leave out count columns that are zero in every row (nothing to see)."""
    empty = [
        c
        for c, dtype in df.schema.items()
        if dtype == pl.UInt64 and c != "requests" and not df.get_column(c).sum()
    ]
    return df.drop(empty)


class TerminalReporter:
    """Overview, top tables, sampled rejects and unreadable inputs."""

    name: ClassVar[str] = "terminal"

    def write(self, summary: Summary, options: ReportOptions) -> None:
        """Write `summary` to stdout (or `options.stream`), cut to `options.top`."""
        summary = shown(summary, options.top)
        console = Console(
            file=options.stream or sys.stdout,
            width=options.width,
            color_system="auto" if options.color is not False else None,
            force_terminal=options.color or None,
            highlight=False,
            markup=False,
            emoji=False,
        )
        for line in _overview(summary):
            console.print(line)
        totals = {"clients": overview(summary).get("clients")}
        for name, df in summary.tables().items():
            console.print()
            if name == "timeline":
                for line in sparklines(df, summary.interval, console.width):
                    console.print(line, no_wrap=True, crop=True)
                continue
            if name == "status" and df.height:
                for line in status_lines(df, console.width):
                    console.print(line, no_wrap=True, crop=True)
                continue
            if name == "lb":
                df = _without_empty_counts(df)
            total = totals.get(name)
            if name in _BRIEF:
                total, df = df.height, df.head(_BRIEF[name])
            if df.height == 0:
                console.print(Text(f"{TITLES.get(name, name)}: none", style="bold"))
                continue
            console.print(fitted(console, name, df, total))
        if summary.reject_samples.height:
            console.print()
            console.print(
                Text(
                    "Rejected lines (first few; --rejects FILE keeps all)", style="bold"
                )
            )
            for row in summary.reject_samples.iter_rows(named=True):
                where = Text(
                    f"  {safe_text(row['source'])}:{row['line']} ", style="dim"
                )
                where.append(f"{row['reject_reason']}: ", style="yellow")
                raw = row["raw"]
                where.append(safe_text(None if raw is None else cut_raw(raw)))
                console.print(where, overflow="ellipsis", no_wrap=True, crop=True)
        if summary.problems:
            console.print()
            console.print(
                Text("Inputs that could not be read completely", style="bold red")
            )
            for name, problem in summary.problems:
                console.print(Text(f"  {safe_text(name)}: {safe_text(problem)}"))
