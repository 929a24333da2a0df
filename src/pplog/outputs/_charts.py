"""Inline SVG charts for the HTML report: timeline, status mix, paths, latency,
browsers and operating systems.

Each chart is an `<svg>` string built in Python (rects, lines and text with
computed coordinates); the page runs no JavaScript. Every label and tooltip
that comes from the log goes through `_text` or `_short` (control bytes as
`\\xHH`, then `html.escape`) before it is placed in the markup.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from pplog.errors import OptionError
from pplog.outputs._format import WHEN
from pplog.outputs._safe import safe_text
from pplog.reports.timeline import interval_seconds

if TYPE_CHECKING:
    from pplog.reports import Summary

COLOURS = {
    "1xx": "#94a3b8",
    "2xx": "#16a34a",
    "3xx": "#2563eb",
    "4xx": "#f59e0b",
    "5xx": "#dc2626",
    "other": "#6b7280",
    "requests": "#818cf8",
    "p50": "#c4b5fd",
    "p95": "#8b5cf6",
    "p99": "#5b21b6",
    "browsers": "#0d9488",
    "operating_systems": "#db2777",
}

# The escaping helpers are shared with html.py, which imports them from here.


def _text(value: object) -> str:
    """Log-derived `value` safe inside HTML text and attribute values."""
    return html.escape(safe_text(value), quote=True)


def _short(value: object, limit: int = 40) -> str:
    """Safe text cut to `limit` characters (cut before escaping, never mid-entity)."""
    text = safe_text(value)
    return html.escape(text if len(text) <= limit else text[: limit - 1] + "…")


def _num(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.3g}"


_W = 1040  # chart width in SVG units (scaled down on narrow screens)


def chart_sections(summary: Summary) -> list[str]:
    """The four charts as `<section>`s, each one `<svg class="chart">` or a note."""
    tables = summary.tables()
    key = "routes" if "routes" in tables else "paths"
    by_path = tables.get(key)
    visitors = _visitor_requests(summary.overview)
    return [
        _section("Requests over time", _timeline_chart(summary)),
        _section("Status mix", _status_chart(summary)),
        _section(f"Top {key}", _paths_chart(by_path, key=key[:-1])),
        _section(
            f"Latency per {key[:-1]} (seconds)", _latency_chart(by_path, key=key[:-1])
        ),
        *(
            _section(title, _share_chart(tables.get(name), name, keys, visitors))
            for name, title, keys in _SHARES
            if name in tables
        ),
    ]


def _visitor_requests(overview: pl.DataFrame) -> int:
    """`requests` less `health_checks` (read as numbers: the overview's times may
    lie beyond what Python's datetime holds)."""
    if not overview.height:
        return 0
    counts = [c for c in ("requests", "health_checks") if c in overview.columns]
    row = dict(zip(counts, overview.select(counts).row(0), strict=True))
    return int(row.get("requests") or 0) - int(row.get("health_checks") or 0)


# Who the visitors are: (table, title, key columns joined into the label)
_SHARES = (
    ("browsers", "Browsers (health checkers not counted)", ("browser", "major")),
    ("operating_systems", "Operating systems", ("os", "version")),
)


def _share_chart(
    df: pl.DataFrame | None, name: str, keys: tuple[str, ...], visitors: int
) -> str:
    """Requests of the busiest families (with their version), and their share
    of the requests that are not health checks (`visitors`)."""
    if df is None or not df.height or not {*keys, "requests"} <= set(df.columns):
        return _no_data(f"no {name.replace('_', ' ')}")
    total = max(visitors, sum(df.get_column("requests").fill_null(0)))
    if not total:
        return _no_data(f"no {name.replace('_', ' ')}")
    bars = []
    for r in df.head(12).iter_rows(named=True):
        n = r["requests"] or 0
        text = " ".join(str(r[k]) for k in keys if r[k] is not None)
        tip = f"{_text(text)}: {n:,} requests, {r.get('visitors') or 0:,} visitors"
        bars.append(
            _Bar(_short(text), [(n, COLOURS[name], tip)], f"{n:,} ({n / total:.1%})")
        )
    return _hbars(name, bars, [(COLOURS[name], "requests")], "requests")


def _section(title: str, body: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>{body}</section>"


def _no_data(what: str) -> str:
    return f'<p class="muted no-data">no data: {html.escape(what)}</p>'


def _svg(name: str, height: float, title: str, parts: list[str]) -> str:
    return (
        f'<svg class="chart" data-chart="{name}" xmlns="http://www.w3.org/2000/svg" '
        f'role="img" viewBox="0 0 {_W} {height:.0f}" width="{_W}" '
        f'height="{height:.0f}"><title>{html.escape(title)}</title>'
        + "".join(parts)
        + "</svg>"
    )


def _rect(x: float, y: float, w: float, h: float, fill: str, tip: str = "") -> str:
    title = f"<title>{tip}</title>" if tip else ""
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" '
        f'height="{max(h, 0):.1f}" fill="{fill}">{title}</rect>'
    )


def _label(
    x: float, y: float, text: str, *, anchor: str = "start", cls: str = ""
) -> str:
    """An SVG text element; `text` must already be escaped."""
    css = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{css}>{text}</text>'


def _legend(items: list[tuple[str, str]], y: float, x: float = 0) -> list[str]:
    """Colour swatches with labels in one row (labels are plain text)."""
    out = []
    for colour, label in items:
        out.append(_rect(x, y - 10, 12, 12, colour))
        out.append(_label(x + 16, y, html.escape(label)))
        x += 34 + 7 * len(label)
    return out


def _nice_step(top: float, ticks: int = 4) -> float:
    """A 1/2/5 x 10^k step so that `ticks` steps cover `top`."""
    raw = max(top, 1e-9) / ticks
    magnitude = 10.0 ** _exponent(raw)
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def _exponent(value: float) -> int:
    exp = 0
    while value >= 10:
        value, exp = value / 10, exp + 1
    while value < 1:
        value, exp = value * 10, exp - 1
    return exp


def _value_axis(
    top: float, x0: float, width: float, y0: float, y1: float, title: str
) -> tuple[float, list[str]]:
    """Vertical gridlines and tick labels for a horizontal value axis."""
    step = _nice_step(top)
    limit = step * max(1, -(-top // step))
    out = []
    for i in range(int(round(limit / step)) + 1):
        x = x0 + width * i * step / limit
        out.append(
            f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{y0}" y2="{y1}"/>'
        )
        out.append(_label(x, y1 + 14, _num(i * step), anchor="middle"))
    out.append(_label(x0 + width / 2, y1 + 32, html.escape(title), anchor="middle"))
    return limit, out


@dataclass(frozen=True)
class _Bar:
    """One row of a horizontal bar chart; `segments` are (value, colour, tooltip)."""

    label: str
    segments: list[tuple[float, str, str]]
    note: str


def _hbars(
    name: str, bars: list[_Bar], legend: list[tuple[str, str]], axis: str
) -> str:
    """Horizontal (stacked) bars with labels left, notes right, and a value axis."""
    longest = max(len(html.unescape(b.label)) for b in bars)
    x0, row = min(290.0, 24 + 6.8 * longest), 22
    plot = _W - x0 - 200
    y0 = 30.0
    y1 = y0 + row * len(bars)
    top = max(sum(v for v, _, _ in b.segments) for b in bars)
    limit, parts = _value_axis(top, x0, plot, y0 - 4, y1, axis)
    parts += _legend(legend, 14, x0)
    for i, bar in enumerate(bars):
        y = y0 + i * row
        parts.append(_label(x0 - 8, y + 15, bar.label, anchor="end", cls="mono"))
        x = x0
        for value, colour, tip in bar.segments:
            w = plot * value / limit
            parts.append(_rect(x, y + 3, w, row - 6, colour, tip))
            x += w
        parts.append(_label(x + 6, y + 15, bar.note))
    parts.append(f'<line class="axis" x1="{x0}" x2="{x0}" y1="{y0 - 4}" y2="{y1}"/>')
    return _svg(name, y1 + 42, f"{name} chart", parts)


def _status_class(code: int | None) -> str:
    return f"{code // 100}xx" if code is not None and 100 <= code < 600 else "other"


def _status_chart(summary: Summary) -> str:
    """Share of each status class (one stacked bar), then the busiest codes."""
    df = summary.tables().get("status")
    if df is not None and df.height and {"status", "requests"} <= set(df.columns):
        codes = [(r["status"], r["requests"] or 0) for r in df.iter_rows(named=True)]
    else:
        ov = summary.overview_dict()
        codes = [
            (None if c == "other" else int(c[0]) * 100, ov.get(f"status_{c}") or 0)
            for c in ("1xx", "2xx", "3xx", "4xx", "5xx", "other")
        ]
        df = None
    classes: dict[str, int] = {}
    for code, n in codes:
        classes[_status_class(code)] = classes.get(_status_class(code), 0) + n
    total = sum(classes.values())
    if not total:
        return _no_data("no requests with a status")
    mix = _Bar(
        "all requests",
        [
            (n, COLOURS[c], f"{c}: {n:,} ({n / total:.1%})")
            for c, n in sorted(classes.items())
            if n
        ],
        f"{total:,}",
    )
    bars = [mix]
    if df is not None:
        busiest = sorted(codes, key=lambda cn: -cn[1])[:12]
        bars += [
            _Bar(
                _text(code),
                [(n, COLOURS[_status_class(code)], f"{_text(code)}: {n:,}")],
                f"{n:,} ({n / total:.1%})",
            )
            for code, n in busiest
        ]
    legend = [
        (COLOURS[c], f"{c} {n / total:.1%}") for c, n in sorted(classes.items()) if n
    ]
    return _hbars("status", bars, legend, "requests")


def _paths_chart(df: pl.DataFrame | None, *, key: str = "path") -> str:
    """Requests per path, split into 2xx/3xx, 4xx, 5xx when those columns exist."""
    if (
        df is None
        or not df.height
        or key not in df.columns
        or "requests" not in df.columns
    ):
        return _no_data(f"no {key} table")
    split = {"ok_2xx_3xx", "errors_4xx", "errors_5xx"} <= set(df.columns)
    bars = []
    for r in df.head(15).iter_rows(named=True):
        n = r["requests"] or 0
        label = _short(r[key] if r[key] is not None else "(bad request line)")
        tip = _text(r[key])
        if split:
            ok, e4, e5 = (r[c] or 0 for c in ("ok_2xx_3xx", "errors_4xx", "errors_5xx"))
            parts = [
                (ok, COLOURS["2xx"], "2xx/3xx"),
                (e4, COLOURS["4xx"], "4xx"),
                (e5, COLOURS["5xx"], "5xx"),
                (n - ok - e4 - e5, COLOURS["other"], "other"),
            ]
            segments = [(v, c, f"{tip}: {v:,} {what}") for v, c, what in parts if v > 0]
        else:
            segments = [(n, COLOURS["requests"], f"{tip}: {n:,}")]
        bars.append(_Bar(label, segments, f"{n:,}"))
    legend = (
        [(COLOURS["2xx"], "2xx/3xx"), (COLOURS["4xx"], "4xx"), (COLOURS["5xx"], "5xx")]
        if split
        else [(COLOURS["requests"], "requests")]
    )
    return _hbars("paths", bars, legend, "requests")


_LATENCY = ("request_time_p50", "request_time_p95", "request_time_p99")


def _latency_chart(df: pl.DataFrame | None, *, key: str = "path") -> str:
    """p50 / p95 / p99 `$request_time` per path, as nested bars."""
    if df is None or key not in df.columns or not set(_LATENCY) <= set(df.columns):
        return _no_data("the log format has no $request_time")
    rows = df.filter(pl.col(_LATENCY[0]).is_not_null()).head(15)
    if not rows.height:
        return _no_data(f"no {key} with a request time")
    bars = []
    for r in rows.iter_rows(named=True):
        p50, p95, p99 = (float(r[c] or 0) for c in _LATENCY)
        p95, p99 = max(p95, p50), max(p99, p95, p50)
        tip = _text(r[key])
        segments = [
            (p50, COLOURS["p50"], f"{tip}: p50 {p50:.3f} s"),
            (p95 - p50, COLOURS["p95"], f"{tip}: p95 {p95:.3f} s"),
            (p99 - p95, COLOURS["p99"], f"{tip}: p99 {p99:.3f} s"),
        ]
        label = _short(r[key] if r[key] is not None else "(bad request line)")
        bars.append(_Bar(label, segments, f"{p50:.3f} / {p95:.3f} / {p99:.3f}"))
    legend = [(COLOURS["p50"], "p50"), (COLOURS["p95"], "p95"), (COLOURS["p99"], "p99")]
    return _hbars("latency", bars, legend, "seconds (p50 / p95 / p99)")


def _interval_seconds(interval: object) -> float | None:
    """Seconds in the summary's interval (`5m`, `1y`); None when there is none."""
    if not isinstance(interval, str):
        return None
    try:
        return interval_seconds(interval)
    except OptionError:
        return None


def _timeline_chart(summary: Summary) -> str:
    """Requests per interval as bars, with 5xx and 4xx stacked inside them."""
    df = summary.tables().get("timeline")
    if df is None or not df.height or not {"time", "requests"} <= set(df.columns):
        return _no_data("no timeline table")
    df = df.filter(pl.col("time").is_not_null()).sort("time")
    if not df.height:
        return _no_data("no request has a time")
    # microseconds since the epoch: polars holds years Python's datetime cannot
    micros: list[int] = df.get_column("time").dt.epoch("us").to_list()
    gaps = [(b - a) / 1e6 for a, b in zip(micros, micros[1:], strict=False)]
    interval = getattr(summary, "interval", None)
    step = _interval_seconds(interval) or min((g for g in gaps if g > 0), default=60)
    span = (micros[-1] - micros[0]) / 1e6 + step
    zone = df.schema["time"]
    times = _texts(micros, zone)
    x0, plot, y0, y1 = 70.0, _W - 110.0, 34.0, 254.0
    counts = [_column(df, c) for c in ("requests", "errors_4xx", "errors_5xx")]
    limit, parts = _count_axis(max(counts[0]), x0, x0 + plot, y0, y1)
    legend = [(COLOURS[c], c) for c in ("requests", "4xx", "5xx")]
    parts += _legend(legend, 14, x0)
    offsets = [(t - micros[0]) / 1e6 for t in micros]
    tips = [
        f"{t}: {n:,} requests, {e4:,} 4xx, {e5:,} 5xx"
        for t, n, e4, e5 in zip(times, *counts, strict=True)
    ]
    scale = (plot / span, (y1 - y0) / limit)
    parts += _columns(offsets, step, counts, tips, origin=(x0, y1), scale=scale)
    parts.append(f'<line class="axis" x1="{x0}" x2="{x0 + plot}" y1="{y1}" y2="{y1}"/>')
    parts += _time_axis(micros[0] / 1e6, span, x0, plot, y1)
    per = f"per {safe_text(interval)}" if interval else "per interval"
    mid = (y0 + y1) / 2
    parts.append(
        f'<text x="16" y="{mid}" text-anchor="middle" transform="rotate(-90 16 {mid})">'
        f"{html.escape(f'requests {per}')}</text>"
    )
    (end,) = _texts([micros[0] + round(span * 1e6)], zone)
    caption = f"time (UTC), {times[0]} to {end}"
    parts.append(_label(x0 + plot / 2, y1 + 36, html.escape(caption), anchor="middle"))
    return _svg("timeline", y1 + 46, "requests over time", parts)


def _count_axis(
    top: float, x0: float, x1: float, y0: float, y1: float
) -> tuple[float, list[str]]:
    """Horizontal gridlines and tick labels for a vertical count axis."""
    step = _nice_step(top)
    limit = step * max(1, -(-top // step))
    out = []
    for i in range(round(limit / step) + 1):
        y = y1 - (y1 - y0) * i * step / limit
        out.append(
            f'<line class="grid" x1="{x0}" x2="{x1}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        out.append(_label(x0 - 6, y + 4, _num(i * step), anchor="end"))
    return limit, out


def _columns(
    offsets: list[float],
    step: float,
    counts: list[list[int]],
    tips: list[str],
    *,
    origin: tuple[float, float],
    scale: tuple[float, float],
) -> list[str]:
    """One column per interval: requests, with 5xx then 4xx stacked from the base.

    Up to 400 intervals get a `<rect>` each with a tooltip; more are drawn as
    one `<path>` per series, which stays small and renders fast.
    """
    (x0, base), (sx, sy) = origin, scale
    width = step * sx
    gap = width * 0.15 if width >= 4 else 0.0
    w = width - gap
    one_each = len(offsets) <= 400
    series: dict[str, list[str]] = {"requests": [], "5xx": [], "4xx": []}
    for i, offset in enumerate(offsets):
        n, e4, e5 = (c[i] for c in counts)
        x = x0 + offset * sx + gap / 2
        for what, low, high in (
            ("requests", 0, n),
            ("5xx", 0, e5),
            ("4xx", e5, e5 + e4),
        ):
            if high <= low:
                continue
            top, h = base - high * sy, (high - low) * sy
            series[what].append(
                _rect(x, top, w, h, COLOURS[what], html.escape(tips[i]))
                if one_each
                else f"M{x:.1f},{top:.1f}h{w:.2f}v{h:.1f}h{-w:.2f}z"
            )
    if one_each:
        return [r for items in series.values() for r in items]
    return [
        f'<path d="{"".join(items)}" fill="{COLOURS[what]}"/>'
        for what, items in series.items()
        if items
    ]


def _column(df: pl.DataFrame, name: str) -> list[int]:
    if name not in df.columns:
        return [0] * df.height
    return [int(v or 0) for v in df.get_column(name).to_list()]


# Tick spacings for the time axis, in seconds: 1 s ... 30 days.
_TIME_STEPS = (
    *(1, 2, 5, 10, 15, 30),
    *(60 * m for m in (1, 2, 5, 10, 15, 30)),
    *(3600 * h for h in (1, 2, 3, 6, 12)),
    *(86400 * d for d in (1, 2, 7, 30, 91, 365, 730, 1825, 3650, 36500)),
)


def _texts(micros: list[int], dtype: pl.DataType, fmt: str = WHEN) -> list[str]:
    """Times (microseconds since the epoch) as text in `dtype`'s zone, by polars."""
    zone = dtype.time_zone if isinstance(dtype, pl.Datetime) else None
    times = pl.Series(micros, dtype=pl.Int64).cast(pl.Datetime("us", zone))
    texts: list[str] = times.dt.to_string(fmt).to_list()
    return texts


def _time_axis(
    epoch: float, span: float, x0: float, plot: float, y: float
) -> list[str]:
    """Ticks at round UTC times (every 5 min, 1 h, 1 d...), at most 8 of them."""
    last = _TIME_STEPS[-1]
    # past a century per tick: whole centuries (a timeline of years 1 to 9998)
    step = next((s for s in _TIME_STEPS if span / s <= 8), last * -(-span // 8 // last))
    step = int(step)
    fmt = "%H:%M:%S" if step < 60 else "%H:%M" if step < 86400 else "%Y-%m-%d"
    if step < 86400 and span > 86400:
        fmt = "%m-%d " + fmt
    first = -(-epoch // step) * step
    ticks = list(range(int(first), int(epoch + span) + 1, step))
    labels = _texts([t * 1_000_000 for t in ticks], pl.Datetime("us", "UTC"), fmt)
    out = []
    for tick, label in zip(ticks, labels, strict=True):
        x = x0 + plot * (tick - epoch) / span
        out.append(
            f'<line class="axis" x1="{x:.1f}" x2="{x:.1f}" y1="{y}" y2="{y + 4}"/>'
        )
        out.append(_label(x, y + 17, label, anchor="middle"))
    return out
