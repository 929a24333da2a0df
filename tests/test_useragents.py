"""Browsers, operating systems and devices: ua-parser per distinct user agent.

The expected families are uap-core's own test cases (ua-parser/uap-core,
``tests/test_ua.yaml`` and ``tests/test_os.yaml`` at commit e3c5e63, Apache
2.0): the first case of each of a few common families, copied here because
the PyPI packages ship the rules without their tests.
"""

from __future__ import annotations

import ipaddress
import json
import re
import sys
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

import pplog
from pplog.cli import cli
from pplog.enrich.agents import BOT_CLASSES
from pplog.enrich.useragents import DEVICES, accelerated, parse_agents

SAMPLE_LOGS = Path(__file__).resolve().parent.parent / "sample_logs"
CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"

# (user agent, family, major) from uap-core tests/test_ua.yaml
BROWSER_CASES = [
    (
        "Mozilla/5.0 (Linux; U; Android 2.2.2; en-gb; HTC Desire Build/FRG83G) AppleWebKit/533.1 (KHTML, like Gecko) Version/4.0 Mobile Safari/533.1",
        "Android",
        "2",
    ),
    (
        "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.0; Trident/4.0; chromeframe; SLCC1; .NET CLR 2.0.50727; .NET CLR 3.5.30729; .NET CLR 3.0.30729)",
        "IE",
        "8",
    ),
    (
        "Mozilla/5.0 (Linux; Android 9; Pixel 2 XL Build/PPP5.180610.010; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/68.0.3440.85 Mobile Safari/537.36",
        "Chrome Mobile WebView",
        "68",
    ),
    (
        "Mozilla/5.0 (Linux; Android 4.2; Galaxy Nexus Build/JOP40C) AppleWebKit/535.19 (KHTML, like Gecko) Chrome/18.0.1025.166 Mobile Safari/535.19",
        "Chrome Mobile",
        "18",
    ),
    (
        "Mozilla/5.0 (X11; U; SunOS i86pc; en-US; rv:1.8.0.5) Gecko/20060728 Firefox/1.5.0.5",
        "Firefox",
        "1",
    ),
    ("Mozilla/5.0 (Mobile; rv:15.0) Gecko/15.0 Firefox/15.0", "Firefox Mobile", "15"),
    (
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Googlebot",
        "2",
    ),
    (
        "Mozilla/5.0 (iPad; U; CPU OS 3_2 like Mac OS X; en-us) AppleWebKit/531.21.10 (KHTML, like Gecko) Version/4.0.4 Mobile/7B367 Safari/531.21.10",
        "Mobile Safari",
        "4",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 12_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 ManagedBrowser/20181024.1",
        "Mobile Safari UI/WKWebView",
        None,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.1.2 Safari/605.1.15",
        "Safari",
        "12",
    ),
    (
        "Opera/9.80 (VRE; Opera Mini/4.2/28.2794; U; en) Presto/2.8.119 Version/11.10",
        "Opera Mini",
        "4",
    ),
    ("Opera/9.30 (Nintendo Wii; U; ; 3642; en)", "Opera", "9"),
    ("python-requests/0.14 CPython/2.6 Linux/2.6-43-server", "Python Requests", "0"),
    ("J2ME/UCWEB7.0.3.45/139/7682", "UC Browser", "7"),
    (
        "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.4 (KHTML, like Gecko) Chrome/22.0.1104.222 YaBrowser/1.5.1104.222 Safari/537.4",
        "Yandex Browser",
        "1",
    ),
    (
        "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/40.0.2214.89 Vivaldi/1.0.83.38 Safari/537.36",
        "Vivaldi",
        "1",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/42.0.2311.135 Safari/537.36 Edge/12.9600",
        "Edge",
        "12",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_12_6) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/60.0.3112.78 Safari/537.36",
        "Chrome",
        "60",
    ),
    ("bingbot", "bingbot", None),
    (
        "Mozilla/5.0 (Linux; Android 5.0.1; SAMSUNG GT-I9506-ORANGE Build/LRX22C) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/2.1 Chrome/34.0.1847.76 Mobile Safari/537.36",
        "Samsung Internet",
        "2",
    ),
    (
        "[FBAN/FB4A;FBAV/3.4;FBBV/258875;FBDM/{density=0.75,width=240,height=320};FBLC/tr_TR;FBCR/o2 - de;FBPN/com.facebook.katana;FBDV/LG-E400;FBSV/2.3.6;]",
        "Facebook",
        "3",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_2) AppleWebKit/537.36 (KHTML, like Gecko) brave/0.7.11 Chrome/47.0.2526.110 Brave/0.36.5 Safari/537.36",
        "Brave",
        "0",
    ),
    ("curl/7.29.0", "curl", "7"),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_13_5) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/102 Version/11.1.1 Safari/605.1.15",
        "Chrome Mobile iOS",
        "102",
    ),
]
# (user agent, family, major[.minor]) from uap-core tests/test_os.yaml
OS_CASES = [
    (
        "Mozilla/5.0 (Linux; U; Android 2.2.2; en-gb; HTC Desire Build/FRG83G) AppleWebKit/533.1 (KHTML, like Gecko) Version/4.0 Mobile Safari/533.1",
        "Android",
        "2.2",
    ),
    (
        "Mozilla/5.0 (BB10; Touch) AppleWebKit/537.3+ (KHTML, like Gecko) Version/10.0.9.388 Mobile Safari/537.3+",
        "BlackBerry OS",
        "10.0",
    ),
    ("Mozilla/5.0 (Mobile; rv:37.0) Gecko/37.0 Firefox/37.0 KaiOS/1.0", "KaiOS", "1.0"),
    (
        "Mozilla/5.0 (iPad; U; CPU OS 3_2 like Mac OS X; en-us) AppleWebKit/531.21.10 (KHTML, like Gecko) Version/4.0.4 Mobile/7B367 Safari/531.21.10",
        "iOS",
        "3.2",
    ),
    ("python-requests/0.14 CPython/2.6 Linux/2.6-43-server", "Linux", "2.6"),
    (
        "Mozilla/5.0 (Macintosh; U; Intel Mac OS X 10_5_7; en-us) AppleWebKit/530.17 (KHTML, like Gecko) Version/4.0 Safari/530.17 Skyfire/2.0",
        "Mac OS X",
        "10.5",
    ),
    (
        "Mozilla/5.0 (SymbianOS/9.4; U; Series60/5.0 Nokia5800d-1/21.0.025; Profile/MIDP-2.1 Configuration/CLDC-1.1 ) AppleWebKit/413 (KHTML, like Gecko) Safari/413",
        "Symbian OS",
        "9.4",
    ),
    (
        "Mozilla/5.0 (X11; U; Linux x86_64; en-US; rv:1.9.2.12) Gecko/20101027 Ubuntu/10.04 (lucid) Firefox/3.6.12",
        "Ubuntu",
        "10.04",
    ),
    ("ICE Browser/5.05 (Java 1.4.0; Windows 2000 5.0 x86)", "Windows", "2000"),
    (
        "Mozilla/4.0 (compatible; MSIE 7.0; Windows Phone OS 7.0; Trident/3.1; IEMobile/7.0; SAMSUNG; SGH-i917)",
        "Windows Phone",
        "7.0",
    ),
    (
        "ELinks/0.11.4 (textmode; FreeBSD 7.0-RELEASE-p4 i386; 80x24-2)",
        "FreeBSD",
        "7.0",
    ),
    ("TestApp-tvOS/1.0-1", "tvOS", "1.0"),
    (
        "Mozilla/5.0 (X11; Windows aarch64 10718.88.2) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/68.0.3440.118 Safari/537.36 CitrixChromeApp",
        "Chrome OS",
        "10718.88",
    ),
]

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1"
)
DEVICE_CASES = [
    (IPHONE, "mobile"),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
        "tablet",
    ),
    (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.6099.144 Mobile Safari/537.36",
        "mobile",
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Chrome/120.0.0.0 Safari/537.36",
        "tablet",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Chrome/120.0.0.0 Safari/537.36",
        "desktop",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.2 Safari/605.1.15",
        "desktop",
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "desktop",
    ),
    ("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)", "desktop"),
    (
        "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/538.1 (KHTML, like "
        "Gecko) Version/6.0 TV Safari/538.1",
        "other",
    ),
    ("Dalvik/2.1.0 (Linux; U; Android 13; SM-A536B Build/TP1A.220624.014)", "mobile"),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot"),
    ("ELB-HealthChecker/2.0", "bot"),
    ("FeedBurner/1.0 (http://www.FeedBurner.com)", "bot"),
    ("curl/8.5.0", "other"),
    ("python-requests/2.31.0", "other"),
    ("", "other"),
    (None, "other"),
]


def test_the_native_accelerator_is_used() -> None:
    assert accelerated()


@pytest.mark.parametrize(("ua", "family", "major"), BROWSER_CASES)
def test_browser_family_and_major(ua: str, family: str, major: str | None) -> None:
    row = parse_agents(pl.Series([ua])).row(0, named=True)
    assert (row["browser"], row["major"]) == (family, major)


@pytest.mark.parametrize(("ua", "family", "version"), OS_CASES)
def test_os_family_and_version(ua: str, family: str, version: str) -> None:
    row = parse_agents(pl.Series([ua])).row(0, named=True)
    assert (row["os"], row["version"]) == (family, version)


@pytest.mark.parametrize(("ua", "device"), DEVICE_CASES)
def test_device_type(ua: str | None, device: str) -> None:
    got = parse_agents(pl.Series([ua], dtype=pl.String))
    assert got.item(0, "device") == device


def test_each_distinct_agent_once_and_missing_ones_are_other() -> None:
    uas = pl.Series([IPHONE, None, IPHONE, "", None, "curl/8.5.0"], dtype=pl.String)
    got = parse_agents(uas)
    assert got.get_column("http_user_agent").to_list() == [
        IPHONE,
        None,
        "",
        "curl/8.5.0",
    ]
    assert got.row(1) == (None, "unknown", "Other", None, "Other", None, "other")
    assert got.null_count().select("browser", "os", "device").row(0) == (0, 0, 0)
    assert set(got.get_column("device")) <= set(DEVICES)


def _tables(summary: pplog.Summary) -> dict[str, pl.DataFrame]:
    return {n: summary.extra[n] for n in ("browsers", "operating_systems", "devices")}


@pytest.mark.parametrize(
    "log",
    [
        SAMPLE_LOGS / "elb-access.log",
        SAMPLE_LOGS / "main-access.log",
        CORPORA / "elastic-examples" / "apache_logs",
    ],
    ids=["elb", "main", "apache"],
)
def test_every_table_adds_up_to_the_requests_that_are_not_health_checks(
    log: Path,
) -> None:
    summary = pplog.summarize(log, top=0)
    ov = summary.overview_dict()
    visitors = ov["requests"] - ov["health_checks"]
    agents = summary.extra["agents"]
    for name, table in _tables(summary).items():
        assert table.get_column("requests").sum() == visitors, name
        assert table.get_column("bytes").sum() <= ov["bytes"], name
        assert table.get_column("visitors").max() <= ov["clients"], name
        assert table.get_column("requests").is_sorted(descending=True), name
    # the devices' bot row is the bot classes, health checks left out
    devices = dict(_tables(summary)["devices"].select("device", "requests").rows())
    bots = agents.filter(pl.col("agent_class").is_in(BOT_CLASSES))
    assert (
        devices.get("bot", 0) == bots.get_column("requests").sum() - ov["health_checks"]
    )


def test_health_checks_are_left_out_and_a_forged_one_stays_a_visitor() -> None:
    """ELB-HealthChecker from the balancer's private nodes is not counted; the
    same user agent from a public address is a client (and a `bot` device)."""
    summary = pplog.summarize(SAMPLE_LOGS / "elb-access.log", top=0)
    ov = summary.overview_dict()
    assert ov["health_checks"] > 0
    browsers = summary.extra["browsers"]
    checker = browsers.filter(pl.col("browser") == "ELB-HealthChecker")
    forged = summary.clients.filter(
        pl.col("top_user_agent").str.starts_with("ELB-HealthChecker")
    )
    assert checker.get_column("requests").sum() == forged.get_column("requests").sum()


def test_top_cuts_browsers_and_systems_but_not_devices() -> None:
    whole = pplog.summarize(SAMPLE_LOGS / "elb-access.log", top=0)
    cut = pplog.summarize(SAMPLE_LOGS / "elb-access.log", top=2)
    for name in ("browsers", "operating_systems"):
        assert cut.extra[name].equals(whole.extra[name].head(2))
    assert cut.extra["devices"].equals(whole.extra["devices"])
    assert whole.extra["devices"].height > 2


def test_json_csv_and_terminal_have_the_tables(tmp_path: Path) -> None:
    runner = CliRunner()
    log = str(SAMPLE_LOGS / "elb-access.log")
    doc = json.loads(
        runner.invoke(cli, ["summarize", log, "--to", "json", "--top", "0"]).stdout
    )
    assert [set(doc["browsers"][0]), set(doc["devices"][0])] == [
        {"browser", "major", "requests", "visitors", "bytes"},
        {"device", "requests", "visitors", "bytes"},
    ]
    assert set(doc["operating_systems"][0]) == {
        "os",
        "version",
        "requests",
        "visitors",
        "bytes",
    }
    out = tmp_path / "csv"
    result = runner.invoke(cli, ["summarize", log, "--to", "csv", "-o", str(out)])
    assert result.exit_code == 0, result.output
    csv = pl.read_csv(out / "operating_systems.csv")
    assert csv.height == len(doc["operating_systems"])
    text = runner.invoke(cli, ["summarize", log, "--width", "120"]).stdout
    assert "Browsers (top 5)" in text
    assert "Operating systems (top 5)" in text
    assert re.search(r"\nDevices *\n", text)


def test_terminal_output_of_agent_text_stays_inert(tmp_path: Path) -> None:
    """A family ua-parser copies from the user agent, holding an ESC and rich
    markup, reaches the terminal as escaped plain text in the browsers table."""
    ua = "\\x1B[31mEVIL[bold]x[/bold]/1.0 CFNetwork/1.0 Darwin/1"
    line = (
        f'203.0.113.9 - - [10/Oct/2025:13:55:36 +0000] "GET / HTTP/1.1" 200 5 "-" '
        f'"{ua}"\n'
    )
    log = tmp_path / "a.log"
    log.write_text(line)
    summary = pplog.summarize(log)
    family = summary.extra["browsers"].item(0, "browser")
    assert family == "\x1b[31mEVIL[bold]x[/bold]"  # the real ESC, as decoded
    text = CliRunner().invoke(cli, ["summarize", str(log), "--width", "200"]).stdout
    assert "\x1b" not in text
    # the browsers row: the family alone, escaped, markup as text
    assert "│ \\x1B[31mEVIL[bold]x[/bold] │ 1 " in text


def test_without_the_native_module_the_python_resolver_gives_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pplog.enrich import useragents

    uas = pl.Series([ua for ua, _, _ in BROWSER_CASES[:8]] + [None, "curl/8.5.0"])
    fast = parse_agents(uas)
    monkeypatch.setitem(sys.modules, "ua_parser_rs", None)  # import fails
    useragents._built_parser.cache_clear()
    useragents._ANSWERED.known.clear()  # else the answers kept are given
    try:
        assert not accelerated()
        assert parse_agents(uas).equals(fast)
        assert len(useragents._ANSWERED.known) == uas.n_unique()
    finally:
        useragents._built_parser.cache_clear()
        useragents._ANSWERED.known.clear()


def test_the_browser_rules_are_built_where_user_agents_are_answered(
    tmp_path: Path,
) -> None:
    """ingest answers for its rollups' user agents and summarize for a log's;
    a summary of the dataset takes the rollups' answers and builds nothing."""
    import subprocess
    import sys

    code = (
        "import sys, pplog\n"
        "from pplog.enrich import useragents\n"
        "if sys.argv[3] == 'ingest':\n"
        "    pplog.ingest([sys.argv[1]], sys.argv[2], final=True, geoip=[])\n"
        "else:\n"
        "    pplog.summarize(sys.argv[2])\n"
        "print(useragents._built_parser.cache_info().currsize)\n"
        "pplog.summarize(sys.argv[1])\n"
        "print(useragents._built_parser.cache_info().currsize)\n"
    )
    log = SAMPLE_LOGS / "elb-access.log"
    built = []
    for step in ("ingest", "summarize"):
        done = subprocess.run(
            [sys.executable, "-c", code, str(log), str(tmp_path / "ds"), step],
            capture_output=True,
            text=True,
            check=True,
        )
        built.append(done.stdout.split())
    assert built == [["1", "1"], ["0", "1"]]


def test_stored_answers_are_taken_and_only_the_rest_parsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pplog.enrich import useragents

    uas = pl.Series([ua for ua, _, _ in BROWSER_CASES[:6]] + [None, "curl/8.5.0"])
    every = parse_agents(uas)
    stored = useragents.stamped(every.head(5))
    known = useragents.stored_answers(stored)
    assert known is not None
    asked: list[list[str | None]] = []
    real = useragents._families

    def families(user_agents: list[str | None], stop: object = None) -> object:
        asked.append(user_agents)
        return real(user_agents, stop)  # type: ignore[arg-type]

    monkeypatch.setattr(useragents, "_families", families)
    got = parse_agents(uas, known=known)
    assert asked == [every.get_column("http_user_agent").to_list()[5:]]
    key = "http_user_agent"
    assert got.sort(key, nulls_last=True).equals(every.sort(key, nulls_last=True))
    # in the order of the user agents asked about, as without stored answers
    later = useragents.stored_answers(useragents.stamped(every.tail(4)))
    assert parse_agents(uas, known=later).equals(every)
    asked.clear()
    assert parse_agents(uas.head(5), known=known).height == 5
    assert asked == []  # every one stored: nothing parsed
    # answers stamped by something else are not taken
    assert (
        useragents.stored_answers(
            stored.with_columns(pl.lit("x").alias(useragents.STAMP))
        )
        is None
    )


def test_the_stamp_names_what_decides_the_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from importlib import metadata

    from pplog.enrich import useragents

    for module, dist in useragents._DECIDING.items():
        assert useragents._version(module, dist) == metadata.version(dist)
    mine = useragents.answers_stamp()
    assert mine == useragents.answers_stamp()
    useragents.answers_stamp.cache_clear()
    real = useragents._version
    monkeypatch.setattr(
        useragents,
        "_version",
        lambda module, dist: (
            "0.0" if dist == "ua-parser-builtins" else real(module, dist)
        ),
    )
    try:
        assert useragents.answers_stamp() != mine
    finally:
        useragents.answers_stamp.cache_clear()
    # a module without a file to read (a frozen build) stands as pplog's version
    monkeypatch.setattr(sys.modules["pplog.enrich.agents"], "__file__", None)
    assert useragents._text_of("pplog.enrich.agents") == (
        f"pplog={metadata.version('pplog')}".encode()
    )


# `prepare` builds ua-parser's rules in a thread while rows are mapped. A
# process that ends meanwhile (a bad input, Ctrl-C) must wait for the build:
# a thread stopped at exit inside ua-parser-rs aborts the whole process
# ("FATAL: exception not rethrown", exit 134) after the clean error line.
_EXIT_WHILE_BUILDING = """
import functools, pathlib, sys, time
import pplog.enrich.useragents as agents

@functools.cache
def slow():
    time.sleep(0.5)
    pathlib.Path(sys.argv[1]).write_text("built")
    return lambda ua: (None, None)

agents._built_parser = slow
agents.prepare()
sys.exit(1)
"""


def test_a_process_ending_while_the_rules_build_waits_for_them(
    tmp_path: Path,
) -> None:
    import subprocess

    marker = tmp_path / "built"
    result = subprocess.run(
        [sys.executable, "-c", _EXIT_WHILE_BUILDING, str(marker)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr.decode()
    assert marker.read_text() == "built"


@pytest.mark.parametrize(
    "log",
    [SAMPLE_LOGS / "elb-access.log", SAMPLE_LOGS / "main-access.log"],
    ids=["elb", "main"],
)
@pytest.mark.parametrize("approx", [False, True], ids=["exact", "approx"])
def test_a_paths_clients_leave_out_the_health_checkers(log: Path, approx: bool) -> None:
    """`paths.clients` counts the clients of each path as `clients.paths`
    and the overview do: the balancer's nodes checking `/health` are not
    its clients (main: 37 checks from 3 private nodes, 0 clients), and a
    forged checker from a public address still is. The oracle: each path's
    distinct addresses over the rows, leaving out ELB-HealthChecker from
    private addresses."""
    rows = pplog.read_log(log)
    private = pl.col("client_ip").map_elements(
        lambda a: ipaddress.ip_address(a).is_private, return_dtype=pl.Boolean
    )
    checks = pl.col("http_user_agent").str.starts_with("ELB-HealthChecker") & (
        pl.col("client_ip").is_null() | private
    )
    want = dict(
        rows.filter(~checks.fill_null(value=False) & pl.col("client_ip").is_not_null())
        .group_by("path")
        .agg(pl.col("client_ip").n_unique())
        .rows()
    )
    summary = pplog.summarize(log, top=0, approx=approx)
    got = dict(summary.paths.select("path", "clients").rows())
    if approx:  # sketched: an estimate within a few percent
        for path, n in got.items():
            assert abs(n - want.get(path, 0)) <= max(2, want.get(path, 0) // 20), path
    else:
        assert {p: got[p] for p in got if got[p]} == want
    assert summary.overview_dict()["health_checks"] == rows.filter(checks).height > 0
    if log.name == "main-access.log":
        assert got["/health"] == 0
