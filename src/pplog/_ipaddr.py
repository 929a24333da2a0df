"""Addresses as nginx parses and prints them, and CIDR tests as expressions.

nginx's realip module reads X-Forwarded-For tokens with its own lenient parser
(`ngx_parse_addr_port`: IPv4 with leading zeros read as decimal and empty
octets as 0, `[v6]:port`, bare IPv6 even when it looks like addr:port) and
prints the result with `ngx_sock_ntop`. Python's `ipaddress` disagrees on
several of these, so this module transcribes nginx's rules.

Parsing runs once per distinct token (cached across batches); everything per
row, including the CIDR membership tests, is polars expressions.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType

import polars as pl

from pplog.errors import OptionError

_splitc: ModuleType | None
try:  # reads ordinary IPv6 addresses many at a time (`_plain_inet6` in C)
    from pplog import _splitc
except ImportError:  # pragma: no cover - a checkout whose extension was not built
    _splitc = None

INFO = pl.Struct(
    {
        "addr": pl.String,
        "v4": pl.UInt32,
        "hi": pl.UInt64,
        "lo": pl.UInt64,
        "unix": pl.Boolean,
    }
)
_MASK64 = (1 << 64) - 1
_V4_STRICT = (  # ASCII digits: the regex engine's \d also matches other scripts
    r"^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$"
)
_IPV6_CHARS = re.compile(r"^[0-9A-Fa-f:.]+$")
_CACHE: dict[
    tuple[str, bool], tuple[str | None, int | None, int | None, int | None, bool]
] = {}
# Parsed tokens kept between batches: a few MiB of Python objects at most
# (a million IPv6 entries held 343 MiB; distinct tokens past this are parsed again).
_CACHE_LIMIT = 1 << 16
_NONE = (None, None, None, None, False)


_DIGITS = re.compile(r"[0-9]+")


def inet_addr(text: str) -> int | None:
    """nginx `ngx_inet_addr`: four decimal octets, empty = 0, leading zeros decimal."""
    if text.count(".") != 3:
        return None
    value = 0
    for part in text.split("."):
        if part and not _DIGITS.fullmatch(part):  # ASCII digits only
            return None
        octet = int(part) if part else 0
        if octet > 255:
            return None
        value = value << 8 | octet
    if value == 0xFFFFFFFF:  # INADDR_NONE is nginx's error value
        return None
    return value


def inet6_addr(text: str) -> int | None:
    """nginx `ngx_inet6_addr`, transcribed: it differs from RFC 4291 text parsers.

    One leading `:` is skipped (so `:1:2:3:4:5:6:7:8` is accepted), a dotted
    IPv4 tail is read with the lenient `ngx_inet_addr`, zone ids are refused.
    """
    if not text:
        return None
    words: list[int] = []
    zero_at: int | None = None
    nibbles, word, i = 0, 0, 0
    if text[0] == ":":
        i = 1
    group_start: int | None = None  # where the current group began, after a `:`
    while i < len(text):
        c = text[i]
        i += 1
        if c == ":":
            if nibbles:
                words.append(word)
                if len(words) >= 8:
                    return None
                nibbles, word, group_start = 0, 0, i
                continue
            if zero_at is None:
                zero_at, group_start = len(words), i
                continue
            return None
        if c == "." and nibbles:
            if 8 - len(words) < 2 or group_start is None:
                return None
            v4 = inet_addr(text[group_start:])
            if v4 is None:
                return None
            words.append(v4 >> 16)
            word, nibbles = v4 & 0xFFFF, 1
            i = len(text)
            break
        nibbles += 1
        if nibbles > 4:
            return None
        if "0" <= c <= "9":
            word = word * 16 + ord(c) - 48
        elif "a" <= c.lower() <= "f":
            word = word * 16 + ord(c.lower()) - 87
        else:
            return None
    if nibbles == 0 and zero_at is None:
        return None
    words.append(word)
    if len(words) < 8:
        if zero_at is None:
            return None
        words[zero_at:zero_at] = [0] * (8 - len(words))
    elif zero_at is not None or len(words) > 8:
        return None
    value = 0
    for w in words:
        value = value << 16 | w
    return value


def inet6_ntop(value: int) -> str:
    """nginx `ngx_inet6_ntop`: lowercase, longest run of 2+ zero groups as `::`."""
    b = value.to_bytes(16, "big")
    groups = [b[i] << 8 | b[i + 1] for i in range(0, 16, 2)]
    zero, best, run, start = -1, 1, 0, -1
    for i, g in enumerate(groups):
        if g:
            if best < run:
                zero, best = start, run
            run = 0
            continue
        if run == 0:
            start = i
        run += 1
    if best < run:
        zero, best = start, run
    n = 8
    out = ""
    if zero == 0:
        if (
            (best == 5 and groups[5] == 0xFFFF)
            or best == 6
            or (best == 7 and b[14] != 0 and b[15] != 1)
        ):
            n = 6
        out = ":"
    i = 0
    while i < n:
        if i == zero:
            out += ":"
            i += best
            continue
        out += f"{groups[i]:x}"
        if i < 7:
            out += ":"
        i += 1
    if n == 6:
        out += ".".join(str(x) for x in b[12:])
    return out


# IPv6 in the forms nginx and the C library read alike: hex groups only (no
# dotted tail, no lone `:` at either end), eight of them, or up to six on each
# side of one `::` that follows at least one (`inet_pton` refuses more than
# seven in all).
_V6_PLAIN = re.compile(
    r"(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
    r"|[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,5}::"
    r"(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,5})?"
)


def _plain_inet6(text: str) -> tuple[str, int] | None:
    """nginx's text and value of an ordinary IPv6 address, from the C library.

    For these forms `inet_pton` reads the value `inet6_addr` reads, and, when
    the first group is not zero (so no IPv4 tail is printed), `inet_ntop`
    prints the text `inet6_ntop` prints: both shorten the first longest run
    of two or more zero groups. About ten times faster than the transcription,
    which every other form still takes (tests/test_ipaddr.py compares them).
    """
    if not _V6_PLAIN.fullmatch(text):
        return None
    try:
        packed = socket.inet_pton(socket.AF_INET6, text)
    except OSError:
        return None
    if packed[0] == 0 and packed[1] == 0:
        return None
    return socket.inet_ntop(socket.AF_INET6, packed), int.from_bytes(packed, "big")


def _addr(text: str) -> tuple[str | None, int | None, int | None, int | None, bool]:
    """(nginx text, IPv4 int, IPv6 high, IPv6 low, is_unix) for an address text."""
    if text == "unix:":
        return ("unix:", None, None, None, True)
    plain = _plain_inet6(text)
    if plain is not None:
        return (plain[0], None, plain[1] >> 64, plain[1] & _MASK64, False)
    v4 = inet_addr(text)
    if v4 is not None:
        return (
            ".".join(str(v4 >> s & 255) for s in (24, 16, 8, 0)),
            v4,
            None,
            None,
            False,
        )
    v6 = inet6_addr(text)
    if v6 is None:
        return _NONE
    if v6 >> 32 == 0xFFFF:  # ::ffff:a.b.c.d is matched against IPv4 ranges only
        return (inet6_ntop(v6), v6 & 0xFFFFFFFF, None, None, False)
    return (inet6_ntop(v6), None, v6 >> 64, v6 & _MASK64, False)


def parse_addr_port(
    token: str, *, bare_brackets: bool = True
) -> tuple[str | None, int | None, int | None, int | None, bool]:
    """nginx `ngx_parse_addr_port` on one token: the address part, or all None.

    `[addr]` without a port is accepted since nginx 1.27.3 (`bare_brackets`).
    """
    whole = _addr(token)  # nginx does not trim: " 1.2.3.4" or a tab does not parse
    if whole[0] is not None or not token:
        return whole
    if token[0] == "[":
        close = token.find("]")
        if close < 0:
            return _NONE
        if close == len(token) - 1:  # `[addr]` without a port
            return _addr(token[1:close]) if bare_brackets else _NONE
        if token[close + 1] != ":":
            return _NONE
        host, port = token[1:close], token[close + 2 :]
    else:
        colon = token.find(":")
        if colon < 0:
            return _NONE
        host, port = token[:colon], token[colon + 1 :]
    if not _DIGITS.fullmatch(port) or not 1 <= int(port) <= 65535:
        return _NONE
    return _addr(host)


def _parse_cached(
    token: str, bare_brackets: bool
) -> tuple[str | None, int | None, int | None, int | None, bool]:
    key = (token, bare_brackets)
    hit = _CACHE.get(key)
    if hit is None:
        hit = parse_addr_port(token, bare_brackets=bare_brackets)
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        _CACHE[key] = hit
    return hit


def _info_series(series: pl.Series, bare_brackets: bool = True) -> pl.Series:
    """Struct of (addr, v4, hi, lo, unix) for a column of address tokens."""
    name = series.name
    if series.null_count() == len(series):  # unused positions of short chains
        return pl.Series(name, [None] * len(series), dtype=INFO)
    frame = pl.DataFrame({"t": series.cast(pl.String)})
    strict = frame.select(
        # 255.255.255.255 is nginx's error value: leave it to the full parser
        pl.col("t").str.contains(_V4_STRICT).fill_null(False)  # noqa: FBT003
        & (pl.col("t") != "255.255.255.255").fill_null(False)  # noqa: FBT003
    ).to_series()
    uniq = frame.filter(~strict & pl.col("t").is_not_null()).get_column("t").unique()
    tokens = uniq.to_list()
    if _splitc is None:
        parsed = [_parse_cached(t, bare_brackets) for t in tokens]
    else:  # ordinary IPv6 addresses read in C, the others here
        parsed = [
            _parse_cached(t, bare_brackets)
            if p is None
            else (p[0], None, p[1], p[2], False)
            for t, p in zip(tokens, _splitc.inet6_plain(tokens), strict=True)
        ]
    table = pl.DataFrame(
        {
            "t": uniq,
            "addr": [p[0] for p in parsed],
            "v4": pl.Series([p[1] for p in parsed], dtype=pl.UInt32),
            "hi": pl.Series([p[2] for p in parsed], dtype=pl.UInt64),
            "lo": pl.Series([p[3] for p in parsed], dtype=pl.UInt64),
            "unix": pl.Series([p[4] for p in parsed], dtype=pl.Boolean),
        },
        schema={"t": pl.String, **INFO.to_schema()},
    )
    octets = pl.col("t").str.split(".")
    fast = sum(
        octets.list.get(i, null_on_oob=True).cast(pl.UInt32, strict=False) * (1 << s)
        for i, s in enumerate((24, 16, 8, 0))
    )
    out = frame.with_columns(_strict=strict).join(
        table, on="t", how="left", maintain_order="left"
    )
    out = out.with_columns(
        pl.when(pl.col("_strict"))
        .then(pl.col("t"))
        .otherwise(pl.col("addr"))
        .alias("addr"),
        pl.when(pl.col("_strict")).then(fast).otherwise(pl.col("v4")).alias("v4"),
        pl.when(pl.col("_strict"))
        .then(pl.lit(False))
        .otherwise(pl.col("unix"))
        .alias("unix"),  # noqa: FBT003
    )
    return out.select(pl.struct(list(INFO.to_schema())).alias(name)).to_series()


def addr_info(expr: pl.Expr, *, bare_brackets: bool = True) -> pl.Expr:
    """Parsed tokens: nginx's text (`addr`), `v4`, `hi`, `lo`, `unix`.

    `bare_brackets`: accept `[addr]` without a port, as nginx 1.27.3 and later do.
    """
    return expr.map_batches(
        lambda s: _info_series(s, bare_brackets), return_dtype=INFO, is_elementwise=True
    )


@dataclass(frozen=True)
class Network:
    """One trusted range, as nginx's `set_real_ip_from` reads it."""

    text: str
    v4: tuple[int, int] | None = None  # (network, mask)
    v6: tuple[int, int, int, int] | None = None  # (hi, lo, mask hi, mask lo)
    unix: bool = False

    @classmethod
    def parse(cls, text: str) -> Network:
        """`a.b.c.d/n`, `v6/n`, a bare address (/32, /128) or `unix:`.

        Host bits are masked, as nginx does (it warns that they are meaningless).
        """
        raw = text.strip()
        if raw == "unix:":
            return cls(raw, unix=True)
        try:
            net = ipaddress.ip_network(raw, strict=False)
        except ValueError:
            msg = (
                f"`{text}` is not an address or CIDR range; write it as nginx's "
                f"set_real_ip_from takes it, e.g. 10.0.0.0/8, 2001:db8::/32 or unix:"
            )
            raise OptionError(msg) from None
        if net.version == 4:
            mask = int(net.netmask)
            return cls(raw, v4=(int(net.network_address), mask))
        value, mask = int(net.network_address), int(net.netmask)
        return cls(raw, v6=(value >> 64, value & _MASK64, mask >> 64, mask & _MASK64))


def parse_networks(texts: Iterable[str]) -> tuple[Network, ...]:
    """Trusted ranges from their text forms."""
    return tuple(Network.parse(t) for t in texts)


def in_networks(info: pl.Expr, networks: Sequence[Network]) -> pl.Expr:
    """True where the parsed address lies in one of `networks` (False if unparsed).

    IPv4-mapped IPv6 addresses are tested as IPv4, as `ngx_cidr_match` does.
    """
    v4, hi, lo = (
        info.struct.field("v4"),
        info.struct.field("hi"),
        info.struct.field("lo"),
    )
    tests: list[pl.Expr] = []
    for net in networks:
        if net.unix:
            tests.append(info.struct.field("unix"))
        elif net.v4 is not None:
            network, mask = net.v4
            tests.append((v4 & mask) == network)
        elif net.v6 is not None:
            n_hi, n_lo, m_hi, m_lo = net.v6
            tests.append(((hi & m_hi) == n_hi) & ((lo & m_lo) == n_lo))
    if not tests:  # a value per row (a literal alone would be one row)
        return info.is_null() & pl.lit(False)  # noqa: FBT003
    return pl.any_horizontal(tests).fill_null(False)  # noqa: FBT003


def addr_in(text: str, networks: Sequence[Network]) -> bool:
    """`addr_in_networks` for one address text, in Python (for callers that
    keep answers across batches: a polars query per batch costs more than
    the few new addresses it holds)."""
    _, v4, hi, lo, unix = _parse_cached(text, True)  # noqa: FBT003
    for net in networks:
        if net.unix:
            if unix:
                return True
        elif net.v4 is not None:
            network, mask = net.v4
            if v4 is not None and v4 & mask == network:
                return True
        elif net.v6 is not None and hi is not None and lo is not None:
            n_hi, n_lo, m_hi, m_lo = net.v6
            if hi & m_hi == n_hi and lo & m_lo == n_lo:
                return True
    return False


def addr_in_networks(expr: pl.Expr, networks: Sequence[Network]) -> pl.Expr:
    """`in_networks(addr_info(expr), networks)`, each address parsed once.

    polars runs a Python function once for each place an expression uses it,
    and `in_networks` reads a field of the parsed addresses for each range:
    `addr_info` inside it ran 12 times a batch (24 in a lazy query) for the
    nine default trusted ranges. Here one function parses and tests.
    """

    def test(values: pl.Series) -> pl.Series:
        info = _info_series(values)
        inside = info.to_frame("i").select(in_networks(pl.col("i"), networks))
        return inside.to_series().alias(values.name)

    return expr.map_batches(test, return_dtype=pl.Boolean, is_elementwise=True)
