"""`--to html`: a self-contained page, every log value escaped, charts that render."""

from __future__ import annotations

import copy
import os
import re
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import pplog
from helpers import SAMPLES
from pplog import outputs
from pplog.cli import cli
from pplog.errors import ReportError
from pplog.outputs import ReportOptions
from pplog.outputs.html import COLOURS, HtmlReporter, to_html
from pplog.outputs.html import _cell as html_cell
from pplog.outputs.html import _escaped as html_escaped
from pplog.outputs.html import _html_table as html_table
from pplog.outputs.html import _text as html_text
from pplog.reports import Summary

CHARTS = ("timeline", "status", "paths", "latency", "browsers", "operating_systems")
# Ordinary traffic's user agents: browsers and systems enough for their charts
AGENTS = (
    "curl/8.5.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.144 Mobile Safari/537.36",
)
WITH_TIME = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" $request_time'
)
LINE = (
    '203.0.113.{n} - - [20/Nov/2026:00:0{m}:{s:02d} +0000] "GET {path} HTTP/1.1" '
    '{status} 153 "-" "{ua}" {rt}'
)
# Written as nginx writes them: `"` and control bytes as \xHH inside values.
HOSTILE_PATHS = (
    "/<script>alert(1)</script>",
    r"/\x22><img src=x onerror=alert(1)>",
    r"/esc\x1B[31mred",
)
HOSTILE_UAS = ("<script>alert(2)</script>", r"\x22><img src=x onerror=alert(3)>")
# A line that matches no format keeps its raw bytes, ESC included.
HOSTILE_REJECT = '<script>alert(4)</script> "><img src=x onerror=alert(5)> \x1b[2J'


def with_timeline(summary: Summary, log: Path, **kwargs: object) -> Summary:
    """Add `timeline` and `status` tables when the summary has none yet."""
    if "timeline" in summary.tables() and "status" in summary.tables():
        return summary
    rows = pplog.read_log(log, **kwargs)  # type: ignore[arg-type]
    status = pl.col("status")
    summary.extra["timeline"] = (
        rows.sort("time")
        .group_by_dynamic("time", every="10s")
        .agg(
            pl.len().cast(pl.UInt64).alias("requests"),
            ((status >= 400) & (status < 500))
            .sum()
            .cast(pl.UInt64)
            .alias("errors_4xx"),
            (status >= 500).sum().cast(pl.UInt64).alias("errors_5xx"),
            pl.col("body_bytes_sent").sum().alias("bytes"),
        )
    )
    summary.extra["status"] = (
        rows.group_by("status")
        .agg(pl.len().cast(pl.UInt64).alias("requests"))
        .with_columns((pl.col("requests") / pl.col("requests").sum()).alias("share"))
        .sort("requests", descending=True)
    )
    if getattr(summary, "interval", None) is None:
        summary.interval = "10s"  # type: ignore[attr-defined]
    return summary


def hostile_log(tmp_path: Path) -> Path:
    """Ordinary traffic with `$request_time`, hostile paths and agents, a junk line."""
    lines = [
        LINE.format(
            n=i % 50,
            m=i // 60,
            s=i % 60,
            path=f"/api/v1/item/{i % 7}",
            status=(200, 200, 200, 304, 404, 502)[i % 6],
            ua=AGENTS[i % len(AGENTS)],
            rt="3.000" if i < 7 else f"{(i % 13) / 10:.3f}",  # one slow each
        )
        for i in range(240)
    ]
    for i, path in enumerate(HOSTILE_PATHS):
        ua = HOSTILE_UAS[i % len(HOSTILE_UAS)]
        lines += [LINE.format(n=9, m=4, s=i, path=path, status=404, ua=ua, rt="2.500")]
    lines.append(HOSTILE_REJECT)
    log = tmp_path / "hostile.log"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return log


@pytest.fixture(scope="module")
def sample_summary() -> Summary:
    log = SAMPLES / "elb-access.log"
    return with_timeline(pplog.summarize(log), log)


@pytest.fixture(scope="module")
def hostile_summary(tmp_path_factory: pytest.TempPathFactory) -> Summary:
    log = hostile_log(tmp_path_factory.mktemp("hostile"))
    summary = pplog.summarize(log, log_format=WITH_TIME, top=0)
    summary = with_timeline(summary, log, log_format=WITH_TIME)
    summary.sources.append("<b>evil</b>\x1b.log")
    summary.problems.append(("<i>x.gz</i>", "<script>alert(6)</script>"))
    return summary


class Elements(HTMLParser):
    """Every start tag with its attributes, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def elements(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(page)
    parser.close()
    return parser.tags


def chart(page: str, name: str) -> str:
    match = re.search(rf'<svg class="chart" data-chart="{name}".*?</svg>', page, re.S)
    assert match, f"no {name} chart"
    return match.group()


def with_tables(summary: Summary, tables: dict[str, pl.DataFrame]) -> Summary:
    """A copy of `summary` whose `tables()` are `tables`."""
    changed = copy.copy(summary)
    changed.tables = lambda: tables  # type: ignore[method-assign]
    return changed


def write(summary: Summary, out: Path) -> str:
    HtmlReporter().write(summary, ReportOptions(out=out))
    return out.read_text(encoding="utf-8")


# ---------------------------------------------------------------- the file


def test_registered() -> None:
    assert "html" in outputs.available()
    assert isinstance(outputs.get("html"), HtmlReporter)


def test_writes_every_table_and_chart(sample_summary: Summary, tmp_path: Path) -> None:
    page = write(sample_summary, tmp_path / "report.html")
    assert page.startswith("<!DOCTYPE html>")
    for name in sample_summary.tables():
        assert f'id="table-{name}"' in page
    for name in CHARTS[:3]:
        assert "<rect" in chart(page, name)
    assert 'id="rejects"' in page
    assert not list(tmp_path.glob(".*pplog-tmp"))


def test_directory_gets_summary_html(sample_summary: Summary, tmp_path: Path) -> None:
    HtmlReporter().write(sample_summary, ReportOptions(out=tmp_path))
    assert (tmp_path / "summary.html").read_text().startswith("<!DOCTYPE html>")


def test_needs_a_file(sample_summary: Summary) -> None:
    with pytest.raises(
        ReportError, match="^--to html writes a file: give -o FILE.html$"
    ):
        HtmlReporter().write(sample_summary, ReportOptions())


# Tags and attributes that make a browser fetch something.
FETCHING_TAGS = {
    "script",
    "link",
    "img",
    "iframe",
    "object",
    "embed",
    "video",
    "audio",
    "source",
    "image",
    "use",
    "base",
    "form",
    "frame",
    "input",
}
FETCHING_ATTRS = {
    "src",
    "href",
    "xlink:href",
    "srcset",
    "poster",
    "action",
    "formaction",
    "data",
    "background",
    "ping",
    "style",
}


@pytest.mark.parametrize("which", ["sample_summary", "hostile_summary"])
def test_fetches_nothing(
    which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    page = write(request.getfixturevalue(which), tmp_path / "r.html")
    for tag, attrs in elements(page):
        assert tag not in FETCHING_TAGS
        assert not FETCHING_ATTRS & attrs.keys(), (tag, attrs)
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        if tag == "svg":
            assert attrs["xmlns"] == "http://www.w3.org/2000/svg"
    style = re.search(r"<style>(.*?)</style>", page, re.S)
    assert style and "@import" not in style[1] and "url(" not in style[1]
    assert not re.search(r"""(?i)(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    csp = [
        a for t, a in elements(page) if a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp and "default-src 'none'" in (csp[0]["content"] or "")


# ---------------------------------------------------------------- hostile logs


def test_hostile_values_are_escaped(hostile_summary: Summary, tmp_path: Path) -> None:
    page = write(hostile_summary, tmp_path / "r.html")
    tags = {tag for tag, _ in elements(page)}
    assert not tags & {"script", "img", "i"}
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "\x1b" not in page
    # the values are shown, as text, in tables, tooltips and rejected lines
    assert "/&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "/&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert "/esc\\x1B[31mred" in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page  # user agent table
    assert "&lt;script&gt;alert(4)&lt;/script&gt; &quot;&gt;&lt;img" in page
    assert "\\x1B[2J" in page
    assert "&lt;b&gt;evil&lt;/b&gt;\\x1B.log" in page
    assert "&lt;i&gt;x.gz&lt;/i&gt;: &lt;script&gt;alert(6)" in page
    # and inside the SVG too: bar labels and <title> tooltips
    paths = chart(page, "paths")
    assert "<title>/&lt;script&gt;alert(1)&lt;/script&gt;: 1 4xx</title>" in paths
    assert "<title>/esc\\x1B[31mred: 1 4xx</title>" in paths


def test_hostile_table_and_column_names(
    sample_summary: Summary, tmp_path: Path
) -> None:
    hostile = {"<i>t</i>": pl.DataFrame({"<u>c</u>": ["<s>v</s>"]})}
    summary = with_tables(sample_summary, {**sample_summary.tables(), **hostile})
    page = write(summary, tmp_path / "r.html")
    assert not {tag for tag, _ in elements(page)} & {"i", "u", "s"}
    assert 'id="table-&lt;i&gt;t&lt;/i&gt;"' in page
    assert '<th class="text">&lt;u&gt;c&lt;/u&gt;</th>' in page


# ---------------------------------------------------------------- cells


def test_cells_are_formatted(sample_summary: Summary, tmp_path: Path) -> None:
    when = datetime(2026, 11, 20, 1, 2, 3, tzinfo=UTC)
    table = pl.DataFrame(
        {
            "name": [None, "a"],
            "requests": [1234567, 2],
            "bytes": [1536, None],
            "time": [when, None],
            "share": [0.5, 0.25],
            "request_time_p50": [0.1234, None],
        }
    )
    summary = with_tables(sample_summary, {"cells": table})
    page = write(summary, tmp_path / "r.html")
    html_table = page[page.index('id="table-cells"') :]
    html_table = html_table[: html_table.index("</table>")]
    cells = re.findall(r'<td class="(\w+)">(.*?)</td>', html_table)
    assert cells == [
        ("text", "-"),
        ("num", "1,234,567"),
        ("num", '<span title="1,536 B">1.5 KiB</span>'),
        ("text", "2026-11-20 01:02:03"),
        ("num", "50.0%"),
        ("num", "0.123"),
        ("text", "a"),
        ("num", "2"),
        ("num", "-"),
        ("text", "-"),
        ("num", "25.0%"),
        ("num", "-"),
    ]


# ---------------------------------------------------------------- charts


def test_latency_chart_from_request_time(hostile_summary: Summary) -> None:
    svg = chart(to_html(hostile_summary), "latency")
    assert svg.count(f'fill="{COLOURS["p99"]}"') >= 5
    assert "seconds" in svg


def test_no_request_time_no_latency_chart(sample_summary: Summary) -> None:
    page = to_html(sample_summary)
    assert 'data-chart="latency"' not in page
    assert "no data: the log format has no $request_time" in page


def test_empty_tables(tmp_path: Path) -> None:
    log = tmp_path / "junk.log"
    log.write_text("not a log line\nnor this\n")
    summary = pplog.summarize(log, format="elb_log")
    schemas = {
        "timeline": {"time": pl.Datetime("us", "UTC"), "requests": pl.UInt64},
        "status": {"status": pl.UInt16, "requests": pl.UInt64, "share": pl.Float64},
    }
    for name, schema in schemas.items():
        if name not in summary.tables():
            summary.extra[name] = pl.DataFrame(schema=schema)
    tables = summary.tables()
    assert not any(tables[n].height for n in ("timeline", "status", "paths"))
    page = write(summary, tmp_path / "r.html")
    assert 'class="chart"' not in page
    assert page.count('class="muted no-data"') == len(CHARTS)
    assert "no_match" in page and "not a log line" in page


def test_status_falls_back_to_overview(sample_summary: Summary) -> None:
    tables = {k: v for k, v in sample_summary.tables().items() if k != "status"}
    svg = chart(to_html(with_tables(sample_summary, tables)), "status")
    ov = sample_summary.overview_dict()
    classes = [c for c in ("2xx", "3xx", "4xx", "5xx") if ov[f"status_{c}"]]
    assert len(classes) == 4
    assert svg.count("<rect") == 2 * len(classes)  # legend swatch + one segment each
    for c in classes:
        assert f'fill="{COLOURS[c]}"' in svg
        assert f"{c}: {ov[f'status_{c}']:,} (" in svg


def test_routes_instead_of_paths(sample_summary: Summary) -> None:
    routes = sample_summary.paths.rename({"path": "route"}).with_columns(
        pl.col("route").str.replace(r"/\d+$", "/{id}")
    )
    tables = {k: v for k, v in sample_summary.tables().items() if k != "paths"}
    page = to_html(with_tables(sample_summary, {**tables, "routes": routes}))
    assert "<h2>Top routes</h2>" in page
    assert ">/api/v1/orders</text>" in chart(page, "paths")


def test_long_timeline_is_paths_not_rects(sample_summary: Summary) -> None:
    start = datetime(2026, 11, 20, tzinfo=UTC)
    n = 2000
    timeline = pl.DataFrame(
        {
            "time": [start + timedelta(minutes=i) for i in range(n)],
            "requests": [100 + i % 50 for i in range(n)],
            "errors_4xx": [i % 7 for i in range(n)],
            "errors_5xx": [5 if 600 < i < 650 else 0 for i in range(n)],
        },
        schema_overrides={"time": pl.Datetime("us", "UTC")},
    )
    tables = {**sample_summary.tables(), "timeline": timeline}
    svg = chart(to_html(with_tables(sample_summary, tables)), "timeline")
    assert svg.count("<path") == 3
    assert svg.count("<rect") == 3  # the legend swatches
    assert "11-20 00:00" in svg  # spans more than a day: dates on the ticks


# ---------------------------------------------------------------- CLI


def test_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "report.html"
    log = str(SAMPLES / "elb-access.log")
    result = runner.invoke(
        cli, ["summarize", log, "--to", "html", "-o", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert 'data-chart="paths"' in out.read_text()
    result = runner.invoke(cli, ["summarize", log, "--to", "html"])
    assert result.exit_code == 2  # checked before any reading
    assert "Error: --to html writes files: give a file (html) or directory with -o" in (
        result.output
    )


# ---------------------------------------------------------------- a real browser


def decode_png(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """Width, height, bytes per pixel and unfiltered rows of an 8-bit RGB(A) PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, [], b""
    while pos < len(data):
        (size,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + size]
        pos += 12 + size
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat.append(body)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and not interlace, header
    bpp = 3 if colour == 2 else 4
    stride = width * bpp
    raw = zlib.decompress(b"".join(idat))
    rows, prev = [], bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:  # sub
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:  # up
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
        elif kind == 3:  # average
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:  # paeth
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (
                    line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)
                ) & 0xFF
        prev = bytes(line)
        rows.append(prev)
    return width, height, bpp, rows


def colour_counts(png: bytes, colours: dict[str, str]) -> dict[str, int]:
    """Pixels within a small distance of each named `#rrggbb` colour."""
    _, _, bpp, rows = decode_png(png)
    seen: Counter[bytes] = Counter()
    for row in rows:
        seen.update(row[i : i + 3] for i in range(0, len(row), bpp))
    counts = dict.fromkeys(colours, 0)
    for name, hex_ in colours.items():
        rgb = bytes.fromhex(hex_[1:])
        for pixel, n in seen.items():
            if all(abs(a - b) <= 6 for a, b in zip(pixel, rgb, strict=True)):
                counts[name] += n
    return counts


def chromium_or_skip() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("PPLOG_REQUIRE_CHROMIUM") == "1":
        pytest.fail("PPLOG_REQUIRE_CHROMIUM=1 but no `chromium` on PATH")
    pytest.skip(
        "no `chromium` on PATH (apt-get install chromium); set PPLOG_REQUIRE_CHROMIUM=1 to fail instead"
    )
    raise AssertionError  # unreachable


def offline_prefix() -> list[str]:
    """`unshare -rn` (no network at all) when user namespaces are allowed."""
    unshare = shutil.which("unshare")
    if (
        unshare
        and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode
        == 0
    ):
        return [unshare, "-rn"]
    return []


def run_chromium(
    page: Path, tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    command = [
        *offline_prefix(),
        chromium_or_skip(),
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        # belt and braces when unshare is not allowed: every fetch goes nowhere
        "--proxy-server=http://127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,3600",
        *args,
        page.as_uri(),
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=90, check=False
    )


def test_renders_in_chromium(hostile_summary: Summary, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    write(hostile_summary, page)
    dom = run_chromium(page, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    # what the browser built: four charts with their shapes, no injected elements
    built = elements(dom.stdout)
    svgs = [a.get("data-chart") for t, a in built if t == "svg"]
    assert svgs == list(CHARTS)
    for name in CHARTS:
        assert chart(dom.stdout, name).count("<rect") >= 5
    assert not {t for t, _ in built} & {"script", "img"}
    assert "Refused to" not in dom.stderr  # CSP had nothing to block
    shot = tmp_path / "report.png"
    run = run_chromium(page, tmp_path, f"--screenshot={shot}")
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    counts = colour_counts(
        shot.read_bytes(),
        {
            c: COLOURS[c]
            for c in ("requests", "2xx", "4xx", "5xx", "p50", "p95", "p99")
            + ("browsers", "operating_systems")
        },
    )
    assert all(n >= 300 for n in counts.values()), counts


def _by_cell(df: pl.DataFrame) -> str:
    """A table's markup built a cell at a time with `_cell`, the rule the
    polars expressions of `_html_table` must follow."""
    kinds = ["num" if dtype.is_numeric() else "text" for dtype in df.dtypes]
    head = "".join(
        f'<th class="{k}">{html_text(c)}</th>'
        for c, k in zip(df.columns, kinds, strict=True)
    )
    rows = "".join(
        "<tr>"
        + "".join(
            f'<td class="{k}">{html_cell(c, v)}</td>'
            for (c, v), k in zip(row.items(), kinds, strict=True)
        )
        + "</tr>"
        for row in html_escaped(df).iter_rows(named=True)
    )
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>'
        f"{rows}</tbody></table></div>"
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.none() | st.text(st.characters(exclude_categories=["Cs"])),
            st.none() | st.integers(-(2**63), 2**63 - 1),
            st.none() | st.integers(0, 2**64 - 1),
            st.none() | st.integers(0, 999),
            st.none() | st.floats(allow_nan=False, allow_infinity=False),
            st.none() | st.floats(0, 1),
            st.none() | st.booleans(),
            st.none() | st.dates(),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_table_cells_by_polars_are_the_cells_by_python(
    rows: list[tuple[object, ...]],
) -> None:
    # text (escaped, markup and control bytes), grouped digits (negative
    # ones too), byte counts with their readable size, plain integers, floats,
    # shares, flags, a type only Python formats, and nulls in every column
    schema = {
        "text": pl.String,
        "requests": pl.Int64,
        "bytes": pl.UInt64,
        "status": pl.UInt16,
        "seconds": pl.Float64,
        "share": pl.Float64,
        "trusted": pl.Boolean,
        "day": pl.Date,
    }
    df = pl.DataFrame(rows, schema=schema, orient="row")
    assert "".join(html_table(df)) == _by_cell(df)
