"""Browser, operating system and device type of user agents (ua-parser).

Browser and OS families and versions come from ua-parser's rules (the
ua-parser-builtins package, generated from uap-core's ``regexes.yaml``),
run by its native accelerator ua-parser-rs, or by ua-parser's pure-Python
resolver where the native module cannot be imported (about 250 times
slower: 1.2 ms a user agent instead of about 7 µs). Each distinct user agent is
parsed once, in Python; the rest is polars.

The device type (``desktop``, ``mobile``, ``tablet``, ``bot``, ``other``) is
decided here, because ua-parser names devices by model (``iPhone``,
``Samsung SM-T870``) but not their kind: ``bot`` when the agent class is a
bot class (so the bot row of the devices table is the bot classes of the
agents table), ``other`` for TVs, consoles and watches, ``tablet`` and
``mobile`` from the OS and the user agent's form-factor tokens, ``desktop``
for a browser (or unrecognised agent) on a desktop OS, ``other`` for the
rest (HTTP libraries, unknown programs).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import sys
import threading
from collections.abc import Callable
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl

from pplog._memo import KeptAnswers
from pplog.enrich.agents import AGENT_CLASS, BOT_CLASSES, agent_class
from pplog.errors import PplogError
from pplog.schema import HTTP_USER_AGENT

BROWSER, MAJOR = "browser", "major"
OS, OS_VERSION = "os", "version"
DEVICE = "device"
DEVICES = ("desktop", "mobile", "tablet", "bot", "other")
"""Every value `device` can take."""

OTHER = "Other"  # ua-parser's family for what no rule recognises

_DESKTOP_OS = (
    *("Windows", "Mac OS X", "Mac OS", "Linux", "Ubuntu", "Kubuntu", "Xubuntu"),
    *("Lubuntu", "Chrome OS", "Chromium OS", "Fedora", "Debian", "Red Hat"),
    *("CentOS", "SUSE", "openSUSE", "Mint", "Linux Mint", "Arch Linux", "Gentoo"),
    *("Slackware", "Mandriva", "FreeBSD", "OpenBSD", "NetBSD", "Solaris", "SunOS"),
    *("Haiku", "BeOS", "OS/2"),
)
_MOBILE_OS = (
    *("iOS", "Android", "Windows Phone", "Windows Mobile", "BlackBerry OS"),
    *("Symbian OS", "Symbian^3", "Symbian^3 Anna", "Symbian^3 Belle", "KaiOS"),
    *("Firefox OS", "Nokia Series 40", "Nokia Series 30 Plus", "Brew MP", "Bada"),
    *("Sailfish", "Ubuntu Touch", "HarmonyOS", "MeeGo", "Maemo"),
)
_OTHER_OS = (
    *("ATV OS X", "tvOS", "WatchOS", "FireHbbTV", "Chromecast Android"),
    *("Chromecast Fuchsia", "Chromecast Linux", "Chromecast SmartSpeaker"),
)
_TV_OR_CONSOLE = (
    r"(?i)smart-?tv|hbbtv|\bgoogletv|\bappletv|\bcrkey|\broku|playstation"
    r"|\bxbox|nintendo|web0s|netcast|\btizen[^;]*;? ?tv\b|\baft[bmst]\b"
)
_TABLET = (
    r"(?i)\bipad|\btablet|\bkindle|\bsilk/|playbook|\bnexus (?:7|9|10)\b"
    r"|\bsm-[tx]\d|\bgt-p\d|\blenovo tab|\bmediapad"
)
_MOBILE = r"(?i)mobi|iphone|ipod|android|phone|\bmidp|opera mini|blackberry"


_BUILDING = threading.Lock()


def prepare() -> None:
    """Build ua-parser's rules in a background thread (about 0.1 s).

    Called when rows are mapped, so that the rules are ready when the
    tables are finished: the thread runs while polars works on the rows
    with the GIL released. Errors are left for `parse_agents` to raise.
    """

    def build() -> None:
        # an error is raised again, in the caller's thread, when parsing
        with contextlib.suppress(PplogError):
            _parser()

    if _built_parser.cache_info().currsize == 0:
        # not a daemon: a process that ends meanwhile (an error, Ctrl-C) waits
        # for the build to finish (0.1 s) rather than stopping the thread inside
        # ua-parser-rs, which aborts the process ("exception not rethrown")
        threading.Thread(target=build, name="pplog-ua-parser").start()


def _parser() -> Callable[[str], tuple[Any, Any]]:
    """A function from a user agent to ua-parser's (user agent, OS) results."""
    with _BUILDING:  # built once, whichever thread asks first
        return _built_parser()


@cache
def _built_parser() -> Callable[[str], tuple[Any, Any]]:
    try:
        import ua_parser
        from ua_parser import Domain
    except ImportError as e:
        msg = (
            f"cannot import ua-parser ({e}); reinstall pplog's dependencies: "
            "pip install 'ua-parser[regex]>=1.0.2'"
        )
        raise PplogError(msg) from e
    try:
        import ua_parser_rs
    except ImportError:
        # ua_parser.basic compiles each rule on first use (lazy builtins)
        from ua_parser.basic import Resolver

        resolver = Resolver(ua_parser.load_lazy_builtins())
        wanted = Domain.USER_AGENT | Domain.OS

        def slow(ua: str) -> tuple[Any, Any]:
            result = resolver(ua, wanted)
            return result.user_agent, result.os

        return slow
    # the device rules are left out: they are the most, and pplog does not
    # use device models (ua_parser.regex.Resolver would build them)
    fields = ("regex", "family", "major", "minor", "patch", "patch_minor")
    agents, systems, _ = ua_parser.load_lazy_builtins()
    ua_rules = ua_parser_rs.UserAgentExtractor(
        tuple(getattr(m, f) for f in fields) for m in agents
    )
    os_rules = ua_parser_rs.OSExtractor(
        tuple(getattr(m, f) for f in fields) for m in systems
    )

    def fast(ua: str) -> tuple[Any, Any]:
        return ua_rules.extract(ua), os_rules.extract(ua)

    return fast


def accelerated() -> bool:
    """Whether ua-parser-rs, the native accelerator, parses the user agents."""
    try:
        import ua_parser_rs  # noqa: F401
    except ImportError:
        return False
    return True


class Stopped(Exception):  # noqa: N818 - not an error: the caller stopped
    """Raised by `parse_agents` when its `stop` event is set."""


def _families(
    user_agents: list[str | None], stop: threading.Event | None = None
) -> dict[str, list[str | None]]:
    """ua-parser's browser and OS family and version of each user agent.

    Answers are kept for the next calls of this process (`_ANSWERED`): a
    user agent met in an earlier batch of `ingest`, or an earlier summary,
    is not parsed again.
    """
    out: dict[str, list[str | None]] = {BROWSER: [], MAJOR: [], OS: [], OS_VERSION: []}
    for start in range(0, len(user_agents), _STEP):
        if stop is not None and stop.is_set():
            raise Stopped
        for row in _ANSWERED(user_agents[start : start + _STEP]):
            for name, value in zip(out, row, strict=True):
                out[name].append(value)
    return out


def _parsed(user_agents: list[str | None]) -> list[tuple[str | None, ...]]:
    """(browser, major, OS, OS version) of each user agent, by ua-parser."""
    parse = _parser()
    rows: list[tuple[str | None, ...]] = []
    for ua in user_agents:
        agent, system = parse(ua) if ua else (None, None)
        version = None
        if system and system.major:
            version = system.major
            if system.minor:
                version += "." + system.minor
        rows.append(
            (
                agent.family if agent else OTHER,
                agent.major if agent else None,
                system.family if system else OTHER,
                version,
            )
        )
    return rows


# `stop` is checked every `_STEP` user agents (ua-parser's Python resolver,
# where the native one is missing, takes about 1 ms an agent); a process
# keeps the answers for up to `_KEPT` distinct user agents (about 400 bytes
# each: 8 MB at most).
_STEP = 256
_KEPT = 20_000
_ANSWERED: KeptAnswers[str | None, tuple[str | None, ...]] = KeptAnswers(_parsed, _KEPT)


def device() -> pl.Expr:
    """Device type from `agent_class`, `os` and the user agent (one of `DEVICES`)."""
    ua = pl.col(HTTP_USER_AGENT).fill_null("")
    cls, os = pl.col(AGENT_CLASS), pl.col(OS)
    looks_browser = cls.is_in(["browser", "unknown"])
    return (
        pl.when(cls.is_in(BOT_CLASSES))
        .then(pl.lit("bot"))
        .when(os.is_in(_OTHER_OS) | ua.str.contains(_TV_OR_CONSOLE))
        .then(pl.lit("other"))
        .when(
            (os == "BlackBerry Tablet OS")
            | ua.str.contains(_TABLET)
            | ((os == "Android") & (cls == "browser") & ~ua.str.contains("Mobile"))
        )
        .then(pl.lit("tablet"))
        .when(os.is_in(_MOBILE_OS) | ua.str.contains(_MOBILE))
        .then(pl.lit("mobile"))
        .when(looks_browser & os.is_in(_DESKTOP_OS))
        .then(pl.lit("desktop"))
        .otherwise(pl.lit("other"))
        .alias(DEVICE)
    )


def parse_agents(
    user_agents: pl.Series,
    classes: pl.DataFrame | None = None,
    *,
    known: pl.DataFrame | None = None,
    stop: threading.Event | None = None,
) -> pl.DataFrame:
    """Each distinct user agent once, with what it says about the client.

    Parameters
    ----------
    user_agents
        User-Agent strings, repeated or not; nulls allowed.
    classes
        ``http_user_agent`` and its ``agent_class`` for (at least) these
        user agents, when the caller has classified them already; else
        they are classified here.
    known
        Answers given before (`stored_answers`): the user agents found
        there are taken from it, and only the others are parsed (none
        when every one is there: ua-parser's rules are then not built).
    stop
        Checked every 256 agents: once set, `Stopped` is raised (a caller
        that no longer wants the answer ends the work early).

    Returns
    -------
    polars.DataFrame
        One row per distinct value: ``http_user_agent``, ``agent_class``,
        ``browser`` and ``major`` (its major version), ``os`` and
        ``version`` (major[.minor]), and ``device`` (one of `DEVICES`). A
        family ua-parser does not recognise, or a missing user agent, is
        ``"Other"`` with a null version.

    Examples
    --------
    >>> import polars as pl
    >>> uas = pl.Series(
    ...     [
    ...         "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) "
    ...         "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 "
    ...         "Mobile/15E148 Safari/604.1",
    ...         "curl/8.5.0",
    ...     ]
    ... )
    >>> parsed = parse_agents(uas)
    >>> parsed.select("browser", "major", "os", "version", "device").rows()[0]
    ('Mobile Safari', '17', 'iOS', '17.2', 'mobile')
    >>> parsed.select("browser", "major", "os", "version", "device").rows()[1]
    ('curl', '8', 'Other', None, 'other')
    """
    distinct = user_agents.cast(pl.String).unique(maintain_order=True)
    if known is not None:
        frame = pl.DataFrame({HTTP_USER_AGENT: distinct})
        found = frame.join(known.select(ANSWERS), on=HTTP_USER_AGENT, nulls_equal=True)
        if found.height == distinct.len():
            return found
        missing = distinct.filter(
            ~distinct.is_in(found.get_column(HTTP_USER_AGENT), nulls_equal=True)
        )
        parsed = parse_agents(missing, classes, stop=stop)
        both = pl.concat([found, parsed], how="vertical_relaxed")
        # in the order of `user_agents`, as without `known`
        return frame.join(
            both,
            on=HTTP_USER_AGENT,
            how="left",
            nulls_equal=True,
            maintain_order="left",
        )
    frame = pl.DataFrame({HTTP_USER_AGENT: distinct})
    parsed = pl.DataFrame(
        _families(distinct.to_list(), stop),
        schema=dict.fromkeys((BROWSER, MAJOR, OS, OS_VERSION), pl.String),
    )
    both = pl.concat([frame, parsed], how="horizontal")
    if classes is None:
        both = both.with_columns(agent_class(HTTP_USER_AGENT))
    else:
        both = both.join(
            classes.select(HTTP_USER_AGENT, AGENT_CLASS),
            on=HTTP_USER_AGENT,
            how="left",
            nulls_equal=True,
            maintain_order="left",
        )
    return both.with_columns(device()).select(ANSWERS)


ANSWERS = (HTTP_USER_AGENT, AGENT_CLASS, BROWSER, MAJOR, OS, OS_VERSION, DEVICE)
"""The columns of `parse_agents`' answers."""
STAMP = "answered_by"
"""The column of stored answers naming what gave them (`answers_stamp`)."""


def stamped(answers: pl.DataFrame) -> pl.DataFrame:
    """`parse_agents`' answers with the stamp of this process's rules.

    Stored with a dataset's rollups, so that summarizing the dataset
    neither parses its user agents again nor builds ua-parser's rules.
    """
    return answers.select(ANSWERS).with_columns(pl.lit(answers_stamp()).alias(STAMP))


def stored_answers(frame: pl.DataFrame | None) -> pl.DataFrame | None:
    """The answers of `frame` (from `stamped`) this process would also give.

    Answers stamped otherwise (another ua-parser, other rules, another
    pplog classifier) are left out; None when none is left.
    """
    if frame is None or STAMP not in frame.columns:
        return None
    ours = frame.filter(pl.col(STAMP) == answers_stamp())
    if not ours.height:
        return None
    return ours.select(ANSWERS).unique(HTTP_USER_AGENT, keep="first")


# The packages whose code or rules decide the answers, by their distribution.
_DECIDING = {
    "ua_parser": "ua-parser",
    "ua_parser_builtins": "ua-parser-builtins",
    "ua_parser_rs": "ua-parser-rs",
    "crawleruseragents": "crawler-user-agents",
}
# pplog's own part of the answers: the classes and the device types.
_OWN_RULES = ("pplog.enrich.agents", "pplog.enrich._crawlers", __name__)


@cache
def answers_stamp() -> str:
    """What decides this process's answers, as one short digest.

    The installed versions of ua-parser, its rules (ua-parser-builtins), its
    accelerator and crawler-user-agents, and the text of pplog's own
    classifier modules: any change to one of them changes the stamp, so
    answers stored by another version are parsed again rather than trusted.
    Costs about a millisecond (no package is imported).
    """
    digest = hashlib.sha256()
    for name in _OWN_RULES:  # imported with this module
        digest.update(_text_of(name))
    for module, dist in _DECIDING.items():
        digest.update(f"{dist}={_version(module, dist)};".encode())
    return digest.hexdigest()[:24]


def _text_of(module: str) -> bytes:
    """The file `module` was loaded from (source or bytecode), or, where
    there is none to read (a frozen build), pplog's version."""
    try:
        return Path(sys.modules[module].__file__ or "").read_bytes()
    except OSError:
        return f"pplog={_version('pplog', 'pplog')}".encode()


def _version(module: str, dist: str) -> str:
    """`dist`'s installed version: from the dist-info next to `module`, else
    from the package metadata (slower: tens of milliseconds)."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        return "absent"
    for where in spec.submodule_search_locations or ():
        found = list(Path(where).parent.glob(f"{dist.replace('-', '_')}-*.dist-info"))
        if len(found) == 1:
            return found[0].name.removesuffix(".dist-info").split("-", 1)[1]
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"
