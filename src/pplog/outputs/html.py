"""`--to html`: one self-contained page with every table and inline SVG charts.

Log content is attacker-controlled, so every value from the summary goes
through `_text` (control bytes as `\\xHH`, then `html.escape`), and a strict
Content-Security-Policy stops the page from fetching anything or running
scripts even if something slipped through. The page needs no JavaScript.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from pplog._text import escape_text_expr, rare_in
from pplog.errors import ReportError
from pplog.outputs._charts import COLOURS as COLOURS  # re-exported: the palette
from pplog.outputs._charts import _short, _text, chart_sections
from pplog.outputs._files import atomic_write
from pplog.outputs._format import (
    cut_raw,
    format_inputs,
    human_bytes,
    overview,
    shown,
    with_times_as_text,
)
from pplog.outputs._options import ReportOptions
from pplog.outputs._safe import safe_text
from pplog.reports import Summary

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'"
)
_TITLES = {
    "clients": "Top clients (health checkers not counted)",
    "paths": "Top paths",
    "routes": "Top routes",
    "errors": "Errors (4xx/5xx)",
    "timeline": "Timeline",
    "status": "Status codes",
    "agents": "Agent classes",
    "browsers": "Browsers",
    "operating_systems": "Operating systems",
    "devices": "Devices",
    "user_agents": "User agents",
    "referrers": "Referrers",
    "lb": "Load balancers and peers",
    "hosts": "Hosts",
    "countries": "Countries",
    "networks": "Networks (ASN)",
}
_WARNINGS = (
    ("excluded_bots", "bot requests left out"),
    ("health_checks", "health checks"),
    ("without_client_address", "requests without a client address"),
    ("forwarded_by_untrusted", "X-Forwarded-For from untrusted peers"),
    ("client_private_or_trusted", "credited to private/balancer addresses"),
)
_PLAIN_INTS = frozenset({"status", "asn", "line"})
_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1e293b;
 background:#f8fafc;margin:0}
main{max-width:1140px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:17px;margin:28px 0 8px}
section h2{margin:0 0 8px}
h2 small,.muted{color:#64748b;font-weight:normal}
section{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:12px 16px;
 margin:14px 0}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:8px 14px;
 min-width:120px}
.card b{display:block;font-size:18px}.card span{color:#64748b;font-size:12px}
.check{background:#fffbeb;border-color:#fcd34d}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:13px;white-space:nowrap}
th,td{padding:3px 10px;border-bottom:1px solid #e2e8f0;text-align:left}
th{background:#f1f5f9;position:sticky;top:0}
tr:nth-child(even) td{background:#f8fafc}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.text{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
svg.chart{max-width:100%;height:auto;display:block}
svg.chart text{font:12px system-ui,sans-serif;fill:#334155}
svg.chart text.mono{font:11px ui-monospace,Menlo,Consolas,monospace}
svg.chart .grid{stroke:#e2e8f0}svg.chart .axis{stroke:#94a3b8}
pre{white-space:pre-wrap;word-break:break-all;font-size:12px;margin:2px 0}
"""


def _cell(column: str, value: Any) -> str:
    """One table cell's text; strings come escaped by `_escaped`."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        if column == "bytes" or column.endswith("_bytes"):
            return f'<span title="{value:,} B">{html.escape(human_bytes(value))}</span>'
        return str(value) if column in _PLAIN_INTS else f"{value:,}"
    if isinstance(value, float):
        return f"{value:.1%}" if column == "share" else f"{value:,.3f}"
    return _text(value)


# ---------------------------------------------------------------- page


def to_html(summary: Summary) -> str:
    """The whole report as one HTML document that fetches nothing and runs nothing.

    Parameters
    ----------
    summary
        What to show. Tables named ``timeline``, ``status`` and ``paths`` (or
        ``routes``) feed the charts; a chart without its table shows a note.

    Returns
    -------
    str
        The page. Every log-derived value is escaped for HTML, with control
        characters written as ``\\xHH``.

    Examples
    --------
    >>> import pplog
    >>> page = to_html(pplog.summarize("sample_logs/elb-access.log", top=3))
    >>> page.startswith("<!DOCTYPE html>"), 'data-chart="status"' in page
    (True, True)
    """
    return "".join(chunks(summary))


def chunks(summary: Summary) -> Iterator[str]:
    """The page of `to_html` in pieces, so that a big table is never one string."""
    sources = ", ".join(safe_text(s) for s in summary.sources) or "pplog report"
    parts: list[str | Iterable[str]] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>pplog: {_short(sources, 80)}</title>",
        f"<style>{_STYLE}</style></head><body><main>",
        *_overview(summary),
        '<h2 id="charts">Charts</h2>',
        *chart_sections(summary),
        *_tables(summary),
        *_rejects(summary),
        *_problems(summary),
        "</main></body></html>",
        "",
    ]
    for i, part in enumerate(parts):
        if i:
            yield "\n"
        if isinstance(part, str):
            yield part
        else:
            yield from part


def _overview(summary: Summary) -> list[str]:
    ov = overview(summary)
    detection = f" ({_text(summary.detection)})" if summary.detection else ""
    out = [
        "<h1>pplog summary</h1>",
        f'<p>format <b>{_text(summary.format)}</b>{detection}<br><span class="muted">'
        f"inputs: {_text(', '.join(summary.sources) or '-')}</span></p>",
    ]
    if summary.format == "mixed":
        items = "".join(
            f"<li>{_text(source)}: <b>{_text(fmt or 'no preset fits')}</b></li>"
            for source, fmt in format_inputs(summary)
        )
        out.append(f'<ul class="muted">{items}</ul>')
    cards = [
        ("requests", f"{ov.get('requests', 0):,}"),
        ("clients", f"{ov.get('clients', 0):,}"),
        ("bytes", human_bytes(ov.get("bytes"))),
        ("lines", f"{ov.get('lines', 0):,}"),
        ("rejected", f"{ov.get('rejected', 0):,}"),
        ("time range (UTC)", _time_range(ov.get("first_time"), ov.get("last_time"))),
    ]
    cards += [
        (f"status {c}", f"{ov[f'status_{c}']:,}")
        for c in ("1xx", "2xx", "3xx", "4xx", "5xx", "other")
        if ov.get(f"status_{c}")
    ]
    out.append('<div class="cards">')
    out += [
        f'<div class="card"><b>{_text(v)}</b><span>{_text(k)}</span></div>'
        for k, v in cards
    ]
    out.append("</div>")
    if summary.filters:
        left = ov.get("filtered_out", 0) + ov.get("excluded_bots", 0)
        shown = "; ".join(summary.filters)
        out.append(
            f'<section class="check">filter: <b>{_text(shown)}</b> '
            f"({left:,} requests left out; lines and rejects count everything)"
            "</section>"
        )
    if ov.get("approximate"):
        out.append(
            '<section class="check">estimated (--approx) '
            f"(distinct counts ±1.6%, percentiles ±1%): {_text(ov['approximate'])}"
            "</section>"
        )
    checks = [f"{label}: <b>{ov[k]:,}</b>" for k, label in _WARNINGS if ov.get(k)]
    if checks:
        out.append(f'<section class="check">check: {" · ".join(checks)}</section>')
    if summary.geoip:
        out.append(f'<p class="muted">{_text(summary.geoip)}</p>')
    return out


def _time_range(first: str | None, last: str | None) -> str:
    """`2026-11-20 00:00:00 – 00:03:04` (the date once when both share it)."""
    if first is None or last is None:
        return "-"
    day, _, time = last.partition(" ")
    end = time if first.partition(" ")[0] == day else last
    return f"{first} – {end}"


_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"}
SLICE = 2000  # table rows formatted at a time


def _escaped(df: pl.DataFrame) -> pl.DataFrame:
    """Text and time columns as `_text` would write them, by polars.

    Every string that comes out is escaped; `_cell` writes other values
    (numbers, lists) itself.
    """
    text = with_times_as_text(df)
    names = [
        c
        for c, dtype in text.schema.items()
        if dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum)
    ]
    rare = rare_in(text, names)
    return text.with_columns(
        escape_text_expr(pl.col(c).cast(pl.String), _HTML, rare=rare) for c in names
    )


def _grouped(expr: pl.Expr) -> pl.Expr:
    """Integers as `f"{value:,}"` writes them: digits grouped by commas."""
    backwards = expr.cast(pl.String).str.reverse().str.replace_all(r"(\d{3})", "${1},")
    return backwards.str.reverse().str.strip_prefix(",").str.replace("^-,", "-")


def _cells(part: pl.DataFrame, name: str) -> pl.Expr:
    """Column `name` of an `_escaped` frame as `_cell` writes each value.

    Text, flags and integers are formatted by polars; floats, byte counts'
    readable sizes and any other type by Python, a column at a time.
    """
    dtype = part.schema[name]
    col = pl.col(name)
    if dtype == pl.String:
        out = col
    elif dtype == pl.Boolean:
        out = pl.when(col).then(pl.lit("True")).when(~col).then(pl.lit("False"))
    elif dtype.is_integer() and (name == "bytes" or name.endswith("_bytes")):
        sizes = [
            None if v is None else html.escape(human_bytes(v))
            for v in part.get_column(name).to_list()
        ]
        out = pl.concat_str(
            pl.lit('<span title="'),
            _grouped(col),
            pl.lit(' B">'),
            pl.lit(pl.Series(sizes, dtype=pl.String)),
            pl.lit("</span>"),
        )
    elif dtype.is_integer():
        out = col.cast(pl.String) if name in _PLAIN_INTS else _grouped(col)
    else:
        values = [_cell(name, v) for v in part.get_column(name).to_list()]
        return pl.lit(pl.Series(values, dtype=pl.String))
    return out.fill_null("-")


def _html_table(df: pl.DataFrame) -> Iterator[str]:
    """The table's markup in pieces: rows are formatted a slice at a time,
    each column by one polars expression (`_cells`; a cell at a time in
    Python took 0.75 s for the 70,000 rows of a `--top 0` page)."""
    numeric = [dtype.is_numeric() for dtype in df.dtypes]
    kinds = ["num" if n else "text" for n in numeric]
    head = "".join(
        f'<th class="{k}">{_text(c)}</th>'
        for c, k in zip(df.columns, kinds, strict=True)
    )
    yield f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>'
    for start in range(0, df.height, SLICE):
        part = _escaped(df.slice(start, SLICE))
        cells = [
            pl.concat_str(pl.lit(f'<td class="{k}">'), _cells(part, c), pl.lit("</td>"))
            for c, k in zip(part.columns, kinds, strict=True)
        ]
        row = pl.concat_str([pl.lit("<tr>"), *cells, pl.lit("</tr>")])
        yield part.select(row.str.join("")).item()
    yield "</tbody></table></div>"


_LONG = 100  # tables with more rows start collapsed


def _tables(summary: Summary) -> list[str | Iterable[str]]:
    total_clients = overview(summary).get("clients") or 0
    out: list[str | Iterable[str]] = []
    for name, df in summary.tables().items():
        title = _text(_TITLES.get(name, name))
        if name == "clients" and total_clients > df.height:
            title += f" (top {df.height} of {total_clients:,})"
        out.append(
            f'<h2 id="table-{_text(name)}">{title} <small>{_text(name)}</small></h2>'
        )
        if not df.height:
            out.append('<p class="muted">none</p>')
        elif df.height > _LONG:  # a fine-grained timeline: keep the page short
            rows = f"{df.height:,} rows"
            out.append(_collapsed(rows, df))
        else:
            out.append(_html_table(df))
    return out


def _collapsed(rows: str, df: pl.DataFrame) -> Iterator[str]:
    yield f"<details><summary>{rows}</summary>"
    yield from _html_table(df)
    yield "</details>"


def _rejects(summary: Summary) -> list[str | Iterable[str]]:
    out: list[str | Iterable[str]] = [
        '<h2 id="rejects">Rejected lines <small>rejects</small></h2>'
    ]
    if not summary.rejects.height:
        return [*out, '<p class="muted">none: every line matched the format</p>']
    out.append(_html_table(summary.rejects))
    if summary.reject_samples.height:
        out.append("<p>First few (<code>--rejects FILE</code> keeps all):</p>")
        for row in summary.reject_samples.iter_rows(named=True):
            where = f"{_text(row['source'])}:{_text(row['line'])}"
            raw = None if row["raw"] is None else cut_raw(row["raw"])
            reason, raw = _text(row["reject_reason"]), _text(raw)
            out.append(f"<pre>{where} <b>{reason}</b>: {raw}</pre>")
    return out


def _problems(summary: Summary) -> list[str]:
    if not summary.problems:
        return []
    items = "".join(
        f"<li>{_text(src)}: {_text(msg)}</li>" for src, msg in summary.problems
    )
    title = "Inputs that could not be read completely"
    return [f'<h2 id="problems">{title}</h2><ul>{items}</ul>']


# ---------------------------------------------------------------- reporter


class HtmlReporter:
    """One self-contained HTML file (`-o FILE.html`, or `DIR/summary.html`)."""

    name: ClassVar[str] = "html"

    def write(self, summary: Summary, options: ReportOptions) -> None:
        """Write `summary` to the file (or into the directory) given with `-o`."""
        if options.out is None:
            msg = "--to html writes a file: give -o FILE.html"
            raise ReportError(msg)
        out = options.out / "summary.html" if options.out.is_dir() else options.out
        summary = shown(summary, options.top)

        def write(path: Path) -> None:
            # file names may carry undecodable bytes (surrogate escapes)
            with path.open("w", encoding="utf-8", errors="backslashreplace") as f:
                for chunk in chunks(summary):
                    f.write(chunk)

        atomic_write(out, write, options.staging)
