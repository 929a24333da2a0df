"""`LogSpec`: one settings value, built once, taken by every entry point.

Each entry point given `spec=` must read the logs exactly as it does given the
keywords that build the spec, and refuse both at once.
"""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from polars.testing import assert_frame_equal

import pplog
from helpers import SAMPLES
from pplog import LogSpec
from pplog.cli import cli
from pplog.clientip import ProxyPolicy
from pplog.errors import OptionError

MAIN = SAMPLES / "main-access.log"
ELB = SAMPLES / "elb-access.log"
# main-access.log: balancers in 10.0.0.0/8 append the client to X-Forwarded-For
KEYWORDS: dict[str, object] = {
    "format": "main",
    "trusted": ["10.0.0.0/8"],
    "real_ip_header": "X-Forwarded-For",
    "recursive": True,
}


@pytest.fixture(scope="module")
def spec() -> LogSpec:
    return LogSpec.build(**KEYWORDS)  # type: ignore[arg-type]


def test_build_parses_once_and_compares_by_value() -> None:
    a = LogSpec.build(
        format="main",
        trusted=["10.0.0.0/8"],
        status="5xx,404",
        since="2026-11-20T00:01",
        client="203.0.113.0/24",
    )
    b = LogSpec.build(
        format="main",
        trusted=("10.0.0.0/8",),
        status=["5xx", "404"],
        since=datetime(2026, 11, 20, 0, 1, tzinfo=UTC),
        client=["203.0.113.0/24"],
    )
    assert a == b
    assert a.trusted == ("10.0.0.0/8",)
    assert a.filters.status == ((500, 599), (404, 404))
    assert a.filters.since == datetime(2026, 11, 20, 0, 1, tzinfo=UTC)
    assert a != LogSpec.build(format="main", trusted=["10.0.0.0/8"])
    with pytest.raises(OptionError, match="is not a status"):
        LogSpec.build(status="6xx")


def test_an_empty_geoip_list_is_kept_apart_from_none() -> None:
    # `ingest` reads () as "GeoIP off" and None as "the usual directories"
    assert LogSpec.build(geoip=[]).geoip == ()
    assert LogSpec.build().geoip is None
    assert LogSpec.build(geoip="a.mmdb").geoip == ("a.mmdb",)


def test_of_returns_the_spec_or_builds_one(spec: LogSpec) -> None:
    assert LogSpec.of(spec) is spec
    assert LogSpec.of(spec, format="auto", trusted=None, status=None) is spec
    assert LogSpec.of(None, **KEYWORDS) == spec
    with pytest.raises(OptionError, match="give `spec` or `format`, not both"):
        LogSpec.of(spec, format="combined")


def test_a_spec_survives_pickling_for_worker_processes() -> None:
    spec = LogSpec.build(
        **KEYWORDS,  # type: ignore[arg-type]
        client="203.0.113.0/24",
        path="^/api/",
        since="1h",
        exclude_bots=True,
    )
    again = pickle.loads(pickle.dumps(spec))
    assert again == spec
    assert again.filters.labels == spec.filters.labels  # fields left out of ==
    assert again.filters.since == spec.filters.since  # `1h` was fixed once
    hops = LogSpec.build(policy=ProxyPolicy(strategy="hops", hops=2))
    assert pickle.loads(pickle.dumps(hops)).policy == hops.policy


def test_scan_log_and_read_log_take_a_spec(spec: LogSpec) -> None:
    by_keywords = pplog.read_log(MAIN, **KEYWORDS)  # type: ignore[arg-type]
    assert_frame_equal(pplog.scan_log(MAIN, spec=spec).collect(), by_keywords)
    assert_frame_equal(pplog.read_log(MAIN, spec=spec), by_keywords)
    # the trust settings were used: most clients come from X-Forwarded-For (with
    # only loopback trusted, every one would be the balancer's address)
    assert _sources(by_keywords) == {"x_forwarded_for": 1939, "remote_addr": 61}
    with pytest.raises(OptionError, match="not both"):
        pplog.scan_log(MAIN, spec=spec, trusted=["10.0.0.0/8"])
    with pytest.raises(OptionError, match="not both"):
        pplog.read_log(MAIN, "main", spec=spec)


def test_a_preset_and_a_log_format_string_are_refused_together(
    tmp_path: Path,
) -> None:
    """The string was read and the preset dropped without a word (`--format
    main --log-format '...'`: every line a reject of the string's format)."""
    fmt = '$remote_addr [$time_local] "$request" $status'
    with pytest.raises(OptionError, match="a preset or a log format string, not both"):
        pplog.summarize(MAIN, format="main", log_format=fmt)
    result = CliRunner().invoke(
        cli, ["summarize", str(MAIN), "--format", "main", "--log-format", fmt]
    )
    assert result.exit_code == 2
    assert result.output.strip().endswith(
        "Error: give either a preset or a log format string, not both"
    )
    assert pplog.summarize(MAIN, format="auto", log_format=fmt).overview_dict()


def test_summarize_takes_a_spec_with_its_filters() -> None:
    spec = LogSpec.build(**KEYWORDS, status="2xx", path="^/api/")  # type: ignore[arg-type]
    by_spec = pplog.summarize(MAIN, spec=spec, top=0)
    by_keywords = pplog.summarize(MAIN, **KEYWORDS, status="2xx", path="^/api/", top=0)  # type: ignore[arg-type]
    assert by_spec.overview_dict() == by_keywords.overview_dict()
    assert_frame_equal(by_spec.clients, by_keywords.clients)
    assert_frame_equal(by_spec.paths, by_keywords.paths)
    assert by_spec.overview_dict()["requests"] < 2000  # the filters were applied
    with pytest.raises(OptionError, match="not both"):
        pplog.summarize(MAIN, spec=spec, status="5xx")


def test_ingest_takes_a_spec(spec: LogSpec, tmp_path: Path) -> None:
    by_spec = pplog.ingest([str(MAIN)], tmp_path / "a", spec=spec)
    by_keywords = pplog.ingest([str(MAIN)], tmp_path / "b", **KEYWORDS)  # type: ignore[arg-type]
    assert (by_spec.rows, by_spec.rejects) == (by_keywords.rows, by_keywords.rejects)
    rows = pplog.scan_dataset(tmp_path / "a").collect().drop("stream_id")
    assert_frame_equal(
        rows, pplog.scan_dataset(tmp_path / "b").collect().drop("stream_id")
    )
    assert _sources(rows) == {"x_forwarded_for": 1939, "remote_addr": 61}
    with pytest.raises(OptionError, match="not both"):
        pplog.ingest([str(MAIN)], tmp_path / "c", spec=spec, format="main")
    # a dataset keeps every row: filters belong to summarize
    with pytest.raises(OptionError, match="keeps every row"):
        pplog.ingest([str(MAIN)], tmp_path / "d", spec=spec.with_(exclude_bots=True))
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()


def test_ingest_with_no_geoip_files_looks_none_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    from test_geo import build_city

    ingest_module = importlib.import_module("pplog.batch.ingest")
    city = build_city(tmp_path / "city.mmdb")
    monkeypatch.setattr(ingest_module, "default_database_paths", lambda: [city])
    pplog.ingest([str(ELB)], tmp_path / "found")  # the usual places
    pplog.ingest([str(ELB)], tmp_path / "off", geoip=[])
    assert "country" in pplog.scan_dataset(tmp_path / "found").collect_schema()
    assert "country" not in pplog.scan_dataset(tmp_path / "off").collect_schema()


def test_diagnose_takes_paths_and_a_spec(spec: LogSpec) -> None:
    rows = pplog.scan_log(ELB, format="elb_log", include_rejects=True)
    from_rows = pplog.diagnose(rows)
    from_paths = pplog.diagnose([ELB], format="elb_log")
    from_spec = pplog.diagnose(str(ELB), spec=LogSpec.build(format="elb_log"))
    assert from_rows == from_paths == from_spec
    assert {f.code for f in from_paths} >= {"tls-on-plain-listener"}
    with pytest.raises(OptionError, match="not both"):
        pplog.diagnose(ELB, spec=spec, format="elb_log")
    with pytest.raises(OptionError, match="reads every line"):
        pplog.diagnose(ELB, status="5xx")


def test_diagnose_uses_the_policy_of_the_spec(tmp_path: Path) -> None:
    # every client is in 10.0.0.0/8: the balancers' addresses, if trusted
    log = tmp_path / "access.log"
    line = (
        '10.0.{i}.9 - - [27/Nov/2026:06:01:03 +0000] "GET / HTTP/1.1" 200 1 "-" "-"\n'
    )
    log.write_text("".join(line.format(i=i) for i in range(4)))
    loopback = LogSpec.build(format="combined", trusted=["127.0.0.0/8"])
    assert pplog.diagnose(log, spec=loopback) == []
    (found,) = pplog.diagnose(log, format="combined", trusted=["10.0.0.0/8"])
    assert (found.code, found.count) == ("balancer-addresses-as-clients", 4)
    rows = pplog.read_log(log, format="combined", include_rejects=True)
    assert pplog.diagnose(rows, spec=loopback) == []  # a frame: the spec's policy
    (again,) = pplog.diagnose(rows, policy=ProxyPolicy(trusted=["10.0.0.0/8"]))
    assert again == found


def test_diagnose_reads_error_logs_by_path(tmp_path: Path) -> None:
    from pplog.formats.errorlog import read_error_log

    error_log = tmp_path / "error.log"
    error_log.write_text(
        "2026/11/27 06:01:03 [error] 12#12: *5 broken header: "
        '"GET / HTTP/1.1" while reading PROXY protocol, client: 10.0.1.5, '
        "server: 0.0.0.0:80\n"
    )
    by_path = pplog.diagnose(None, [error_log])
    assert by_path == pplog.diagnose(None, read_error_log(error_log))
    assert [f.count for f in by_path] == [1]
    problems: list[tuple[str, str]] = []
    binary = tmp_path / "binary.log"
    binary.write_bytes(bytes(range(256)) * 64)
    found = pplog.diagnose(
        [ELB, binary],
        error_log,
        format="elb_log",
        on_problem=lambda name, message: problems.append((name, message)),
    )
    assert {name for name, _ in problems} == {str(binary)}
    assert {f.code for f in found} >= {
        "tls-on-plain-listener",
        "plain-request-on-proxy-listener",
    }


def _sources(rows: pl.DataFrame) -> dict[str, int]:
    counts = rows.get_column("client_ip_source").value_counts()
    return dict(counts.iter_rows())  # type: ignore[arg-type]


def test_scan_log_applies_the_specs_filters_and_bot_exclusion() -> None:
    """A spec's filters select rows in `scan_log` as in `summarize`; rejects stay."""
    spec = LogSpec.build(status="5xx", path="^/api/", exclude_bots=True)
    log = "sample_logs/main-access.log"
    rows = pplog.read_log(log, spec=spec)
    summary = pplog.summarize(log, spec=spec)
    assert rows.height == summary.overview["requests"].item() > 0
    assert rows["status"].min() >= 500
    assert rows["path"].str.starts_with("/api/").all()
    assert (
        not rows["agent_class"]
        .is_in(["search_bot", "ai_crawler", "monitoring", "scanner"])
        .any()
    )
    every = pplog.read_log(log, spec=spec, include_rejects=True)
    assert every.height == rows.height + summary.overview["rejected"].item()
