"""Classify User-Agent strings into agent classes (browser, bot kinds, tools).

Every rule is a vectorised polars string regex (Rust ``regex`` syntax), tried
in a fixed order by one ``pl.when`` chain; nothing runs in Python per row.
Bots are named by the crawler-user-agents list first (`pplog.enrich._crawlers`:
its tags give the class); pplog's own patterns decide only where the list is
silent, and sharpen a list match into the classes the list's tags do not
single out. The order in which the rules are tried:

1. ``unknown`` for a missing User-Agent (null, ``""``, ``"-"``).
2. ``scanner`` for exploit payloads sent as the User-Agent (Log4Shell
   ``${jndi:``, Shellshock ``() {``), whatever name they carry.
3. The list's ``scanner``, ``monitoring`` and ``ai-crawler`` entries.
4. pplog's ``scanner`` (mass scanners and attack tools), ``monitoring``
   (load-balancer health checks, orchestrator probes, uptime services) and
   ``ai_crawler`` (training-data crawlers and AI assistants' fetchers)
   patterns: for user agents the list names only as a crawler or an HTTP
   library, or does not name.
5. Every other list entry: ``tool`` for its ``http-library`` entries,
   ``search_bot`` for the rest (search engines, SEO, link previews, feed
   readers, archivers, headless browsers...). A bot the list names is never
   turned into a ``tool`` or a ``browser`` by pplog's patterns.
6. Where the list is silent: pplog's named search bots, then ``tool``
   (HTTP libraries, command-line clients, configuration-management agents,
   the HTTP stacks of native mobile apps), then ``search_bot`` again for any
   other self-declared crawler (a ``bot``/``crawl``/``spider`` token or a
   ``+http://`` contact URL).
7. ``browser``: ``Mozilla/5.0`` with a real engine token, or ``Opera/``.
8. ``unknown``: everything else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from pplog._memo import KeptAnswers
from pplog.enrich._crawlers import class_patterns
from pplog.schema import HTTP_USER_AGENT

if TYPE_CHECKING:
    from collections.abc import Sequence

AGENT_CLASS = "agent_class"
IS_BOT = "is_bot"
IS_HEALTH_CHECK = "is_health_check"

AGENT_CLASSES = (
    "browser",
    "search_bot",
    "ai_crawler",
    "monitoring",
    "tool",
    "scanner",
    "unknown",
)
"""Every value `agent_class` can take.

browser
    A person's web browser: ``Mozilla/5.0`` with a real engine token
    (``AppleWebKit/``, ``Gecko/``, ``Trident/``, ``Chrome/``, ``Safari/``,
    ``Firefox/``), or legacy ``Opera/``. Anything can claim this, so it means
    "looks like a browser", not "is a person".
search_bot
    Search-engine and SEO crawlers (Googlebot, bingbot, AhrefsBot, ...), link
    previewers (facebookexternalhit, Twitterbot, Slackbot, ...), feed readers
    (FeedBurner, Feedbin), archivers, headless browsers the crawler list
    names (PhantomJS, HeadlessChrome, Puppeteer), and any other User-Agent
    that declares itself a crawler without being named elsewhere.
ai_crawler
    Crawlers that gather AI training data (GPTBot, ClaudeBot, CCBot, ...)
    and agents that fetch pages for an AI assistant (ChatGPT-User,
    Perplexity-User, ...).
monitoring
    Health checks, uptime and site monitors (ELB-HealthChecker, kube-probe,
    GoogleHC, Pingdom, Datadog, and the crawler list's ``monitoring``
    entries).
tool
    Non-browser HTTP clients: command-line tools (curl, Wget, HTTPie),
    language libraries (python-requests, Go-http-client, okhttp, Java, ...:
    the crawler list's ``http-library`` entries and pplog's own patterns),
    configuration-management agents (Chef Client), and native mobile app
    stacks (Dalvik, CFNetwork, Dart). Usually a program acting for its
    owner, so not a bot.
scanner
    Internet-wide scanners and attack tools (zgrab, masscan, Nmap,
    CensysInspect, nuclei, sqlmap, ...) and exploit payloads in the
    User-Agent (``${jndi:...}``, Shellshock).
unknown
    Missing User-Agent, or one that matches no rule (a custom app name such
    as ``ExampleApp/5.2 (iPhone; iOS 18.1)``, ``Mozilla/4.0 (compatible;
    MSIE 6.0 ...)``).
"""

BOT_CLASSES = ("search_bot", "ai_crawler", "monitoring", "scanner")
"""Classes `is_bot` counts as bots (what ``--exclude-bots`` drops).

``tool`` is left out: curl, scripts and mobile apps are usually the site's
own users or integrations, not crawlers.
"""

# Missing values as nginx writes them; `parse` turns "-" into null already,
# but the expression also has to work on raw strings.
_MISSING = ("", "-")

# Exploit payloads: Log4Shell incl. common obfuscations (`${${lower:j}ndi:`,
# `${::-j}`), and Shellshock (CVE-2014-6271) function definitions.
_PAYLOAD = r"\$\{(?:jndi|\$\{|lower:|upper:|env:|::-)|\(\)\s*\{"
_SCANNER = (
    "(?i)"
    + _PAYLOAD
    + r"|zgrab|masscan|\bnmap\b|censysinspect|\bexpanse\b|\bnuclei\b|sqlmap"
    r"|nikto|\bl9(?:explore|tcpid|scan)|wpscan|gobuster|dirbuster|\bffuf\b"
    r"|fuzz faster u fool|\bwfuzz|acunetix|nessus|openvas|netsparker"
    r"|internetmeasurement|modatscanner|netcraftsurveyagent|\bodin;"
)

# `health.?check` covers ELB-HealthChecker, Amazon-Route53-Health-Check-
# Service, Consul Health Check and the generic "HealthCheck".
_MONITORING = (
    r"(?i)health.?check|health.?probe|kube-probe|\bgooglehc/"
    r"|googlestackdrivermonitoring|pingdom|uptimerobot|statuscake|datadog"
    r"|newrelicpinger|site24x7|nagios|check_http|monitoring-plugins|zabbix"
    r"|blackbox.?exporter|\bprometheus/|uptime.?kuma|better.?uptime"
    r"|hetrixtools|freshping|updown\.io|checkly|azure traffic manager"
)

# FacebookBot (Meta's speech/AI training crawler) is here; facebookexternalhit
# (the link previewer) is a search_bot. Google-Extended and Applebot-Extended
# are robots.txt tokens rather than User-Agents, matched in case they appear.
_AI_CRAWLER = (
    r"(?i)gptbot|chatgpt-user|oai-searchbot|claudebot|claude-web|claude-user"
    r"|claude-searchbot|anthropic-ai|\bccbot|perplexitybot|perplexity-user"
    r"|google-extended|google-cloudvertexbot|gemini-deep-research|bytespider"
    r"|amazonbot|applebot-extended|cohere-ai|cohere-training-data-crawler"
    r"|diffbot|meta-externalagent|meta-externalfetcher|facebookbot|youbot"
    r"|timpibot|duckassistbot|mistralai-user|\bai2bot|img2dataset|omgili"
    r"|webzio-extended|imagesiftbot|kangaroo bot"
)

_SEARCH_BOT = (
    r"(?i)googlebot|googleother|google-inspectiontool|adsbot-google"
    r"|mediapartners-google|storebot-google|feedfetcher-google|bingbot"
    r"|bingpreview|msnbot|adidxbot|yandex\w*bot|yandex\.com/bots|baiduspider"
    r"|duckduckbot|duckduckgo-favicons-bot|applebot|slurp|sogou|seznambot"
    r"|exabot|facebookexternalhit|facebookcatalog|twitterbot|linkedinbot"
    r"|slackbot|slack-imgproxy|discordbot|telegrambot|whatsapp/|redditbot"
    r"|pinterestbot|embedly|ahrefsbot|ahrefssiteaudit|semrushbot|mj12bot"
    r"|dotbot|petalbot|qwantbot|coccocbot|mojeekbot|\byeti/|ia_archiver"
    r"|archive\.org_bot|blexbot|dataforseobot|serpstatbot|barkrowler"
)

# Dalvik, CFNetwork, Dart, Alamofire and okhttp are the HTTP stacks of native
# mobile apps: real people, but no browser, so `tool` rather than `browser`.
# Short names carry their "/" (`php/`, `curl/`) so that a crawler's contact
# URL such as `+http://example.com/bot.php` does not make it a tool.
_TOOL = (
    r"(?i)\bcurl/|libcurl|\bwget/|python-requests|python-urllib|\bpython/"
    r"|python-httpx|\bhttpx/|aiohttp|go-http-client|okhttp|\bjava/"
    r"|apache-httpclient|commons-httpclient|libwww-perl|\blwp::"
    r"|postmanruntime|insomnia/|\baxios/|node-fetch|\bundici|\bnode\.js"
    r"|\bdeno/|\bbun/|^ruby\b|\bruby/|faraday|\bphp/|guzzlehttp|httpie"
    r"|powershell|winhttp|reqwest|\bhyper/|dalvik|cfnetwork|\bdart/"
    r"|alamofire|scrapy|headlesschrome|phantomjs"
    r"|\bchef client/|\bohai-\d|\bruby-\d|\bpuppet/|ansible-httpget"
)

# Any other self-declared crawler. Browsers never carry these tokens except
# a few phone models named "... bot" (Cubot), excluded by _NOT_BOT.
_GENERIC_BOT = r"(?i)bot\b|\bbot|crawl|spider|scrape|\+https?://"
_NOT_BOT = r"(?i)\bcubot\b"

_BROWSER = (
    r"^Mozilla/5\.0 .*(?:AppleWebKit/|Gecko/|Trident/|Chrome/|Safari/|Firefox/)"
    r"|^Opera/"
)


def _matches(ua: pl.Expr, pattern: str) -> pl.Expr:
    return ua.str.contains(pattern)


def agent_class(column: str = HTTP_USER_AGENT) -> pl.Expr:
    """Class of the client that sent each request, from its User-Agent.

    The first matching rule wins; the order is in the module docstring.
    See `AGENT_CLASSES` for what each class means.

    Parameters
    ----------
    column
        Name of the String column holding the User-Agent.

    Returns
    -------
    polars.Expr
        A String expression named ``agent_class``, always one of
        `AGENT_CLASSES` and never null (a null, ``""`` or ``"-"``
        User-Agent is ``"unknown"``).

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame(
    ...     {
    ...         "http_user_agent": [
    ...             "Mozilla/5.0 (compatible; Googlebot/2.1; "
    ...             "+http://www.google.com/bot.html)",
    ...             "ELB-HealthChecker/2.0",
    ...             None,
    ...         ]
    ...     }
    ... )
    >>> df.select(agent_class())
    shape: (3, 1)
    ┌─────────────┐
    │ agent_class │
    │ ---         │
    │ str         │
    ╞═════════════╡
    │ search_bot  │
    │ monitoring  │
    │ unknown     │
    └─────────────┘
    """
    ua = pl.col(column)
    listed = class_patterns()
    chain = (
        pl.when(ua.is_null() | ua.str.strip_chars().is_in(_MISSING))
        .then(pl.lit("unknown"))
        .when(_matches(ua, "(?i)" + _PAYLOAD))
        .then(pl.lit("scanner"))
    )
    rules = [(listed.get(c), c) for c in ("scanner", "monitoring", "ai_crawler")]
    rules += [(_SCANNER, "scanner"), (_MONITORING, "monitoring")]
    rules += [(_AI_CRAWLER, "ai_crawler")]
    rules += [(listed.get("search_bot"), "search_bot"), (listed.get("tool"), "tool")]
    rules += [(_SEARCH_BOT, "search_bot"), (_TOOL, "tool")]
    for pattern, name in rules:
        if pattern is not None:
            chain = chain.when(_matches(ua, pattern)).then(pl.lit(name))
    return (
        chain.when(_matches(ua, _GENERIC_BOT) & ~_matches(ua, _NOT_BOT))
        .then(pl.lit("search_bot"))
        .when(_matches(ua, _BROWSER))
        .then(pl.lit("browser"))
        .otherwise(pl.lit("unknown"))
        .alias(AGENT_CLASS)
    )


def agent_class_per_value(column: str = HTTP_USER_AGENT) -> pl.Expr:
    """`agent_class`, each distinct user agent classified once.

    The same column as `agent_class`, for frames of many requests, where the
    rules (hundreds of crawler patterns, compiled at each evaluation) are
    the column's cost: each batch's distinct user agents that the query has
    not met yet are classified together, and the answers kept for the
    batches after (up to `_KEPT` of them). One Python call per batch, never
    per row; elementwise, so it streams.
    """
    answers: KeptAnswers[str | None, str] = KeptAnswers(classify, _KEPT)

    def classes_of(user_agents: pl.Series) -> pl.Series:
        distinct = user_agents.unique().cast(pl.String)
        classes = pl.Series(answers(distinct.to_list()), dtype=pl.String)
        return user_agents.replace_strict(distinct, classes, return_dtype=pl.String)

    return (
        pl.col(column)
        .map_batches(classes_of, return_dtype=pl.String, is_elementwise=True)
        .alias(AGENT_CLASS)
    )


# distinct user agents whose class a query keeps (about 300 bytes each)
_KEPT = 100_000


def is_bot(column: str = HTTP_USER_AGENT) -> pl.Expr:
    """Whether each request came from a bot (a class in `BOT_CLASSES`).

    Search bots, AI crawlers, monitoring and scanners count; browsers,
    tools (curl, scripts, mobile app stacks) and unknown agents do not.

    Parameters
    ----------
    column
        Name of the String column holding the User-Agent.

    Returns
    -------
    polars.Expr
        A Boolean expression named ``is_bot``, never null.

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame(
    ...     {"http_user_agent": ["GPTBot/1.2", "curl/8.5.0", None]}
    ... )
    >>> df.select(is_bot())["is_bot"].to_list()
    [True, False, False]
    """
    cls = agent_class(column)
    bot = pl.lit(value=False)
    for name in BOT_CLASSES:
        bot = bot | (cls == name)
    return bot.alias(IS_BOT)


def is_health_check(column: str = HTTP_USER_AGENT) -> pl.Expr:
    """Whether each request is a health check or uptime probe (``monitoring``).

    Parameters
    ----------
    column
        Name of the String column holding the User-Agent.

    Returns
    -------
    polars.Expr
        A Boolean expression named ``is_health_check``, never null.

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame(
    ...     {"http_user_agent": ["kube-probe/1.29", "GoogleHC/1.0", "Wget/1.21"]}
    ... )
    >>> df.select(is_health_check())["is_health_check"].to_list()
    [True, True, False]
    """
    return (agent_class(column) == "monitoring").alias(IS_HEALTH_CHECK)


def classify(user_agents: Sequence[str | None]) -> list[str]:
    """Classes of a list of User-Agent strings (for notebooks and tests).

    Parameters
    ----------
    user_agents
        User-Agent strings; ``None`` is allowed and gives ``"unknown"``.

    Returns
    -------
    list of str
        One of `AGENT_CLASSES` per input, in input order.

    Examples
    --------
    >>> classify(["curl/8.5.0", "Mozilla/5.0 zgrab/0.x", ""])
    ['tool', 'scanner', 'unknown']
    """
    frame = pl.DataFrame({HTTP_USER_AGENT: pl.Series(user_agents, dtype=pl.String)})
    return frame.select(agent_class())[AGENT_CLASS].to_list()
