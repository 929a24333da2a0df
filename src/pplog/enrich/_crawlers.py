"""The crawler-user-agents list as one regex per pplog agent class.

crawler-user-agents (https://github.com/monperrus/crawler-user-agents) is a
maintained list of about 1,500 bot patterns, each with tags saying what kind
of bot it is. Its tags map to pplog's classes; an entry with several tags
takes the first class in `RANK` (``search-engine`` plus ``ai-crawler`` is an
``ai_crawler``). The patterns of each class are joined into one alternation,
so a user agent is tested against the whole list with a few polars
``str.contains`` calls, and a user agent that several entries name gets the
first class in `RANK` among them (``LinkedInBot ... Apache-HttpClient`` is
LinkedIn's previewer, not an HTTP library).

The list is matched case-sensitively, as the package's own ``is_crawler``
does by default. A newer release of the package is a newer list; nothing
here needs to change for it.
"""

from __future__ import annotations

import re
import warnings
from functools import cache
from typing import Any

import polars as pl

from pplog.errors import PplogError, PplogWarning

TAG_CLASSES = {
    "scanner": "scanner",
    "monitoring": "monitoring",
    "ai-crawler": "ai_crawler",
    "http-library": "tool",
}
"""Tags with a class of their own; every other tag (``search-engine``,
``seo``, ``social-preview``, ``feed-reader``, ``advertising``, ``archiver``,
``academic``, ``browser-automation``, and any tag a later release adds) is a
``search_bot``: the list names it a crawler."""

RANK = ("scanner", "monitoring", "ai_crawler", "search_bot", "tool")
"""The class an entry (or a user agent named by several entries) gets: the
first of its classes in this order."""


def entry_class(tags: list[str]) -> str:
    """pplog's class for a list entry with these tags."""
    classes = {TAG_CLASSES.get(tag, "search_bot") for tag in tags} or {"search_bot"}
    return next(c for c in RANK if c in classes)


@cache
def entries() -> tuple[dict[str, Any], ...]:
    """The list's entries (``pattern``, ``tags``, ``instances``, ...), as shipped."""
    try:
        import crawleruseragents
    except (ImportError, OSError, ValueError) as e:
        msg = (
            f"cannot read the crawler-user-agents list ({e}); "
            "reinstall pplog's dependencies: pip install 'crawler-user-agents>=1.67'"
        )
        raise PplogError(msg) from e
    data: list[dict[str, Any]] = crawleruseragents.CRAWLER_USER_AGENTS_DATA
    return tuple(data)


@cache
def class_patterns() -> dict[str, str]:
    """One regex per class in `RANK` order: the class's patterns as one alternation.

    Each pattern is wrapped in a non-capturing group so that its own
    alternatives stay its own. A class with no entry is left out.
    """
    by_class: dict[str, list[str]] = {c: [] for c in RANK}
    for entry in entries():
        by_class[entry_class(list(entry.get("tags") or []))].append(entry["pattern"])
    # a release with a pattern polars' regex engine refuses (say, a
    # look-around) must not stop every summary: that entry is left out
    bad = [
        e["pattern"]
        for e in entries()
        if _SUSPECT.search(e["pattern"]) and not _compiles(e["pattern"])
    ]
    if bad:
        warnings.warn(
            PplogWarning(
                f"the crawler-user-agents list has {len(bad)} pattern(s) pplog "
                f"cannot use, left out (the first: `{bad[0]}`); install "
                "another release of the list if bots go unnamed"
            ),
            stacklevel=2,
        )
    return {
        c: "|".join(f"(?:{p})" for p in ps if p not in bad)
        for c, ps in by_class.items()
        if any(p not in bad for p in ps)
    }


# What Python's and JavaScript's regexes have and polars' (Rust's `regex`)
# has not: look-around, back-references, atomic groups, conditionals. Only
# patterns holding one are compiled here (a compile of every class costs
# each run 0.04 s); the shipped list has none (tests/test_agents.py).
_SUSPECT = re.compile(r"\(\?[=!]|\(\?<[=!]|\(\?P=|\(\?>|\(\?\(|\\[1-9]")


def _compiles(pattern: str) -> bool:
    """Whether polars' regex engine accepts `pattern`."""
    try:
        pl.select(pl.lit("").str.contains(pattern))
    except pl.exceptions.PolarsError:
        return False
    return True
