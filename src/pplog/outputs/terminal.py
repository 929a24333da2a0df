"""`--to terminal`: rich tables sized to the terminal.

Every value that came from a log goes through `safe_text` and is handed to
rich as a `Text` object, so neither control bytes nor rich markup in a log can
reach the screen.
"""

from __future__ import annotations

import re
import sys
from typing import Any, ClassVar

import polars as pl
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pplog.outputs._format import (
    cut_raw,
    human_bytes,
    overview,
    shown,
    when_text,
    with_times_as_text,
)
from pplog.outputs._options import ReportOptions
from pplog.outputs._safe import safe_text
from pplog.reports import Summary
from pplog.reports.timeline import interval_seconds

TITLES = {
    "clients": "Top clients (health checkers not counted)",
    "paths": "Top paths",
    "routes": "Top routes",
    "errors": "Errors (4xx/5xx)",
    "status": "Status codes",
    "user_agents": "Top user agents",
    "referrers": "Top referrers",
    "hosts": "Hosts",
    "lb": "Balancers (TCP peers) and how clients were found",
    "agents": "Agent classes",
    "browsers": "Browsers",
    "operating_systems": "Operating systems",
    "devices": "Devices",
    "countries": "Countries",
    "networks": "Networks (ASN)",
}
# Who the visitors are: a glance, not a list (the files have every row)
_BRIEF = {"browsers": 5, "operating_systems": 5}
_NUMERIC = (pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64, pl.Int32, pl.Int64, pl.Float64)


def _when(value: str | None) -> str:
    """A time formatted by `when_text`, or `-`."""
    return "-" if value is None else value


# What a null means in a key column.
_NULL_LABELS = {
    "client_ip": "(no address)",
    "path": "(bad request line)",
    "route": "(bad request line)",
    "peer": "(not logged)",
}


def _cell(column: str, value: Any) -> Text:
    if value is None:
        return Text(_NULL_LABELS.get(column, "-"), style="dim")
    if column == "bytes":
        return Text(human_bytes(value))
    if column == "share":
        return Text(f"{value:.1%}")
    if isinstance(value, bool):
        return Text("yes" if value else "no")
    if isinstance(value, float):
        return Text(f"{value:.3f}")
    if isinstance(value, int):
        return Text(f"{value:,}")
    return Text(safe_text(value))


_KEEP = ("client_ip", "status", "peer", "trusted", "agent_class", "browser", "os")


def _table(name: str, df: pl.DataFrame, total: int | None, width: int) -> Table:
    title = TITLES.get(name, name)
    if total is not None and total > df.height:
        title += f" (top {df.height})"
    table = Table(title=title, title_justify="left", title_style="bold", expand=False)
    rows = [
        [_cell(c, v) for c, v in row.items()]
        for row in with_times_as_text(df).iter_rows(named=True)
    ]
    natural, keep = [], []
    for i, (column, dtype) in enumerate(df.schema.items()):
        longest = max((r[i].cell_len for r in rows), default=1)
        natural.append(max(longest, len(column)))
        # numbers, times and addresses are never cut; free text (paths) gives way
        numeric = dtype in _NUMERIC or isinstance(dtype, pl.Datetime)
        keep.append(numeric or column in _KEEP)
    # free-text columns share what the others leave (3 = padding and border)
    fixed = 1 + sum(n + 3 for n, k in zip(natural, keep, strict=True) if k)
    free = keep.count(False)
    share = max(8, (width - fixed) // free - 3) if free else 0
    for i, (column, dtype) in enumerate(df.schema.items()):
        table.add_column(
            column,
            justify="right" if dtype in _NUMERIC else "left",
            overflow="ellipsis",
            no_wrap=True,
            min_width=min(natural[i], 39) if keep[i] else 8,
            max_width=None if keep[i] else min(natural[i], share),
        )
    for row in rows:
        table.add_row(*row)
    return table


def _formats(summary: Summary) -> list[Text]:
    """Which inputs were read with which format, when they differ."""
    if summary.format != "mixed":
        return []
    by_format: dict[str, list[str]] = {}
    for f in summary.formats:
        name = f["format"] or "(none: no preset fits; lines rejected)"
        by_format.setdefault(name, []).append(f["source"] or "")
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


# Columns given up first when a table is wider than the terminal.
_DROP_ORDER = (
    "first_time",
    "top_user_agent",
    "top_clients",
    "last_time",
    "upstream_response_time_max",
    "upstream_response_time_p99",
    "upstream_response_time_p50",
    "upstream_response_time_p95",
    "paths",
    "ok_2xx_3xx",
    "request_time_max",
    "request_time_p99",
    "request_time_p50",
    "forwarded_by_untrusted",
    "direct",
    "without_client_address",
    "via_header",
    "via_proxy_protocol",
    "clients",
    "errors_4xx",
    "bytes",
)


_FREE_TEXT_FLOOR = 32  # free text may be cut down to this before columns go


def _natural_width(df: pl.DataFrame) -> int:
    """Width the table needs: content plus padding and borders, with free text
    (paths, user agents) counted at no more than `_FREE_TEXT_FLOOR`."""
    total = 1
    text = with_times_as_text(df)
    for column, dtype in df.schema.items():
        cells = [_cell(column, v).cell_len for v in text.get_column(column).to_list()]
        width = max([len(column), *cells])
        numeric = dtype in _NUMERIC or isinstance(dtype, pl.Datetime)
        if not numeric and column not in _KEEP:
            width = min(width, _FREE_TEXT_FLOOR)
        total += width + 3
    return total


def fitted(console: Console, name: str, df: pl.DataFrame, total: int | None) -> Table:
    """The table, minus low-priority columns until it fits the console width."""
    for column in _DROP_ORDER:
        if _natural_width(df) <= console.width:
            break
        if column in df.columns:
            df = df.drop(column)
    return _table(name, df, total, console.width)


_BARS = "▁▂▃▄▅▆▇█"


def spark(values: list[int], top: int) -> str:
    if top <= 0:
        return " " * len(values)
    return "".join(
        " " if v == 0 else _BARS[min(len(_BARS) - 1, (v * len(_BARS) - 1) // top)]
        for v in values
    )


def binned(values: list[int], width: int) -> list[int]:
    """Sum neighbouring points so that at most `width` remain."""
    if len(values) <= width:
        return values
    size = -(-len(values) // width)
    out = [sum(values[i : i + size]) for i in range(0, len(values), size)]
    short = len(values) % size
    if short:  # the last bar holds fewer points: scale it, or it dips falsely
        out[-1] = round(out[-1] * size / short)
    return out


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
