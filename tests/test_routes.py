"""Tests for pplog.enrich.routes: route templates and user route rules."""

from __future__ import annotations

import dataclasses
import doctest
import re
import string
from collections.abc import Sequence

import polars as pl
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from pplog.enrich import routes
from pplog.enrich.routes import (
    MAX_PATTERN_LENGTH,
    ROUTE,
    RouteRule,
    parse_rules,
    route_expr,
    route_table,
)
from pplog.errors import OptionError, PplogError

UUID = "550e8400-e29b-41d4-a716-446655440000"
SHA1 = "3f786850e387550fdab836ed7e6dc881de23001b"
SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
MD5 = "d41d8cd98f00b204e9800998ecf8427e"


def routes_of(
    paths: Sequence[str | None], rules: list[str] | tuple[RouteRule, ...] = ()
) -> list[str | None]:
    parsed = parse_rules(rules) if isinstance(rules, list) else rules
    frame = pl.DataFrame({"path": pl.Series(paths, dtype=pl.String)})
    routes: list[str | None] = frame.select(route_expr(rules=parsed))[ROUTE].to_list()
    return routes


def route_of(
    path: str | None, rules: list[str] | tuple[RouteRule, ...] = ()
) -> str | None:
    return routes_of([path], rules)[0]


# --- automatic templates ----------------------------------------------------

TEMPLATED = [
    # all-digit segments, anywhere, adjacent, with a trailing slash
    ("/api/users/12345", "/api/users/:id"),
    ("/users/0", "/users/:id"),
    ("/api/v1/orders/987/items/3", "/api/v1/orders/:id/items/:id"),
    ("/1/2/3", "/:id/:id/:id"),
    ("/archive/2024/01/15/", "/archive/:id/:id/:id/"),
    ("/users/42/", "/users/:id/"),
    ("//7//8", "//:id//:id"),
    # UUIDs, any case
    (f"/orders/{UUID}/items", "/orders/:id/items"),
    (f"/orders/{UUID.upper()}", "/orders/:id"),
    ("/o/550E8400-e29b-41D4-a716-446655440000", "/o/:id"),
    # hex hashes of 16+ digits (md5, sha1, sha256, 64-bit ids)
    (f"/blob/{SHA1}", "/blob/:id"),
    (f"/blob/{SHA256}/raw", "/blob/:id/raw"),
    (f"/avatar/{MD5}", "/avatar/:id"),
    (f"/avatar/{MD5.upper()}", "/avatar/:id"),
    ("/trace/0a1b2c3d4e5f6a7b", "/trace/:id"),
    ("/k/deadbeefdeadbeef", "/k/:id"),
    # tokens: 20+ of [A-Za-z0-9_-] with a digit
    ("/s/AbCdEfGhIjKlMnOpQrSt1", "/s/:id"),
    ("/invite/V1StGXR8_Z5jdHi6B-myT", "/invite/:id"),  # nanoid
    ("/e/01ARZ3NDEKTSV4RRFFQ69G5FAV", "/e/:id"),  # ULID
    ("/pay/pi_3MtwBwLkdIwHu7ix28a3tqPa", "/pay/:id"),  # Stripe-style
    ("/t/12345678901234567890", "/t/:id"),
    ("/t/2024-01-15_10-30-00_000", "/t/:id"),
    # an id followed by "." and a letter keeps the suffix
    ("/files/123.json", "/files/:id.json"),
    ("/api/users/42.xml", "/api/users/:id.xml"),
    (f"/files/{UUID}.json", "/files/:id.json"),
    (f"/avatars/{MD5}.png", "/avatars/:id.png"),
    ("/dl/123.tar.gz", "/dl/:id.tar.gz"),
    ("/a/123.json/456.png", "/a/:id.json/:id.png"),
    ("/1.json/2.json", "/:id.json/:id.json"),
    ("/img/0a1b2c3d4e5f6a7b.jpg", "/img/:id.jpg"),
    # the template only looks at segments: absolute-form targets too
    ("http://example.com/users/1", "http://example.com/users/:id"),
    # a placeholder in the input is not an id; the digits are
    ("/a/:id/1", "/a/:id/:id"),
    # a long slug with a digit is a token (documented; use a rule for it)
    ("/blog/top-10-python-tips-for-beginners", "/blog/:id"),
]


@pytest.mark.parametrize(("path", "expected"), TEMPLATED)
def test_template_replaces_id_like_segments(path: str, expected: str) -> None:
    assert route_of(path) == expected


UNCHANGED = [
    "/",
    "",
    "/about",
    "/api/v1/users",
    "/v2.1/search",
    "/page2",
    "/2fa",  # starts with digits but is a word: kept
    "/mp3/player",
    "/static/app.js",
    "/static/main.3f9a8b7c.css",  # hash inside a file name: not a whole segment
    "/v/1.2.3",  # versions: the suffix must start with a letter
    "/hosts/10.0.0.1",
    "/x/1.5x",
    "/a/123.",  # a dot with nothing after it
    "/a/123.5",
    "/a/123-456",  # short, with a separator
    "/a/12ab",
    "/watch/dQw4w9WgXcQ",  # 11-character id: too short for a token
    "/k/deadbeefdeadbee",  # 15 hex digits
    "/s/AbCdEfGhIjKlMnOpQrStU",  # long, but no digit
    "/blog/introduction-to-nginx-logging",
    "/.well-known/security.txt",
    "/.env",
    "/a/.123",
    "*",  # OPTIONS *
    "12345",  # text before the first "/" is not a segment
    "/users//",
    "/a/١٢٣",  # Arabic-Indic digits: only ASCII counts
    "/a/１２３",  # fullwidth digits
    "/café/crème",
]


@pytest.mark.parametrize("path", UNCHANGED)
def test_template_keeps_other_segments(path: str) -> None:
    assert route_of(path) == path


def test_null_path_gives_null_route() -> None:
    assert routes_of([None, "/u/1", None]) == [None, "/u/:id", None]
    assert routes_of([None], ["/u/*"]) == [None]


def test_route_expr_takes_a_column_name_or_an_expression() -> None:
    frame = pl.DataFrame({"target": ["/u/1"], "path": ["/other"]})
    by_name = frame.select(route_expr("target"))
    by_expr = frame.select(route_expr(pl.col("target").str.to_lowercase()))
    expected = pl.DataFrame({ROUTE: ["/u/:id"]})
    assert_frame_equal(by_name, expected)
    assert_frame_equal(by_expr, expected)
    assert_frame_equal(frame.select(route_expr()), pl.DataFrame({ROUTE: ["/other"]}))


def test_empty_frame() -> None:
    frame = pl.DataFrame({"path": pl.Series([], dtype=pl.String)})
    assert_frame_equal(
        frame.select(route_expr(rules=parse_rules(["/a/*"]))),
        pl.DataFrame({ROUTE: pl.Series([], dtype=pl.String)}),
    )


# --- hostile paths ------------------------------------------------------------

HOSTILE = [
    ("/\\x00/12", "/\\x00/:id"),  # nginx escapes stay text
    ("/a\\xC3\\xA9/99", "/a\\xC3\\xA9/:id"),
    ("/\x00/1", "/\x00/:id"),  # a real NUL, should one get through
    ("/\n/1\n", "/\n/1\n"),
    ("/\n/1", "/\n/:id"),
    ("/café/123", "/café/:id"),
    ("/😀/123.json", "/😀/:id.json"),
    ("/\u202e/1", "/\u202e/:id"),  # bidi override
    ("/a b/1 2/3", "/a b/1 2/:id"),
    ("/(.*)/[0-9]+/$1", "/(.*)/[0-9]+/$1"),  # regex syntax in a path is text
    ("/(.+)/1", "/(.+)/:id"),
    ("/${jndi:ldap://x}/1", "/${jndi:ldap://x}/:id"),
    ("/%2e%2e/%2F/123", "/%2e%2e/%2F/:id"),
    ("/..//../1", "/..//../:id"),
    ("////", "////"),
    ("/.a/.b", "/.a/.b"),
    ("/.json/1.JSON", "/.json/:id.JSON"),
]


@pytest.mark.parametrize(("path", "expected"), HOSTILE)
def test_hostile_paths(path: str, expected: str) -> None:
    assert route_of(path) == expected
    patterns = ["/(.+)/*", "/\\x00/**", "/${jndi:ldap:/**"]
    matched = [p for p in patterns if rule_oracle(p, path)]
    assert route_of(path, patterns) == (matched[0] if matched else expected)


def test_very_long_paths() -> None:
    digits = "/x/" + "9" * 100_000
    many = "/a" * 20_000 + "/1"
    words = "/" + "word/" * 20_000
    token = "/t/" + "aB3" * 30_000
    assert routes_of([digits, many, words, token]) == [
        "/x/:id",
        "/a" * 20_000 + "/:id",
        words,
        "/t/:id",
    ]


def test_both_engines_agree() -> None:
    paths = [p for p, _ in TEMPLATED + HOSTILE] + UNCHANGED + [None]
    lf = pl.LazyFrame({"path": pl.Series(paths * 50, dtype=pl.String)})
    query = lf.select(route_expr(rules=parse_rules(["/users/*", "/static/**"])))
    assert_frame_equal(
        query.collect(engine="streaming"), query.collect(engine="in-memory")
    )


# --- user rules ---------------------------------------------------------------


def test_single_star_matches_exactly_one_non_empty_segment() -> None:
    rules = ["/users/*"]
    assert route_of("/users/42", rules) == "/users/*"
    assert route_of("/users/alice", rules) == "/users/*"
    assert route_of("/users/a.b", rules) == "/users/*"
    # not zero segments, not two, and no implicit trailing slash
    assert route_of("/users/", rules) == "/users/"
    assert route_of("/users", rules) == "/users"
    assert route_of("/users/42/posts", rules) == "/users/:id/posts"
    assert route_of("/users/42/", rules) == "/users/:id/"
    # whole path, case-sensitive
    assert route_of("/api/users/42", rules) == "/api/users/:id"
    assert route_of("/Users/42", rules) == "/Users/:id"


def test_star_in_the_middle() -> None:
    rules = ["/api/v1/orders/*/items"]
    assert route_of("/api/v1/orders/987/items", rules) == "/api/v1/orders/*/items"
    assert route_of("/api/v1/orders/abc/items", rules) == "/api/v1/orders/*/items"
    assert route_of("/api/v1/orders//items", rules) == "/api/v1/orders//items"
    assert route_of("/api/v1/orders/1/2/items", rules) == "/api/v1/orders/:id/:id/items"


def test_double_star_matches_one_or_more_segments() -> None:
    rules = ["/static/**"]
    for path in ["/static/a", "/static/app.js", "/static/css/site.css", "/static/a/"]:
        assert route_of(path, rules) == "/static/**"
    assert route_of("/static/a//b", rules) == "/static/**"
    assert route_of("/static/a\nb", rules) == "/static/**"
    # the rest must start with a non-empty segment
    assert route_of("/static/", rules) == "/static/"
    assert route_of("/static", rules) == "/static"
    assert route_of("/static//x", rules) == "/static//x"
    assert route_of("/staticx/1", rules) == "/staticx/:id"
    assert route_of("/a/1", ["/**"]) == "/**"
    assert route_of("/", ["/**"]) == "/"


def test_root_and_trailing_slash_rules_are_literal() -> None:
    assert routes_of(["/", "/x"], ["/"]) == ["/", "/x"]
    assert routes_of(["/users/", "/users"], ["/users/"]) == ["/users/", "/users"]


def test_rules_in_order_first_match_wins() -> None:
    paths = ["/users/me", "/users/42", "/users/42/posts", "/other/1"]
    specific_first = ["/users/me", "/users/*", "/users/**"]
    assert routes_of(paths, specific_first) == [
        "/users/me",
        "/users/*",
        "/users/**",
        "/other/:id",
    ]
    general_first = ["/users/**", "/users/*", "/users/me"]
    assert routes_of(paths, general_first) == [
        "/users/**",
        "/users/**",
        "/users/**",
        "/other/:id",
    ]


def test_rule_matching_nothing_changes_nothing() -> None:
    paths = ["/users/42", "/about", None]
    assert routes_of(paths, ["/nothing/here/*"]) == routes_of(paths)


def test_rules_match_the_path_not_its_template() -> None:
    # a rule for the literal text ":id" does not match templated ids
    assert route_of("/users/42", ["/users/x"]) == "/users/:id"


def test_regex_metacharacters_in_rules_are_literal() -> None:
    rules = ["/a.b/*"]
    assert route_of("/a.b/1", rules) == "/a.b/*"
    assert route_of("/aXb/1", rules) == "/aXb/:id"
    odd = "/a+b/(x)|[y]/^$/&-~/\\d/{x/x}/."
    assert route_of(odd, [odd]) == odd
    assert route_of("/aab/(x)|[y]/^$/&-~/\\d/{x/x}/.", [odd]) != odd
    assert route_of("/c++/1", ["/c++/*"]) == "/c++/*"
    assert route_of("/cc/1", ["/c++/*"]) == "/cc/:id"


def test_unicode_and_escaped_rules() -> None:
    assert route_of("/café/7", ["/café/*"]) == "/café/*"
    assert route_of("/caf\\xC3\\xA9/7", ["/caf\\xC3\\xA9/*"]) == "/caf\\xC3\\xA9/*"
    assert route_of("/cafe/7", ["/café/*"]) == "/cafe/:id"


def test_rule_objects() -> None:
    rule = RouteRule("/users/*")
    assert rule.name == "/users/*"
    assert rule.regex == "^/users/[^/]+$"
    assert rule == RouteRule("/users/*")
    assert len({rule, RouteRule("/users/*")}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.pattern = "/x"  # type: ignore[misc]


def test_parse_rules_keeps_order_and_accepts_one_string() -> None:
    patterns = ["/b/*", "/a/*", "/b/*"]
    assert [r.pattern for r in parse_rules(patterns)] == patterns
    assert parse_rules("/users/*") == (RouteRule("/users/*"),)
    assert parse_rules([]) == ()


# --- invalid patterns ---------------------------------------------------------

INVALID = [
    ("", "route pattern is empty; write it like `/users/*`"),
    ("users/*", "invalid route pattern `users/*`: it must start with `/`"),
    ("*", "invalid route pattern `*`: it must start with `/`"),
    ("/a//b", "invalid route pattern `/a//b`: it has an empty segment (`//`)"),
    ("//", "it has an empty segment"),
    ("/a/**/b", "invalid route pattern `/a/**/b`: `**` can only be the last segment"),
    ("/**/", "`**` can only be the last segment"),
    ("/a*", "invalid route pattern `/a*`: `*` must be a whole segment, not `a*`"),
    ("/*.json", "`*` must be a whole segment, not `*.json`"),
    ("/***", "`*` must be a whole segment, not `***`"),
    ("/a b", "invalid route pattern `/a b`: it contains whitespace or control"),
    ("/a\tb", "invalid route pattern `/a\\tb`: it contains whitespace"),
    ("/a\x00", "invalid route pattern `/a\\x00`: it contains whitespace"),
    ("/a\u202e", "invalid route pattern `/a\\u202e`: it contains whitespace"),
    ("/search?q=*", "a query (`?`) or fragment (`#`) is never in a path"),
    ("/page#top", "a query (`?`) or fragment (`#`) is never in a path"),
    ("/users/:id", "`:id` is not a placeholder; write `*` for any one segment"),
    ("/users/{id}", "`{id}` is not a placeholder"),
    ("/users/<int:id>", "`<int:id>` is not a placeholder"),
    ("/" + "a" * MAX_PATTERN_LENGTH, f"the limit is {MAX_PATTERN_LENGTH}"),
]


@pytest.mark.parametrize(("pattern", "message"), INVALID)
def test_invalid_patterns(pattern: str, message: str) -> None:
    with pytest.raises(OptionError, match=re.escape(message)) as info:
        RouteRule(pattern)
    text = str(info.value)
    assert "\n" not in text
    assert text[0].islower()
    assert not text.endswith(".")
    assert "`/users/*`" in text  # every message shows a valid pattern
    assert isinstance(info.value, PplogError)


def test_parse_rules_names_the_first_bad_pattern() -> None:
    with pytest.raises(OptionError, match="`users`: it must start with `/`"):
        parse_rules(["/ok/*", "users", "/bad//"])


def test_longest_accepted_pattern() -> None:
    pattern = "/" + "a" * (MAX_PATTERN_LENGTH - 1)
    assert route_of(pattern, [pattern]) == pattern


# --- route_table ----------------------------------------------------------------


def test_route_table_maps_each_distinct_path_once() -> None:
    paths = pl.Series("p", ["/a/1", "/a/2", "/a/1", None, "/users/7", None])
    table = route_table(paths, parse_rules(["/users/*"]))
    expected = pl.DataFrame(
        {
            "path": ["/a/1", "/a/2", None, "/users/7"],
            "route": ["/a/:id", "/a/:id", None, "/users/*"],
        }
    )
    assert_frame_equal(table, expected)


def test_route_table_joins_back_onto_a_grouped_table() -> None:
    rows = pl.DataFrame({"path": ["/u/1", "/u/2", "/u/1", "/about", None]})
    by_path = rows.group_by("path").len()
    mapping = route_table(by_path["path"])
    by_route = (
        by_path.join(mapping, on="path", how="left", nulls_equal=True)
        .group_by("route")
        .agg(pl.col("len").sum())
        .sort("route", nulls_last=True)
    )
    expected = pl.DataFrame(
        {"route": ["/about", "/u/:id", None], "len": [1, 3, 1]},
        schema_overrides={"len": pl.UInt32},
    )
    assert_frame_equal(by_route, expected)


def test_route_table_accepts_categorical_and_all_null() -> None:
    cat = route_table(pl.Series(["/a/1", "/a/1"], dtype=pl.Categorical))
    assert cat.to_dicts() == [{"path": "/a/1", "route": "/a/:id"}]
    empty = route_table(pl.Series([None, None]))
    assert empty.schema == pl.Schema({"path": pl.String, "route": pl.String})
    assert empty.to_dicts() == [{"path": None, "route": None}]


def test_route_table_rejects_non_strings() -> None:
    with pytest.raises(TypeError, match="String Series"):
        route_table(pl.Series([1, 2]))


# --- docs -------------------------------------------------------------------------


def test_doctests() -> None:
    result = doctest.testmod(routes, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 5
    assert result.failed == 0


# --- properties -------------------------------------------------------------------

_HEX = set(string.hexdigits)
_DIGITS = set(string.digits)
_TOKEN = set(string.ascii_letters + string.digits + "_-")
_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def is_id(text: str) -> bool:
    """Independent oracle for one id-like segment (documented rules 1-4)."""
    chars = set(text)
    return bool(text) and (
        chars <= _DIGITS
        or _UUID.fullmatch(text) is not None
        or (len(text) >= 16 and chars <= _HEX)
        or (len(text) >= 20 and chars <= _TOKEN and bool(chars & _DIGITS))
    )


def template_oracle(path: str) -> str:
    """The documented template, one segment at a time in plain Python."""
    first, *segments = path.split("/")
    out = [first]
    for segment in segments:
        head, dot, rest = segment.partition(".")
        suffix_ok = not dot or (rest[:1].isascii() and rest[:1].isalpha())
        out.append(f":id{dot}{rest}" if suffix_ok and is_id(head) else segment)
    return "/".join(out)


def rule_oracle(pattern: str, path: str) -> bool:
    """Whether `pattern` matches `path`, by comparing segments."""
    if not path.startswith("/"):
        return False
    want, have = pattern[1:].split("/"), path[1:].split("/")
    if want[-1] == "**":
        fixed = len(want) - 1
        if len(have) <= fixed or not have[fixed]:
            return False
        want, have = want[:fixed], have[:fixed]
    return len(want) == len(have) and all(
        w == h or (w == "*" and h != "") for w, h in zip(want, have, strict=True)
    )


segments = st.one_of(
    st.integers(min_value=0, max_value=10**30).map(str),
    st.uuids().map(str),
    st.uuids().map(lambda u: u.hex.upper()),
    st.text(alphabet="0123456789abcdefABCDEF", min_size=14, max_size=40),
    st.text(
        alphabet=string.ascii_letters + string.digits + "_-", min_size=17, max_size=30
    ),
    st.sampled_from(["", ".", "v1", "page2", "2fa", "about", ":id", ".json", "1.2.3"]),
    st.text(alphabet="0123456789.aZé-_/\\x", max_size=8),
    st.text(max_size=12),
)
suffixes = st.sampled_from(["", "", ".json", ".tar.gz", ".5", ".", ".é", ".J"])
paths = st.one_of(
    st.lists(st.tuples(segments, suffixes).map("".join), max_size=6).map(
        lambda parts: "/" + "/".join(parts)
    ),
    st.text(),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(paths, min_size=1, max_size=20))
def test_template_matches_the_oracle_on_any_text(batch: list[str]) -> None:
    assert routes_of(list(batch)) == [template_oracle(p) for p in batch]


FIXED_RULES = parse_rules(["/users/*", "/static/**", "/a.b/*/c"])


@settings(max_examples=300, deadline=None)
@given(paths)
def test_path_without_ids_or_matching_rule_is_unchanged(path: str) -> None:
    assume(template_oracle(path) == path)
    assume(not any(rule_oracle(r.pattern, path) for r in FIXED_RULES))
    assert route_of(path, FIXED_RULES) == path


rule_segments = st.one_of(
    st.just("*"),
    st.text(alphabet="ab.+()|[]{}^$&-~\\é:<>", min_size=1, max_size=3),
)
path_segments = st.one_of(
    st.text(alphabet="ab.+()|[]{}^$&-~\\é:<>*", max_size=3),
    st.sampled_from(["a", "b", "ab"]),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(rule_segments, min_size=1, max_size=4),
    st.booleans(),
    st.lists(
        st.lists(path_segments, max_size=5).map(lambda s: "/" + "/".join(s)),
        max_size=10,
    ),
)
def test_rules_match_like_the_oracle(
    parts: list[str], rest: bool, batch: list[str]
) -> None:
    pattern = "/" + "/".join(parts + (["**"] if rest else []))
    try:
        rule = RouteRule(pattern)
    except OptionError:
        assume(False)
        raise
    # a rule built from a path matches that path: the escaping is exact
    literal = pattern.replace("**", "a").replace("*", "b")
    batch = [*batch, literal]
    got = routes_of(batch, (rule,))
    for path, route in zip(batch, got, strict=True):
        expected = pattern if rule_oracle(pattern, path) else template_oracle(path)
        assert route == expected, path
    assert got[-1] == pattern


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30), st.lists(st.text(), max_size=5))
def test_any_pattern_is_a_rule_or_an_option_error(
    pattern: str, batch: list[str]
) -> None:
    try:
        rules = parse_rules([pattern])
    except OptionError as err:
        message, rules = str(err), ()
    else:
        message = ""
    assert "\n" not in message
    assert len(routes_of(batch, rules)) == len(batch)
