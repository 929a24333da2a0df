"""Report tables: counts, distinct counts, percentiles, ordering, frames in."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import pplog

FMT = '$remote_addr [$time_local] "$request" $status $body_bytes_sent $request_time'


def write(tmp_path: Path, rows: list[tuple[str, int, str, int, int, float]]) -> Path:
    lines = [
        f'{ip} [27/Nov/2026:06:{minute:02d}:00 +0000] "GET {path} HTTP/1.1" '
        f"{status} {size} {rt:.3f}"
        for ip, minute, path, status, size, rt in rows
    ]
    path = tmp_path / "access.log"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_overview_counts_everything(tmp_path: Path) -> None:
    log = write(
        tmp_path,
        [
            ("203.0.113.1", 1, "/a", 200, 10, 0.1),
            ("203.0.113.2", 2, "/a", 404, 20, 0.2),
            ("203.0.113.2", 3, "/b", 503, 30, 0.3),
            ("203.0.113.3", 4, "/c", 101, 0, 0.0),
        ],
    )
    with log.open("a") as f:
        f.write("garbage\n\n")
    ov = pplog.summarize(log, log_format=FMT).overview_dict()
    assert ov["lines"] == 6
    assert ov["requests"] == 4
    assert ov["rejected"] == 2
    assert ov["rejected_by_reason"] == {"blank_line": 1, "no_match": 1}
    assert ov["clients"] == 3
    assert ov["bytes"] == 60
    assert (ov["status_1xx"], ov["status_2xx"], ov["status_4xx"], ov["status_5xx"]) == (
        1,
        1,
        1,
        1,
    )
    assert ov["first_time"].minute == 1 and ov["last_time"].minute == 4


def test_overview_counts_requests_credited_to_private_or_trusted_addresses(
    tmp_path: Path,
) -> None:
    log = write(
        tmp_path,
        [
            ("10.0.0.1", 1, "/a", 200, 1, 0.1),  # private: a balancer, probably
            ("10.0.0.1", 2, "/a", 200, 1, 0.1),
            ("10.0.0.1", 3, "/a", 200, 1, 0.1),
            ("203.0.113.5", 4, "/a", 200, 1, 0.1),
            ("203.0.113.5", 5, "/a", 200, 1, 0.1),
            ("198.51.100.7", 6, "/a", 200, 1, 0.1),  # trusted below
            ("fd00::1", 7, "/a", 200, 1, 0.1),
            ("::ffff:192.168.1.1", 8, "/a", 200, 1, 0.1),
            ("2001:db8::1", 9, "/a", 200, 1, 0.1),
        ],
    )
    ov = pplog.summarize(log, log_format=FMT, trusted=["198.51.100.0/24"])
    row = ov.overview_dict()
    assert row["client_private_or_trusted"] == 6
    assert row["requests"] == 9


def test_latency_percentiles_are_exact_nearest_rank(tmp_path: Path) -> None:
    times = [i / 1000 for i in range(1, 101)]  # 0.001 .. 0.100, one each
    rows = [("203.0.113.1", 1, "/p", 200, 1, t) for t in reversed(times)]
    summary = pplog.summarize(write(tmp_path, rows), log_format=FMT)
    row = summary.paths.row(0, named=True)
    assert row["request_time_p50"] == pytest.approx(0.050)
    assert row["request_time_p95"] == pytest.approx(0.095)
    assert row["request_time_p99"] == pytest.approx(0.099)
    assert row["request_time_max"] == pytest.approx(0.100)
    expected = pl.Series(times).quantile(0.95, "nearest")
    assert row["request_time_p95"] == pytest.approx(expected)


def test_distinct_counts_and_ordering(tmp_path: Path) -> None:
    rows = [
        ("203.0.113.1", 1, "/a", 200, 1, 0.0),
        ("203.0.113.1", 1, "/a", 200, 1, 0.0),
        ("203.0.113.1", 1, "/b", 500, 1, 0.0),
        ("203.0.113.2", 1, "/a", 500, 1, 0.0),
        ("203.0.113.3", 1, "/c", 404, 1, 0.0),
        ("203.0.113.4", 1, "/c", 404, 1, 0.0),
    ]
    s = pplog.summarize(write(tmp_path, rows), log_format=FMT, top=0)
    clients = s.clients.select("client_ip", "requests", "paths", "errors_5xx").rows()
    assert clients == [
        ("203.0.113.1", 3, 2, 1),
        ("203.0.113.2", 1, 1, 1),
        ("203.0.113.3", 1, 1, 0),
        ("203.0.113.4", 1, 1, 0),
    ]
    paths = s.paths.select("path", "requests", "clients").rows()
    assert paths == [("/a", 3, 2), ("/c", 2, 2), ("/b", 1, 1)]
    errors = s.errors.select("status", "path", "requests", "clients").rows()
    assert errors == [(404, "/c", 2, 2), (500, "/a", 1, 1), (500, "/b", 1, 1)]


def test_top_limits_rows_but_not_counts(tmp_path: Path) -> None:
    rows = [(f"203.0.113.{i}", 1, f"/{i}", 200, 1, 0.0) for i in range(1, 30)]
    s = pplog.summarize(write(tmp_path, rows), log_format=FMT, top=5)
    assert s.clients.height == 5 and s.paths.height == 5
    assert s.overview_dict()["clients"] == 29


def test_escaped_paths_group_together_and_are_decoded(tmp_path: Path) -> None:
    rows = [("203.0.113.1", 1, r"/caf\xC3\xA9", 200, 1, 0.0)] * 2
    s = pplog.summarize(write(tmp_path, rows), log_format=FMT)
    assert s.paths.select("path", "requests").rows() == [("/café", 2)]


def test_summarize_accepts_frames_from_scan_log(tmp_path: Path) -> None:
    rows = [
        ("203.0.113.1", 1, "/a", 200, 5, 0.0),
        ("203.0.113.2", 1, "/b", 404, 5, 0.0),
    ]
    log = write(tmp_path, rows)
    from_paths = pplog.summarize(log, log_format=FMT)
    lazy = pplog.summarize(pplog.scan_log(log, log_format=FMT))
    eager = pplog.summarize(pplog.read_log(log, log_format=FMT, include_rejects=True))
    for other in (lazy, eager):
        assert other.clients.equals(from_paths.clients)
        assert other.paths.equals(from_paths.paths)
        assert other.overview.select("requests", "clients", "bytes").equals(
            from_paths.overview.select("requests", "clients", "bytes")
        )


def test_summary_repr_is_readable(tmp_path: Path) -> None:
    log = write(tmp_path, [("203.0.113.1", 1, "/a", 200, 5, 0.0)])
    s = pplog.summarize(log, log_format=FMT)
    assert repr(s).startswith("<pplog.Summary 1 requests from 1 clients, 0 rejected")
    assert "<h4>clients</h4>" in s._repr_html_()


def test_reject_samples_keep_line_order_when_clients_need_a_trust_decision(
    tmp_path: Path,
) -> None:
    # X-Forwarded-For attribution joins decisions back onto the rows; the
    # rejects are still reported first line first
    good = (
        '10.0.0.{i} - - [27/Nov/2026:06:01:02 +0000] "GET /{i} HTTP/1.1" 200 1 '
        '"-" "t" "203.0.113.{i}, 10.1.1.{i}"'
    )
    lines = []
    for i in range(1, 4001):
        lines.append(good.format(i=i % 250))
        if i % 400 == 0:
            lines.append(f"garbage {i}")
    log = tmp_path / "access.log"
    log.write_text("\n".join(lines) + "\n")
    s = pplog.summarize(log, format="main")
    numbers = s.reject_samples.get_column("line").to_list()
    assert numbers == sorted(numbers)
    assert numbers[0] == 401
    assert s.overview_dict()["clients"] == 250
