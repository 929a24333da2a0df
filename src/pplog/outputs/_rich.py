"""Rich tables and sparklines shared by the terminal outputs (`terminal`, `live`).

Every value from a log becomes a `Text` through `safe_text` (never markup);
tables are sized to the console, free text giving way first.
"""

from __future__ import annotations

import errno
import os
from typing import Any

import polars as pl
import rich.console
from rich.table import Table
from rich.text import Text

from pplog.outputs._format import human_bytes, with_times_as_text
from pplog.outputs._safe import safe_text

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


class Console(rich.console.Console):
    """rich's console, but a closed pipe is raised, not turned into an exit.

    rich ends the process with `SystemExit(1)` when the reader of its output
    goes away (`pplog summarize ... | head`); raised as `BrokenPipeError`, it
    reaches `pplog.cli.main`, which ends the run quietly with 128 + SIGPIPE
    (a library caller decides for itself).
    """

    def on_broken_pipe(self) -> None:
        """Stop writing and raise `BrokenPipeError`."""
        self.quiet = True
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


_NUMERIC = (pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64, pl.Int32, pl.Int64, pl.Float64)


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


def fitted(
    console: rich.console.Console, name: str, df: pl.DataFrame, total: int | None
) -> Table:
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
