"""Client attribution: which address a request is credited to.

`ProxyPolicy` reproduces nginx's realip module exactly
(`set_real_ip_from`, `real_ip_header`, `real_ip_recursive`): the TCP peer
(`$realip_remote_addr` when logged, else `$remote_addr`) must be trusted;
the header's tokens are walked from the right, past trusted addresses when
recursive; a token that does not parse stops the walk and keeps the last good
address. The result is printed as nginx prints it. Other strategies users ask
for are options of the same policy. Everything runs as polars expressions;
only distinct address tokens are parsed in Python (see `_ipaddr`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import polars as pl

from pplog._ipaddr import Network, addr_info, in_networks, parse_networks
from pplog.errors import OptionError
from pplog.schema import (
    CLIENT_IP,
    CLIENT_IP_SOURCE,
    HTTP_X_FORWARDED_FOR,
    PROXY_PROTOCOL_ADDR,
    REALIP_REMOTE_ADDR,
    REMOTE_ADDR,
)

# Loopback, RFC 1918, RFC 4193, link-local and CGNAT: where balancers live.
DEFAULT_TRUSTED = (
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "100.64.0.0/10",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
)
# Not routable on the internet: what "leftmost public" skips (RFC 6890 and friends).
PRIVATE_RANGES = (
    *DEFAULT_TRUSTED,
    "0.0.0.0/8",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "192.88.99.0/24",
    "198.18.0.0/15",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "64:ff9b::/96",
    "100::/64",
    "2001::/23",
    "2001:db8::/32",
    "2002::/16",
    "ff00::/8",
)
HEADERS = {
    "proxy_protocol": PROXY_PROTOCOL_ADDR,
    "X-Forwarded-For": HTTP_X_FORWARDED_FOR,
    "X-Real-IP": "http_x_real_ip",
    "Forwarded": "http_forwarded",
}
SOURCE_LABELS = {
    "proxy_protocol": "proxy_protocol",
    "X-Forwarded-For": "x_forwarded_for",
    "X-Real-IP": "x_real_ip",
    "Forwarded": "forwarded",
}
STRATEGIES = ("realip", "hops", "leftmost-public")


@dataclass(frozen=True)
class ProxyPolicy:
    """Who to believe about the client address.

    Parameters
    ----------
    trusted
        CIDR ranges (or addresses, or ``unix:``) of your balancers and proxies,
        as nginx's ``set_real_ip_from``; None means `DEFAULT_TRUSTED`.
    header
        ``"auto"``, ``"proxy_protocol"``, ``"X-Forwarded-For"``, ``"X-Real-IP"``
        or ``"Forwarded"`` (RFC 7239 ``for=``, parsed by pplog; nginx has none).
        ``auto`` takes `$proxy_protocol_addr` when the format logs it, else
        `$http_x_forwarded_for` when logged, else the peer.
    recursive
        nginx's ``real_ip_recursive``: walk left past trusted addresses.
    strategy
        ``"realip"`` (nginx, the default); ``"hops"``: the address `hops`
        entries from the right of the header, for a fixed chain of proxies that
        each append one; ``"leftmost-public"``: the leftmost entry that is not a
        private or special address (what Filebeat does; the client can forge
        it, so use it for rough geography only).
    bare_brackets
        Accept ``[addr]`` without a port, as nginx 1.27.3 and later do; False
        reproduces older nginx, which stops the walk at such a token.

    Examples
    --------
    >>> ProxyPolicy(trusted=["10.0.0.0/8"], header="X-Forwarded-For").recursive
    True
    """

    trusted: Sequence[str] | None = None
    header: str = "auto"
    recursive: bool = True
    strategy: str = "realip"
    hops: int = 1
    bare_brackets: bool = True
    networks: tuple[Network, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Check the options and parse the trusted ranges."""
        if self.header != "auto" and self.header not in HEADERS:
            msg = (
                f"unknown real IP header `{self.header}`; use auto, proxy_protocol, "
                f"X-Forwarded-For, X-Real-IP or Forwarded"
            )
            raise OptionError(msg)
        if self.strategy not in STRATEGIES:
            msg = f"unknown strategy `{self.strategy}`; use {', '.join(STRATEGIES)}"
            raise OptionError(msg)
        if self.hops < 1:
            msg = f"`hops` is a number of proxies: 1 or more, not {self.hops}"
            raise OptionError(msg)
        trusted = DEFAULT_TRUSTED if self.trusted is None else tuple(self.trusted)
        object.__setattr__(self, "trusted", tuple(trusted))
        object.__setattr__(self, "networks", parse_networks(trusted))

    def resolve_header(self, columns: Iterable[str]) -> str | None:
        """The header the policy reads for a format with `columns` (None: peer only)."""
        names = set(columns)
        if self.header != "auto":
            return self.header if HEADERS[self.header] in names else None
        for header in ("proxy_protocol", "X-Forwarded-For"):
            if HEADERS[header] in names:
                return header
        return None


def _tokens(column: str, header: str) -> pl.Expr:
    """Header tokens, rightmost first; for `Forwarded`, the `for=` values."""
    value = pl.col(column)
    if header == "Forwarded":
        found = value.str.extract_all(r'(?i)(?:^|[;,\s])for=("[^"]*"|[^;,\s]*)')
        items = found.list.eval(
            pl.element().str.replace(r"(?i)^[;,\s]*for=", "").str.strip_chars('"')
        )
    else:  # nginx separates tokens by commas and spaces alike...
        # ...except at the very start: its backward scan never looks at the first
        # character, so a leading separator sticks to the leftmost token, which
        # then does not parse (`,1.2.3.4` stops the walk there).
        value = value.str.replace(r"^[ ,]", "!")
        items = value.str.replace_all(",", " ", literal=True).str.split(" ")
        items = items.list.eval(pl.element().filter(pl.element() != ""))
    return items.list.reverse()


def _peer(columns: set[str]) -> str | None:
    if REALIP_REMOTE_ADDR in columns:
        return REALIP_REMOTE_ADDR
    if REMOTE_ADDR in columns:
        return REMOTE_ADDR
    return None


def _usable(name: str) -> pl.Expr:
    col = pl.col(name)
    return col.is_not_null() & (col != "") & (col != "-")


def _without_trust_decision(
    header: str | None, peer: str | None, policy: ProxyPolicy
) -> list[pl.Expr] | None:
    """When there is nothing to decide, the logged text is the answer.

    With no header logged, the client is the peer as nginx printed it. With
    only `$proxy_protocol_addr` logged (the `elb_log` format) no peer can be
    checked, so the PROXY source address is taken as logged. Both stay plain
    expressions, with no per-token parsing.
    """
    untrusted = pl.lit(False).alias(FORWARDED_BY_UNTRUSTED)  # noqa: FBT003
    if header is None and peer is None:  # the format logs no address at all
        ip = source = pl.lit(None, pl.String)
    elif header is None and peer is not None:
        ip = pl.when(_usable(peer)).then(pl.col(peer))
        source = pl.when(_usable(peer)).then(pl.lit(peer))
        assert peer is not None
    elif header == "proxy_protocol" and peer is None and policy.strategy == "realip":
        ip = pl.when(_usable(PROXY_PROTOCOL_ADDR)).then(pl.col(PROXY_PROTOCOL_ADDR))
        source = pl.when(_usable(PROXY_PROTOCOL_ADDR)).then(pl.lit("proxy_protocol"))
    else:
        return None
    return [ip.alias(CLIENT_IP), source.alias(CLIENT_IP_SOURCE), untrusted]


def client_ip_stages(
    columns: Iterable[str], policy: ProxyPolicy | None = None
) -> list[list[pl.Expr]]:
    """Stages of expressions adding `client_ip`, `client_ip_source` and
    `forwarded_by_untrusted` (the header named addresses, but the peer that
    sent it is not trusted, so they were ignored: possible spoofing).

    Each inner list is one `with_columns`; intermediate columns start with `_ci`.
    """
    policy = policy or ProxyPolicy()
    names = set(columns)
    header = policy.resolve_header(names)
    peer = _peer(names)
    nets = policy.networks
    fast = _without_trust_decision(header, peer, policy)
    if fast is not None:
        return [fast]
    stage1: list[pl.Expr] = []
    if peer:
        stage1.append(
            addr_info(pl.col(peer), bare_brackets=policy.bare_brackets).alias(
                "_ci_peer"
            )
        )
    peer_addr = (
        pl.col("_ci_peer").struct.field("addr") if peer else pl.lit(None, pl.String)
    )
    assert header is not None  # without a header there is nothing to decide
    stage1.append(_tokens(HEADERS[header], header).alias("_ci_tokens"))
    tokens = pl.col("_ci_tokens")
    # Positions from the right as flat columns: addresses are parsed per column
    # (once per distinct token), never per list element.
    stage2 = [
        addr_info(
            tokens.list.get(i, null_on_oob=True), bare_brackets=policy.bare_brackets
        ).alias(f"_ci_t{i}")
        for i in range(MAX_HOPS)
    ]
    infos = [pl.col(f"_ci_t{i}") for i in range(MAX_HOPS)]
    addrs = pl.concat_list([t.struct.field("addr") for t in infos])
    # 0: parsed and trusted, 1: parsed and untrusted, 2: does not parse
    kind_list = pl.concat_list(
        [
            pl.when(t.struct.field("addr").is_null())
            .then(pl.lit(2, pl.UInt8))
            .when(in_networks(t, nets))
            .then(pl.lit(0, pl.UInt8))
            .otherwise(pl.lit(1, pl.UInt8))
            for t in infos
        ]
    )
    stage3 = [addrs.alias("_ci_addrs"), kind_list.alias("_ci_kinds")]
    if policy.strategy == "leftmost-public":
        private = parse_networks(_PRIVATE)
        stage3.append(
            pl.concat_list(
                [
                    t.struct.field("addr").is_not_null() & ~in_networks(t, private)
                    for t in infos
                ]
            ).alias("_ci_public")
        )
    addrs, kinds = pl.col("_ci_addrs"), pl.col("_ci_kinds")
    # no header at all counts as no tokens (min_horizontal would skip the null)
    n = tokens.list.len().fill_null(0).cast(pl.Int64).clip(upper_bound=MAX_HOPS)
    chosen: pl.Expr
    index: pl.Expr
    if policy.strategy == "hops":
        # the entry `hops` places from the right; must parse
        index = pl.when(n >= policy.hops).then(pl.lit(policy.hops - 1, pl.Int64))
        chosen = addrs.list.get(index, null_on_oob=True)
    elif policy.strategy == "leftmost-public":
        last = (
            pl.col("_ci_public")
            .list.head(n)
            .list.eval(pl.element().arg_true().last())
            .list.first()
        )
        chosen = addrs.list.get(last.cast(pl.Int64), null_on_oob=True)
    elif policy.recursive:
        stop = (
            kinds.list.head(n)
            .list.eval((pl.element() != 0).arg_true().first())
            .list.first()
            .cast(pl.Int64)
        )
        at_stop = kinds.list.get(stop, null_on_oob=True)
        index = (
            pl.when(stop.is_null())
            .then(n - 1)
            .when(at_stop == 1)
            .then(stop)
            .otherwise(stop - 1)
        )
        chosen = pl.when(index >= 0).then(addrs.list.get(index, null_on_oob=True))
    else:
        chosen = addrs.list.first()
    ignored = pl.lit(False)  # noqa: FBT003
    if policy.strategy == "realip" and peer is not None:
        peer_ok = in_networks(pl.col("_ci_peer"), nets)
        chosen = pl.when(peer_ok).then(chosen)
        ignored = (~peer_ok & (n > 0)).fill_null(False)  # noqa: FBT003
    fallback = peer_addr
    label = SOURCE_LABELS[header]
    stage4 = [
        ignored.alias(FORWARDED_BY_UNTRUSTED),
        pl.coalesce(chosen, fallback).alias(CLIENT_IP),
        pl.when(chosen.is_not_null())
        .then(pl.lit(label))
        .when(fallback.is_not_null())
        .then(pl.lit(peer))
        .otherwise(None)
        .alias(CLIENT_IP_SOURCE),
    ]
    return [stage1, stage2, stage3, stage4]


# nginx walks any number of entries; pplog looks at the 64 rightmost, far more
# than any real chain of proxies (a longer chain stops the walk at its 64th).
MAX_HOPS = 64
_PRIVATE = PRIVATE_RANGES
FORWARDED_BY_UNTRUSTED = "forwarded_by_untrusted"


def decisions(
    lf: pl.LazyFrame, policy: ProxyPolicy
) -> tuple[list[str], pl.LazyFrame] | None:
    """The attribution of each distinct (peer, header) pair, keyed by those columns.

    None when no trust decision is needed (see `_without_trust_decision`).
    """
    names = lf.collect_schema().names()
    header = policy.resolve_header(names)
    peer = _peer(set(names))
    if _without_trust_decision(header, peer, policy) is not None:
        return None
    assert header is not None
    keys = [c for c in (peer, HEADERS[header]) if c is not None]
    decided = lf.select(keys).unique()
    for stage in client_ip_stages(keys, policy):
        decided = decided.with_columns(stage)
    return keys, decided.select(
        *keys, CLIENT_IP, CLIENT_IP_SOURCE, FORWARDED_BY_UNTRUSTED
    )


def attribute(
    lf: pl.LazyFrame,
    policy: ProxyPolicy | None = None,
    *,
    eager_decisions: bool = False,
) -> pl.LazyFrame:
    """Add `client_ip`, `client_ip_source` and `forwarded_by_untrusted` to rows.

    When a trust decision is needed, it is made once per distinct (peer,
    header) pair, far fewer than rows, and joined back: the answer depends on
    nothing else. With `eager_decisions` the small decision table is computed
    now, so that several queries over the result share it.
    """
    policy = policy or ProxyPolicy()
    names = lf.collect_schema().names()
    fast = _without_trust_decision(
        policy.resolve_header(names), _peer(set(names)), policy
    )
    if fast is not None:
        return lf.with_columns(fast)
    found = decisions(lf, policy)
    assert found is not None
    keys, decided = found
    if eager_decisions:
        decided = decided.collect().lazy()
        return lf.join(decided, on=keys, how="left", nulls_equal=True)
    return lf.join(
        decided, on=keys, how="left", nulls_equal=True, maintain_order="left"
    )
