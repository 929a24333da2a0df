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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import polars as pl

from pplog.errors import OptionError

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
_V4_STRICT = (
    r"^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$"
)
_IPV6_CHARS = re.compile(r"^[0-9A-Fa-f:.]+$")
_CACHE: dict[str, tuple[str | None, int | None, int | None, int | None, bool]] = {}
_CACHE_LIMIT = 1_000_000
_NONE = (None, None, None, None, False)


def inet_addr(text: str) -> int | None:
    """nginx `ngx_inet_addr`: four decimal octets, empty = 0, leading zeros decimal."""
    if text.count(".") != 3:
        return None
    value = 0
    for part in text.split("."):
        if part and not part.isdigit():
            return None
        octet = int(part) if part else 0
        if octet > 255:
            return None
        value = value << 8 | octet
    if value == 0xFFFFFFFF:  # INADDR_NONE is nginx's error value
        return None
    return value


def inet6_addr(text: str) -> int | None:
    """nginx `ngx_inet6_addr`: standard text, any case, dotted tail, no zone."""
    if not text or not _IPV6_CHARS.match(text) or ":" not in text:
        return None
    try:
        return int(ipaddress.IPv6Address(text))
    except ValueError:
        return None


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


def _addr(text: str) -> tuple[str | None, int | None, int | None, int | None, bool]:
    """(nginx text, IPv4 int, IPv6 high, IPv6 low, is_unix) for an address text."""
    if text == "unix:":
        return ("unix:", None, None, None, True)
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
    mapped = v6 >> 32 == 0xFFFF  # ::ffff:a.b.c.d is matched against IPv4 ranges
    return (
        inet6_ntop(v6),
        v6 & 0xFFFFFFFF if mapped else None,
        v6 >> 64,
        v6 & _MASK64,
        False,
    )


def parse_addr_port(
    token: str,
) -> tuple[str | None, int | None, int | None, int | None, bool]:
    """nginx `ngx_parse_addr_port` on one token: the address part, or all None."""
    token = token.strip()
    whole = _addr(token)
    if whole[0] is not None or not token:
        return whole
    if token[0] == "[":
        close = token.find("]")
        if close < 0:
            return _NONE
        if close == len(token) - 1:  # `[v6]` without a port (nginx 1.27.3+)
            inner = _addr(token[1:close])
            return inner if inner[2] is not None else _NONE
        if token[close + 1] != ":":
            return _NONE
        host, port = token[1:close], token[close + 2 :]
        if ":" not in host:  # brackets hold IPv6 only
            return _NONE
    else:
        colon = token.find(":")
        if colon < 0:
            return _NONE
        host, port = token[:colon], token[colon + 1 :]
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        return _NONE
    return _addr(host)


def _parse_cached(
    token: str,
) -> tuple[str | None, int | None, int | None, int | None, bool]:
    hit = _CACHE.get(token)
    if hit is None:
        hit = parse_addr_port(token)
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        _CACHE[token] = hit
    return hit


def _info_series(series: pl.Series) -> pl.Series:
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
    parsed = [_parse_cached(t) for t in uniq.to_list()]
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


def addr_info(expr: pl.Expr) -> pl.Expr:
    """Parsed tokens: nginx's text (`addr`), `v4`, `hi`, `lo`, `unix`."""
    return expr.map_batches(_info_series, return_dtype=INFO, is_elementwise=True)


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
    if not tests:
        return pl.lit(False)  # noqa: FBT003
    return pl.any_horizontal(tests).fill_null(False)  # noqa: FBT003
