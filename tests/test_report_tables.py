"""Timeline, status, user agents, referrers, hosts, balancers, filters, drilldowns.

Expected values come from an independent reading of the sample logs with
Python's `re` and `collections`, not from pplog's own parser.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

import pplog
from helpers import SAMPLES
from pplog.errors import OptionError
from pplog.pipeline.filters import Filters, parse_status, parse_time
from pplog.reports.timeline import choose_interval, interval_seconds

MAIN = SAMPLES / "main-access.log"
_LINE = re.compile(
    r'^(?P<peer>\S+) - .*? \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" '
    r'(?P<status>\d{3}) (?P<bytes>\d+) "(?P<ref>[^"]*)" "(?P<ua>[^"]*)" "(?P<xff>[^"]*)"$'
)


def _unescape(text: str) -> str:
    raw = re.sub(rb"\\x([0-9A-F]{2})", lambda m: bytes([int(m[1], 16)]), text.encode())
    return raw.decode("utf-8", "backslashreplace")


def _rows() -> list[dict[str, object]]:
    rows = []
    for line in MAIN.read_text().splitlines():
        m = _LINE.match(line)
        assert m, line
        d: dict[str, object] = m.groupdict()
        d["time"] = datetime.strptime(str(d["time"]), "%d/%b/%Y:%H:%M:%S %z")
        parts = str(d["request"]).split(" ")
        d["path"] = parts[1].split("?")[0] if len(parts) == 3 else None
        d["status"] = int(str(d["status"]))
        d["ua"], d["ref"] = _unescape(str(d["ua"])), _unescape(str(d["ref"]))
        d["bytes"] = int(str(d["bytes"]))
        rows.append(d)
    return rows


ROWS = _rows()


@pytest.fixture(scope="module")
def summary() -> pplog.Summary:
    return pplog.summarize(MAIN, top=0)


def test_status_table_counts_every_code(summary: pplog.Summary) -> None:
    expected = Counter(r["status"] for r in ROWS)
    table = summary.extra["status"]
    assert dict(table.select("status", "requests").iter_rows()) == expected
    assert table.get_column("share").sum() == pytest.approx(1.0)
    assert table.get_column("status").is_sorted()


def test_timeline_sums_to_the_overview_and_fills_gaps(summary: pplog.Summary) -> None:
    timeline = summary.extra["timeline"]
    step = timedelta(seconds=interval_seconds(summary.interval or ""))
    assert timeline.get_column("requests").sum() == len(ROWS)
    assert timeline.get_column("bytes").sum() == sum(int(r["bytes"]) for r in ROWS)  # type: ignore[call-overload]
    assert timeline.get_column("errors_5xx").sum() == sum(
        1
        for r in ROWS
        if int(r["status"]) >= 500  # type: ignore[call-overload]
    )
    times = timeline.get_column("time").to_list()
    assert all(b - a == step for a, b in zip(times, times[1:], strict=False))
    # the busiest interval, counted by hand
    start = times[0]
    buckets = Counter(
        int((r["time"] - start) / step)  # type: ignore[operator]
        for r in ROWS
    )
    assert timeline.get_column("requests").to_list() == [
        buckets.get(i, 0) for i in range(len(times))
    ]


def test_user_agents_referrers_and_balancers(summary: pplog.Summary) -> None:
    uas = Counter(r["ua"] for r in ROWS)
    table = summary.extra["user_agents"]
    assert table.row(0)[0] == uas.most_common(1)[0][0]
    assert dict(table.select("http_user_agent", "requests").iter_rows()) == {
        k: v for k, v in uas.items() if k != "-"
    } | ({None: uas["-"]} if "-" in uas else {})
    refs = Counter(r["ref"] for r in ROWS if r["ref"] not in ("-", ""))
    assert (
        dict(summary.extra["referrers"].select("http_referer", "requests").iter_rows())
        == refs
    )
    peers = Counter(r["peer"] for r in ROWS)
    lb = summary.extra["lb"]
    assert dict(lb.select("peer", "requests").iter_rows()) == peers
    # the 10.0.0.0/8 balancers are trusted by default; direct hits are not
    assert all(
        trusted == peer.startswith("10.")
        for peer, trusted in lb.select("peer", "trusted").iter_rows()
    )
    direct = Counter(r["peer"] for r in ROWS if r["xff"] in ("-", ""))
    assert dict(lb.select("peer", "direct").iter_rows()) == {
        p: direct.get(p, 0) for p in peers
    }


def test_clients_have_their_top_user_agent(summary: pplog.Summary) -> None:
    row = summary.clients.row(0, named=True)
    mine = Counter(
        r["ua"]
        for r in ROWS
        if row["client_ip"] in str(r["xff"]).replace(" ", "").split(",")[-1:]
    )
    best = max(mine.values())
    assert row["top_user_agent"] in {ua for ua, n in mine.items() if n == best}


def test_free_text_columns_come_back_as_text(summary: pplog.Summary) -> None:
    # the spool keeps user agents and referrers as categoricals; tables do not
    assert summary.clients.schema["top_user_agent"] == pl.String
    assert summary.extra["user_agents"].schema["http_user_agent"] == pl.String
    assert summary.extra["referrers"].schema["http_referer"] == pl.String
    assert summary.extra["agents"].height > 0


def test_errors_name_their_top_clients(summary: pplog.Summary) -> None:
    first = summary.errors.row(0, named=True)
    listed = first["top_clients"].split(", ")
    assert 1 <= len(listed) <= 3
    counts = [int(re.search(r"\((\d+)\)$", x).group(1)) for x in listed]  # type: ignore[union-attr]
    assert counts == sorted(counts, reverse=True)
    assert sum(counts) <= first["requests"]


def test_hosts_table_when_the_host_is_logged(tmp_path: Path) -> None:
    log = tmp_path / "vhost.log"
    line = '{host} 203.0.113.{n} [27/Nov/2026:06:01:0{n} +0000] "GET / HTTP/1.1" {status} 10'
    log.write_text(
        "\n".join(
            line.format(host=h, n=n, status=s)
            for h, n, s in [
                ("a.example", 1, 200),
                ("a.example", 2, 500),
                ("b.example", 3, 404),
            ]
        )
        + "\n"
    )
    s = pplog.summarize(
        log,
        log_format='$host $remote_addr [$time_local] "$request" $status $body_bytes_sent',
    )
    assert s.extra["hosts"].rows() == [
        ("a.example", 2, 20, 0, 1),
        ("b.example", 1, 10, 1, 0),
    ]
    assert "lb" not in s.extra  # nothing a balancer adds is logged


def test_upstream_response_time_percentiles(tmp_path: Path) -> None:
    log = tmp_path / "up.log"
    times = ["0.010", "0.020, 0.030", "-", "0.040 : 0.001"]
    log.write_text(
        "".join(
            f'203.0.113.9 [27/Nov/2026:06:01:0{i} +0000] "GET /x HTTP/1.1" 200 0.1{i} "{t}"\n'
            for i, t in enumerate(times)
        )
    )
    s = pplog.summarize(
        log,
        log_format='$remote_addr [$time_local] "$request" $status $request_time '
        '"$upstream_response_time"',
    )
    row = s.paths.row(0, named=True)
    # tries add up: 0.010, 0.050, 0.041; nearest rank p50 of three is the second
    assert row["upstream_response_time_p50"] == pytest.approx(0.041)
    assert row["upstream_response_time_max"] == pytest.approx(0.050)
    assert row["request_time_p50"] == pytest.approx(0.11)


# --- filters -----------------------------------------------------------------


def test_status_filter_and_overview_accounting() -> None:
    s = pplog.summarize(MAIN, status=["5xx", "404"], top=0)
    wanted = [r for r in ROWS if int(r["status"]) >= 500 or r["status"] == 404]  # type: ignore[call-overload]
    ov = s.overview_dict()
    assert ov["requests"] == len(wanted)
    assert ov["lines"] == len(ROWS)
    assert ov["filtered_out"] == len(ROWS) - len(wanted)
    assert set(s.extra["status"].get_column("status")) == {r["status"] for r in wanted}
    assert s.filters == ("status 5xx,404",)


def test_time_window_is_half_open() -> None:
    times = sorted({r["time"] for r in ROWS})
    since, until = times[10], times[-10]
    s = pplog.summarize(MAIN, since=since, until=until)
    expected = sum(1 for r in ROWS if since <= r["time"] < until)  # type: ignore[operator]
    assert s.overview_dict()["requests"] == expected
    assert s.overview_dict()["first_time"] == since
    assert s.overview_dict()["last_time"] < until


def test_relative_since_reaches_back_from_now() -> None:
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert parse_time("90m", now=now) == now - timedelta(minutes=90)
    assert parse_time("2d ago", now=now) == now - timedelta(days=2)
    # the sample log is from 2026-11-20: a window of the last hour holds nothing
    s = pplog.summarize(MAIN, since="1h")
    assert s.overview_dict()["requests"] == 0
    assert s.overview_dict()["filtered_out"] == len(ROWS)


def test_absolute_times_in_every_accepted_form() -> None:
    want = datetime(2026, 11, 20, 0, 1, tzinfo=UTC)
    for text in (
        "2026-11-20T00:01:00Z",
        "2026-11-20 00:01",
        "2026-11-20T01:01:00+01:00",
        "20/Nov/2026:00:01:00 +0000",
    ):
        assert parse_time(text) == want, text
    with pytest.raises(OptionError, match="cannot read the time"):
        parse_time("yesterday-ish")


def test_status_specs() -> None:
    assert parse_status(["4xx", "502,503-504"]) == ((400, 499), (502, 502), (503, 504))
    for bad in ("6xx", "20", "abc", "504-503"):
        with pytest.raises(OptionError):
            parse_status([bad])


def test_client_drilldown_by_address_and_cidr() -> None:
    target = "192.0.2.10"
    s = pplog.summarize(MAIN, client=target, top=0)
    assert s.clients.get_column("client_ip").to_list() == [target]
    mine = s.clients.item(0, "requests")
    assert s.overview_dict()["requests"] == mine
    assert s.paths.get_column("requests").sum() == mine
    assert s.extra["timeline"].get_column("requests").sum() == mine
    wide = pplog.summarize(MAIN, client="192.0.2.0/24", top=0)
    assert set(wide.clients.get_column("client_ip")) >= {target}
    assert all(ip.startswith("192.0.2.") for ip in wide.clients.get_column("client_ip"))
    v6 = pplog.summarize(MAIN, client="2001:db8::/32", top=0)
    assert v6.clients.height and all(
        ":" in ip for ip in v6.clients.get_column("client_ip")
    )
    with pytest.raises(OptionError, match="not an address or CIDR"):
        pplog.summarize(MAIN, client="300.1.1.1/8")


def test_path_drilldown_by_regex() -> None:
    s = pplog.summarize(MAIN, path=r"^/api/v1/(orders|cart)$", top=0)
    assert set(s.paths.get_column("path")) == {"/api/v1/orders", "/api/v1/cart"}
    expected = sum(1 for r in ROWS if r["path"] in ("/api/v1/orders", "/api/v1/cart"))
    assert s.overview_dict()["requests"] == expected
    with pytest.raises(OptionError, match="not a valid regular expression"):
        pplog.summarize(MAIN, path="(unclosed")


def test_path_filter_searches_the_decoded_path(tmp_path: Path) -> None:
    log = tmp_path / "utf8.log"
    log.write_text(
        '203.0.113.9 - - [27/Nov/2026:06:01:02 +0000] "GET /caf\\xC3\\xA9 HTTP/1.1" 200 1 "-" "-"\n'
        '203.0.113.9 - - [27/Nov/2026:06:01:03 +0000] "GET /tea HTTP/1.1" 200 1 "-" "-"\n'
    )
    s = pplog.summarize(log, format="combined", path="café")
    assert s.paths.get_column("path").to_list() == ["/café"]


def test_filters_with_bots_left_out() -> None:
    s = pplog.summarize(MAIN, status="2xx", exclude_bots=True)
    ov = s.overview_dict()
    assert ov["lines"] == len(ROWS)
    assert ov["requests"] + ov["filtered_out"] + ov["excluded_bots"] == len(ROWS)
    assert ov["excluded_bots"] > 0
    assert "bots left out" in s.filters


def test_empty_filters_are_falsey_and_labelled() -> None:
    assert not Filters.parse()
    f = Filters.parse(since="2026-11-20", status="5xx", client="10.0.0.0/8", path="^/a")
    assert f and len(f.labels) == 4
    with pytest.raises(OptionError, match="not before"):
        Filters.parse(since="2026-11-21", until="2026-11-20")


# --- timeline intervals ----------------------------------------------------------


def test_interval_choice() -> None:
    day = datetime(2026, 11, 20, tzinfo=UTC)
    assert choose_interval(day, day + timedelta(minutes=2)) == "1s"
    assert choose_interval(day, day + timedelta(minutes=3)) == "10s"
    assert choose_interval(day, day + timedelta(days=1)) == "15m"
    assert choose_interval(day, day + timedelta(days=30)) == "6h"
    assert choose_interval(day, day + timedelta(days=3000)) == "1mo"
    assert choose_interval(day, day + timedelta(days=365 * 1000)) == "10y"
    assert choose_interval(day, day) == "1s"
    assert choose_interval(day, day + timedelta(days=1), "1h") == "1h"
    with pytest.raises(OptionError, match="longer"):
        choose_interval(day, day + timedelta(days=30), "1s")
    for bad in ("5", "0m", "1x", "m5", "1M"):
        with pytest.raises(OptionError):
            interval_seconds(bad)


def test_given_interval_shapes_the_timeline() -> None:
    s = pplog.summarize(MAIN, interval="30s")
    assert s.interval == "30s"
    times = s.extra["timeline"].get_column("time")
    assert (times.diff().drop_nulls() == timedelta(seconds=30)).all()
    assert times[0].second % 30 == 0


def test_tables_from_a_frame_without_times() -> None:
    frame = pl.DataFrame({"client_ip": ["203.0.113.1"], "path": ["/"], "status": [200]})
    s = pplog.summarize(frame.with_columns(pl.col("status").cast(pl.UInt16)))
    assert "timeline" not in s.extra and s.interval is None
    assert s.extra["status"].rows() == [(200, 1, 1.0)]


# --- past the exact bound: sketches --------------------------------------------


def test_approx_sketches_distinct_counts_and_percentiles_and_says_so(
    tmp_path: Path,
) -> None:
    import random

    rng = random.Random(7)
    log = tmp_path / "big.log"
    log.write_text(
        "".join(
            f"203.0.{rng.randrange(256)}.{rng.randrange(256)} [27/Nov/2026:06:01:02 +0000]"
            f' "GET /{rng.choice("abc")} HTTP/1.1" 200 {rng.lognormvariate(-3, 1):.3f}\n'
            for _ in range(20_000)
        )
    )
    fmt = '$remote_addr [$time_local] "$request" $status $request_time'
    exact = pplog.summarize(log, log_format=fmt, top=0)
    assert "approximate" not in exact.overview_dict()
    sketched = pplog.summarize(log, log_format=fmt, top=0, approx=True)
    assert sketched.overview_dict()["approximate"] == (
        "clients.paths, paths.clients, paths.request_time_p50/p95/p99"
    )
    assert sketched.overview.drop("approximate").equals(exact.overview)
    assert sketched.errors.equals(exact.errors)
    c, d = exact.clients.sort("client_ip"), sketched.clients.sort("client_ip")
    assert c.drop("paths").equals(d.drop("paths"))
    for x, y in zip(c.get_column("paths"), d.get_column("paths"), strict=True):
        assert abs(x - y) <= 0.049 * x
    a, b = exact.paths.sort("path"), sketched.paths.sort("path")
    assert a.get_column("requests").to_list() == b.get_column("requests").to_list()
    for x, y in zip(a.get_column("clients"), b.get_column("clients"), strict=True):
        assert abs(x - y) <= 0.049 * x  # 3 standard errors at precision 12
    for q in ("p50", "p95", "p99"):
        for x, y in zip(
            a.get_column(f"request_time_{q}"),
            b.get_column(f"request_time_{q}"),
            strict=True,
        ):
            assert abs(x - y) <= 0.01 * x + 1e-9  # DDSketch: alpha = 1%
    assert a.get_column("request_time_max").to_list() == (
        b.get_column("request_time_max").to_list()
    )


# --- what an adversarial review found -------------------------------------------


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


COMBINED = '{ip} - - [27/Nov/2026:06:01:{s:02d} +0000] "{req}" {status} 10 "-" "{ua}"'


def test_a_health_checker_user_agent_does_not_hide_a_public_client(
    tmp_path: Path,
) -> None:
    lines = [
        COMBINED.format(
            ip="10.0.1.5",
            s=1,
            req="GET /health HTTP/1.1",
            status=200,
            ua="ELB-HealthChecker/2.0",
        ),
        COMBINED.format(
            ip="203.0.113.66", s=2, req="GET / HTTP/1.1", status=200, ua="Mozilla/5.0"
        ),
    ] + [
        COMBINED.format(
            ip="198.51.100.250",
            s=3 + i,
            req="POST /wp-login.php HTTP/1.1",
            status=401,
            ua="ELB-HealthChecker/2.0",
        )
        for i in range(5)
    ]
    log = _write(tmp_path / "spoof.log", lines)
    s = pplog.summarize(log, format="combined")
    assert s.clients.get_column("client_ip").to_list() == [
        "198.51.100.250",
        "203.0.113.66",
    ]
    assert s.overview_dict()["health_checks"] == 1  # the balancer node's check only
    assert s.overview_dict()["clients"] == 2
    drill = pplog.summarize(log, format="combined", client="10.0.1.5")
    assert drill.clients.get_column("client_ip").to_list() == ["10.0.1.5"]


def test_many_client_ranges_cost_one_pass_over_distinct_clients() -> None:
    import time

    ranges = [f"198.51.100.{i}/32" for i in range(256)] + ["192.0.2.0/24"]
    start = time.perf_counter()
    s = pplog.summarize(MAIN, client=ranges, top=0)
    assert time.perf_counter() - start < 10  # was minutes: each range re-parsed rows
    wanted = {ip for ip in s.clients.get_column("client_ip")}
    assert wanted and all(ip.startswith(("198.51.100.", "192.0.2.")) for ip in wanted)


def test_a_client_written_as_displayed_matches(tmp_path: Path) -> None:
    log = _write(
        tmp_path / "mapped.log",
        [
            COMBINED.format(
                ip="::ffff:203.0.113.9", s=1, req="GET / HTTP/1.1", status=200, ua="x"
            )
        ],
    )
    s = pplog.summarize(log, format="combined", client="::ffff:203.0.113.9")
    assert s.overview_dict()["requests"] == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"status": ""}, "--status got an empty value"),
        ({"client": [""]}, "--client got an empty value"),
        ({"path": "(?=/api)"}, "look-around"),
        ({"since": "10000000d"}, "out of range"),
        ({"since": "9999-12-31T23:59:59-01:00"}, "out of range"),
        ({"since": 0}, "a time must be text"),
        ({"interval": 5}, "must be a duration"),
        ({"interval": "bogus"}, "is not a duration"),
    ],
)
def test_unusable_filter_values_are_option_errors(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(OptionError, match=message):
        pplog.summarize(MAIN, **kwargs)  # type: ignore[arg-type]


def test_filters_on_fields_the_format_does_not_log(tmp_path: Path) -> None:
    log = _write(tmp_path / "plain.log", ["203.0.113.9 GET /a", "203.0.113.9 GET /b"])
    fmt = "$remote_addr $request_method $uri"
    with pytest.raises(OptionError, match="--since/--until need a time"):
        pplog.summarize(log, log_format=fmt, since="1h")
    with pytest.raises(OptionError, match="--status needs"):
        pplog.summarize(log, log_format=fmt, status="5xx")
    s = pplog.summarize(log, log_format=fmt, path="^/a$")
    assert s.paths.get_column("path").to_list() == ["/a"]


def test_request_uri_formats_get_paths_and_routes(tmp_path: Path) -> None:
    log = _write(
        tmp_path / "uri.log",
        [
            "203.0.113.9 [27/Nov/2026:06:01:02 +0000] GET /users/1?x=1 200",
            "203.0.113.9 [27/Nov/2026:06:01:03 +0000] GET /users/2 404",
        ],
    )
    fmt = "$remote_addr [$time_local] $request_method $request_uri $status"
    rows = pplog.read_log(log, log_format=fmt)
    assert rows.select("path", "query").rows() == [
        ("/users/1", "x=1"),
        ("/users/2", None),
    ]
    s = pplog.summarize(
        log, log_format=fmt, routes="/users/*"
    )  # a string, and it implies routes
    assert s.paths.select("route", "requests").rows() == [("/users/*", 2)]


def test_frames_with_other_time_units_and_zones() -> None:
    lf = pplog.scan_log(MAIN, trusted=["10.0.0.0/8"])
    berlin = lf.with_columns(pl.col("time").dt.convert_time_zone("Europe/Berlin"))
    naive_ms = lf.with_columns(
        pl.col("time").dt.replace_time_zone(None).dt.cast_time_unit("ms")
    )
    base = pplog.summarize(lf, trusted=["10.0.0.0/8"], since="2026-11-20T00:01:00Z")
    for frame in (berlin, naive_ms):
        s = pplog.summarize(frame, trusted=["10.0.0.0/8"], since="2026-11-20T00:01:00Z")
        assert s.overview_dict()["requests"] == base.overview_dict()["requests"]
        assert s.extra["timeline"].equals(base.extra["timeline"])
    # the policy given with a frame is the one its checks use
    assert (
        base.extra["lb"]
        .filter(pl.col("peer").str.starts_with("10."))
        .get_column("trusted")
        .all()
    )


def test_top_user_agent_prefers_a_value_over_none_on_a_tie(tmp_path: Path) -> None:
    log = _write(
        tmp_path / "tie.log",
        [
            '203.0.113.9 - - [27/Nov/2026:06:01:02 +0000] "GET / HTTP/1.1" 200 1 "-" "-"',
            '203.0.113.9 - - [27/Nov/2026:06:01:03 +0000] "GET / HTTP/1.1" 200 1 "-" "Firefox"',
        ],
    )
    s = pplog.summarize(log, format="combined")
    assert s.clients.item(0, "top_user_agent") == "Firefox"


def test_long_spans_get_long_intervals(tmp_path: Path) -> None:
    log = _write(
        tmp_path / "years.log",
        [
            '203.0.113.9 - - [01/Jan/1000:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"',
            '203.0.113.9 - - [27/Nov/2026:06:01:03 +0000] "GET / HTTP/1.1" 200 1 "-" "-"',
        ],
    )
    s = pplog.summarize(log, format="combined")
    assert s.interval == "10y"
    assert s.extra["timeline"].height <= 120


def test_approx_partials_merge_to_the_sketch_of_everything() -> None:
    """Sketch states merge exactly: halves merged give the one-pass estimates."""
    from pplog.reports import FinishSettings, MapSettings, finish, merge
    from pplog.tasks import map_frame

    timed = (
        '$remote_addr - $remote_user [$time_local] "$request" $status '
        '$body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for" '
        '$request_time "$upstream_response_time"'
    )
    rows = pplog.read_log(
        "sample_logs/timed-access.log", log_format=timed, include_rejects=True
    )
    settings = MapSettings(approx=True)
    whole = finish(map_frame(rows, settings), FinishSettings(top=0))
    half = rows.height // 2
    parts = [
        map_frame(rows.slice(0, half), settings),
        map_frame(rows.slice(half), settings),
    ]
    merged = finish(merge(parts[::-1]), FinishSettings(top=0))
    assert merged.overview["approximate"].item() == (
        "clients.paths, paths.clients, paths.request_time_p50/p95/p99, "
        "paths.upstream_response_time_p50/p95/p99"
    )
    for name in ("overview", "clients", "paths", "errors"):
        assert getattr(merged, name).equals(getattr(whole, name)), name


def test_a_frame_with_categorical_text_gives_the_same_tables() -> None:
    """Pairs are text hashes: categorical columns must hash as their text."""
    rows = pplog.read_log("sample_logs/main-access.log", include_rejects=True)
    coded = rows.with_columns(
        pl.col("path", "client_ip", "http_user_agent").cast(pl.Categorical)
    )
    a, b = pplog.summarize(rows, top=0), pplog.summarize(coded, top=0)
    for name in ("overview", "clients", "paths", "errors"):
        assert getattr(a, name).equals(getattr(b, name)), name
    assert a.extra.keys() == b.extra.keys()
    for name, table in a.extra.items():
        assert table.equals(b.extra[name]), name


def test_busiest_rows_are_cut_without_sorting_every_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`by_requests` keeps the `top` rows with the sort (2M lines: 1 ms
    instead of 16 for the clients) and orders them as the full sort does:
    ties by the keys, null keys last."""
    import random

    from pplog.reports.breakdowns import by_requests

    rng = random.Random(7)
    n = 2000
    frame = pl.DataFrame(
        {
            "status": [(None, 404, 500, 502)[i % 4] for i in range(n)],
            # unique (status, path) keys, as in a table; four null paths
            "path": [None if i < 4 else rng.choice("/aé") + str(i) for i in range(n)],
            "requests": [rng.randint(1, 20) for _ in range(n)],  # many ties
        },
        schema={"status": pl.UInt16, "path": pl.String, "requests": pl.UInt64},
    )
    keys = ["status", "path"]
    full = frame.sort(
        ["requests", *keys], descending=[True, False, False], nulls_last=True
    )
    eager_sort = pl.DataFrame.sort

    def no_eager_sort(*args: object, **kwargs: object) -> pl.DataFrame:
        msg = "sorted every row"
        raise AssertionError(msg)

    monkeypatch.setattr(pl.DataFrame, "sort", no_eager_sort)
    for top in (1, 10, 333, n + 5):
        assert by_requests(frame, keys, top).equals(full.head(top)), top
    monkeypatch.setattr(pl.DataFrame, "sort", eager_sort)
    assert by_requests(frame, keys, 0).equals(full)
    lazy = by_requests(frame.lazy(), keys, 10)
    assert isinstance(lazy, pl.LazyFrame) and lazy.collect().equals(full.head(10))


def test_referrers_leave_out_empty_and_missing_ones(tmp_path: Path) -> None:
    # nginx logs a request without the header as "-" (null) and an empty
    # header as ""; neither is a referrer. Both roads: the summary's rows
    # (referrers as categoricals) and a frame of decoded rows (text).
    line = (
        '192.0.2.{n} - - [27/Nov/2026:06:00:0{n} +0000] "GET / HTTP/1.1" 200 {size} '
        '"{ref}" "curl/8.5.0"'
    )
    refs = ["", "-", "https://a.example/", "", "https://a.example/", "https://b/x"]
    log = tmp_path / "access.log"
    log.write_text(
        "".join(
            line.format(n=n, size=10 * (n + 1), ref=ref) + "\n"
            for n, ref in enumerate(refs)
        )
    )
    expected = {"https://a.example/": (2, 80), "https://b/x": (1, 60)}
    for source in (log, pplog.read_log(log, format="combined")):
        table = pplog.summarize(source, format="combined", top=0).extra["referrers"]
        got = {
            r: (n, b)
            for r, n, b in table.select("http_referer", "requests", "bytes").iter_rows()
        }
        assert got == expected


def test_statuses_past_599_are_no_errors_in_any_table(tmp_path: Path) -> None:
    """nginx logs any status up to 999 (`return 999;`, an upstream's own
    code passed on). The overview's classes and `--status 5xx` take 500-599;
    the tables had counted 600 and 999 as 5xx (`status >= 500`), so the
    report said 0 server errors in one place and 2 in the others."""
    line = (
        '192.0.2.1 - - [08/Dec/2026:03:00:0{s} +0000] "GET /a HTTP/1.1" {status} 1 '
        '"-" "curl/8"\n'
    )
    statuses = [200, 499, 500, 599, 600, 999]
    log = tmp_path / "access.log"
    log.write_text("".join(line.format(s=i, status=c) for i, c in enumerate(statuses)))
    s = pplog.summarize(log, format="combined", top=0)
    ov = s.overview_dict()
    assert (ov["status_4xx"], ov["status_5xx"], ov["status_other"]) == (1, 2, 2)
    for table in (s.clients, s.paths, s.extra["timeline"]):
        assert table["errors_4xx"].sum() == 1
        assert table["errors_5xx"].sum() == 2
    assert s.paths["ok_2xx_3xx"].sum() == 1
    assert sorted(s.errors["status"]) == [499, 500, 599]
    failed = pplog.summarize(log, format="combined", top=0, status="5xx")
    assert failed.overview_dict()["requests"] == 2


def test_upstream_tries_add_up_to_milliseconds(tmp_path: Path) -> None:
    """`0.010, 0.050` (two tries) took 0.06 s, as a logged `0.060` did: the
    sum is nginx's milliseconds, not 0.060000000000000005, and the two are
    one value in the percentiles."""
    line = (
        '203.0.113.1 [08/Dec/2026:03:00:0{s} +0000] "GET /u HTTP/1.1" 200 1 0.100 '
        '"{times}"\n'
    )
    log = tmp_path / "access.log"
    tries = ["0.010, 0.050", "0.010 : 0.050", "0.060", "0.020, 0.020, 0.020"]
    log.write_text("".join(line.format(s=i, times=t) for i, t in enumerate(tries)))
    fmt = (
        '$remote_addr [$time_local] "$request" $status $body_bytes_sent '
        '$request_time "$upstream_response_time"'
    )
    row = pplog.summarize(log, log_format=fmt, top=0).paths.row(0, named=True)
    assert [row[f"upstream_response_time_{m}"] for m in ("p50", "p99", "max")] == [
        0.06,
        0.06,
        0.06,
    ]
