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

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

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

    def recorded(self) -> dict[str, Any]:
        """The settings as JSON values: what a dataset records of the policy
        its rows were attributed with (`from_record` gives it back)."""
        return {
            "trusted": list(self.trusted or ()),
            "header": self.header,
            "recursive": self.recursive,
            "strategy": self.strategy,
            "hops": self.hops,
            "bare_brackets": self.bare_brackets,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ProxyPolicy:
        """The policy `recorded` wrote."""
        return cls(
            trusted=list(record["trusted"]),
            header=str(record["header"]),
            recursive=bool(record["recursive"]),
            strategy=str(record["strategy"]),
            hops=int(record["hops"]),
            bare_brackets=bool(record["bare_brackets"]),
        )

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


def _decide(
    pairs: pl.LazyFrame, header: str, peer: str | None, policy: ProxyPolicy
) -> pl.LazyFrame:
    """`client_ip`, `client_ip_source` and `forwarded_by_untrusted` for each row
    of `pairs` (distinct peer and header values), plus intermediate `_ci` columns.

    `forwarded_by_untrusted`: the header named addresses, but the peer that
    sent it is not trusted, so they were ignored (possible spoofing); not
    when the peer is `$remote_addr` and is the address the walk takes from
    the header (as if the peer were trusted): nginx's realip ran, the logged
    address is its result, and the peer it replaced is not in the log.

    The header's tokens (rightmost first, at most `MAX_HOPS`) become one row
    each: every token is parsed and tested once, whatever the chain lengths,
    then gathered back into per-pair lists that the walk reads.
    """
    nets = policy.networks
    rows = pairs.with_row_index("_ci_row").with_columns(
        _tokens(HEADERS[header], header).list.head(MAX_HOPS).alias("_ci_tokens")
    )
    if peer:
        rows = rows.with_columns(
            addr_info(pl.col(peer), bare_brackets=policy.bare_brackets).alias(
                "_ci_peer"
            )
        )
    token = pl.col("_ci_info")
    per_token = [
        token.struct.field("addr").alias("_ci_addrs"),
        # 0: parsed and trusted, 1: parsed and untrusted, 2: does not parse
        pl.when(token.struct.field("addr").is_null())
        .then(pl.lit(2, pl.UInt8))
        .when(in_networks(token, nets))
        .then(pl.lit(0, pl.UInt8))
        .otherwise(pl.lit(1, pl.UInt8))
        .alias("_ci_kinds"),
    ]
    if policy.strategy == "leftmost-public":
        private = parse_networks(_PRIVATE)
        per_token.append(
            (
                token.struct.field("addr").is_not_null() & ~in_networks(token, private)
            ).alias("_ci_public")
        )
    # a pair without tokens explodes to one null token: its lists are [null],
    # and the walk below reads only the first `n` entries
    walked = (
        rows.select("_ci_row", "_ci_tokens")
        .explode("_ci_tokens")
        .with_columns(
            addr_info(pl.col("_ci_tokens"), bare_brackets=policy.bare_brackets).alias(
                "_ci_info"
            )
        )
        .with_columns(pl.struct(per_token).alias("_ci_parsed"))
        .select("_ci_row", pl.col("_ci_parsed").struct.unnest())
        .group_by("_ci_row")
        .agg(pl.all())
    )
    rows = rows.join(walked, on="_ci_row", how="left")
    for stage in _walk(header, peer, policy):
        rows = rows.with_columns(stage)
    return rows


def _walk(header: str, peer: str | None, policy: ProxyPolicy) -> list[list[pl.Expr]]:
    """The walk over the per-pair token lists, as nginx's realip does it.

    Stages, so that each step is computed once: where the walk stops, which
    entry it takes, then the three columns.
    """
    nets = policy.networks
    addrs, kinds = pl.col("_ci_addrs"), pl.col("_ci_kinds")
    n, stop, index = pl.col("_ci_n"), pl.col("_ci_stop"), pl.col("_ci_index")
    # no header at all counts as no tokens (min_horizontal would skip the null)
    count = pl.col("_ci_tokens").list.len().fill_null(0).cast(pl.Int64)
    stages: list[list[pl.Expr]] = [[count.alias("_ci_n")]]
    if policy.strategy == "hops":
        # the entry `hops` places from the right; must parse
        stages.append(
            [
                pl.when(n >= policy.hops)
                .then(pl.lit(policy.hops - 1, pl.Int64))
                .alias("_ci_index")
            ]
        )
    elif policy.strategy == "leftmost-public":
        last = (
            pl.col("_ci_public")
            .list.head(n)
            .list.eval(pl.element().arg_true().last())
            .list.first()
        )
        stages.append([last.cast(pl.Int64).alias("_ci_index")])
    elif policy.recursive:
        first_untrusted = (
            kinds.list.head(n)
            .list.eval((pl.element() != 0).arg_true().first())
            .list.first()
            .cast(pl.Int64)
        )
        stages.append([first_untrusted.alias("_ci_stop")])
        at_stop = kinds.list.get(stop, null_on_oob=True)
        stages.append(
            [
                pl.when(stop.is_null())
                .then(n - 1)
                .when(at_stop == 1)
                .then(stop)
                .otherwise(stop - 1)
                .alias("_ci_index")
            ]
        )
    else:
        stages.append([pl.lit(0, pl.Int64).alias("_ci_index")])
    chosen: pl.Expr = pl.when(index >= 0).then(addrs.list.get(index, null_on_oob=True))
    ignored = pl.lit(False)  # noqa: FBT003
    if policy.strategy == "realip" and peer is not None:
        peer_ok = in_networks(pl.col("_ci_peer"), nets)
        ignored = ~peer_ok & (n > 0)
        if peer == REMOTE_ADDR:
            # `$remote_addr` is what the walk takes from the header: nginx's
            # realip replaced the peer with it already, nothing was ignored
            ignored &= chosen.ne_missing(pl.col("_ci_peer").struct.field("addr"))
        ignored = ignored.fill_null(False)  # noqa: FBT003
        chosen = pl.when(peer_ok).then(chosen)
    stages.append([chosen.alias("_ci_chosen"), ignored.alias(FORWARDED_BY_UNTRUSTED)])
    chosen = pl.col("_ci_chosen")
    fallback = (
        pl.col("_ci_peer").struct.field("addr") if peer else pl.lit(None, pl.String)
    )
    stages.append(
        [
            pl.coalesce(chosen, fallback).alias(CLIENT_IP),
            pl.when(chosen.is_not_null())
            .then(pl.lit(SOURCE_LABELS[header]))
            .when(fallback.is_not_null())
            .then(pl.lit(peer))
            .otherwise(None)
            .alias(CLIENT_IP_SOURCE),
        ]
    )
    return stages


# nginx walks any number of entries; pplog looks at the 64 rightmost, far more
# than any real chain of proxies (a longer chain stops the walk at its 64th).
MAX_HOPS = 64
_PRIVATE = PRIVATE_RANGES
FORWARDED_BY_UNTRUSTED = "forwarded_by_untrusted"


_OUTPUTS = (CLIENT_IP, CLIENT_IP_SOURCE, FORWARDED_BY_UNTRUSTED)


@dataclass(frozen=True)
class _Decision:
    """What a trust decision reads: the header, the peer column, the key columns."""

    header: str
    peer: str | None
    keys: list[str]


def _decision(names: list[str], policy: ProxyPolicy) -> _Decision | None:
    """The inputs of the trust decision, or None when none is needed."""
    header = policy.resolve_header(names)
    peer = _peer(set(names))
    if header is None or _without_trust_decision(header, peer, policy) is not None:
        return None
    keys = [c for c in (peer, HEADERS[header]) if c is not None]
    return _Decision(header, peer, keys)


PAIR_KEY = "_ci_pair"

# Columns of trust decisions the C split made as it read the lines (see
# `realip_marker`): the marker itself, True where it decided, then these.
REALIP_PREFIX = "_realip_"
REALIP_PARTS = ("header", "untrusted", "client")


def realip_marker(policy: ProxyPolicy, names: Iterable[str]) -> str | None:
    """The column saying where the C split decided the client for rows of
    `names` under `policy` (`_splitc.c`'s `Realip`), or None where it does
    not decide (a strategy other than nginx's, the `Forwarded` header, no
    peer logged, nothing to decide).

    Its name carries the decision's inputs (header, peer, recursion, the
    trusted ranges), so a column made for one policy is never read for
    another. Beside it: ``<marker>.header`` (the client is one of the
    header's addresses, else the peer), ``<marker>.untrusted`` (an untrusted
    peer sent the header) and ``<marker>.client``.
    """
    inputs = realip_inputs(policy, names)
    return None if inputs is None else inputs[0]


def realip_inputs(
    policy: ProxyPolicy, names: Iterable[str]
) -> tuple[str, str, str] | None:
    """`realip_marker`, the peer column and the header column it decides
    from; None where the C split makes no decision."""
    if policy.strategy != "realip":
        return None
    decision = _decision(list(names), policy)
    if decision is None or decision.peer is None or decision.header == "Forwarded":
        return None
    nets = tuple((n.v4, n.v6, n.unix) for n in policy.networks)
    inputs = (decision.header, decision.peer, policy.recursive, nets)
    marker = REALIP_PREFIX + hashlib.sha256(repr(inputs).encode()).hexdigest()[:12]
    return marker, decision.peer, HEADERS[decision.header]


def _realip_columns(names: Sequence[str]) -> list[str]:
    return [c for c in names if c.startswith(REALIP_PREFIX)]


def with_pair_key(lf: pl.LazyFrame, policy: ProxyPolicy | None = None) -> pl.LazyFrame:
    """Add `_ci_pair`, a 64-bit hash of the attribution inputs, when a trust
    decision is needed (else `lf` as it is).

    `attribute(..., eager_decisions=True)` then joins the decisions on this one
    integer instead of the peer and header texts, which is several times
    cheaper for each query that reads the result. The seed is random, so no one
    can craft colliding headers in advance, and `attribute` checks that the
    keys it saw are distinct before it trusts them.
    """
    policy = policy or ProxyPolicy()
    names = lf.collect_schema().names()
    decision = _decision(names, policy)
    if decision is None:
        return lf
    if realip_marker(policy, names) in names:
        # the C split decided what it could: `_with_realip` keys the others
        return lf
    return lf.with_columns(_pair_key(decision.keys))


def _pair_key(keys: list[str]) -> pl.Expr:
    """`PAIR_KEY` of the attribution inputs `keys`, with a random seed."""
    return pl.struct(keys).hash(seed=secrets.randbits(63)).alias(PAIR_KEY)


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
    now, so that several queries over the result share it, and the rows come
    out in no set order (for aggregations).
    """
    policy = policy or ProxyPolicy()
    names = lf.collect_schema().names()
    decision = _decision(names, policy)
    if decision is None:
        fast = _without_trust_decision(
            policy.resolve_header(names), _peer(set(names)), policy
        )
        assert fast is not None
        return lf.with_columns(fast)
    header, peer, keys = decision.header, decision.peer, decision.keys
    marker = realip_marker(policy, names)
    realip = _realip_columns(names)
    if eager_decisions and marker is not None and marker in names:
        return _with_realip(lf, policy, marker, header, peer)
    if realip:  # made for another policy, or not asked for: decided here
        lf = lf.drop(realip)
    if not eager_decisions:
        # `_decide` numbers the pairs and reads them twice: the plan may run
        # `unique()` twice (a union with a Python-read source is not cached),
        # and its order is free, so the pairs are sorted to number them alike
        pairs = lf.select(keys).unique().sort(keys, nulls_last=True)
        decided = _decide(pairs, header, peer, policy)
        return lf.join(
            decided.select(*keys, *_OUTPUTS),
            on=keys,
            how="left",
            nulls_equal=True,
            maintain_order="left",
        )
    # the distinct pairs are collected first: `_decide` numbers them and
    # reads them twice, and two runs of `unique()` need not agree on order
    if PAIR_KEY in names:  # see `with_pair_key`
        pairs = lf.select(*keys, PAIR_KEY).unique().collect().lazy()
        table = _decide(pairs, header, peer, policy).collect()
        if table.get_column(PAIR_KEY).n_unique() == table.height:
            by_key = table.select(PAIR_KEY, *_OUTPUTS).lazy()
            # rows come out in no set order: the summary aggregates them
            return lf.join(by_key, on=PAIR_KEY, how="left").drop(PAIR_KEY)
        # two pairs share a hash: join on the texts
        return lf.drop(PAIR_KEY).join(
            table.select(*keys, *_OUTPUTS).lazy(), on=keys, how="left", nulls_equal=True
        )
    pairs = lf.select(keys).unique().collect().lazy()
    table = _decide(pairs, header, peer, policy).collect()
    return lf.join(
        table.select(*keys, *_OUTPUTS).lazy(), on=keys, how="left", nulls_equal=True
    )


def attribute_now(lf: pl.LazyFrame, policy: ProxyPolicy | None = None) -> pl.LazyFrame:
    """`attribute`, with the trust decisions made now, for rows read once.

    The rows keep their order. Those the C split decided as it read them
    (`realip_marker`) take its decisions; the distinct (peer, header) pairs
    of the others are collected now, in one pass over them, and decided
    (none: nothing is joined). `attribute`'s lazy plan reads its rows for
    the distinct pairs of every row (twice: `_decide` reads them twice)
    and again for the join, reading and splitting the log each time: for a
    caller that streams the rows once, as `pplog doctor` does (2M `main`
    lines: 5.2 -> 3.3 s). Rows without the C split's decisions for
    `policy` are `attribute`'s.
    """
    policy = policy or ProxyPolicy()
    names = lf.collect_schema().names()
    decision = _decision(names, policy)
    marker = realip_marker(policy, names)
    if decision is None or marker is None or marker not in names:
        return attribute(lf, policy)
    keys, decided = decision.keys, pl.col(marker)
    made = _made_in_c(marker, decision.header, decision.peer)
    realip = _realip_columns(names)
    pairs = lf.filter(~decided).select(keys).unique().collect()
    if pairs.height == 0:
        return lf.with_columns(made).drop(realip)
    here = [f"{PAIR_KEY}.{name}" for name in _OUTPUTS]
    table = _decide(pairs.lazy(), decision.header, decision.peer, policy).select(
        *keys, *(pl.col(o).alias(h) for o, h in zip(_OUTPUTS, here, strict=True))
    )
    joined = lf.join(
        table.collect().lazy(),
        on=keys,
        how="left",
        nulls_equal=True,
        maintain_order="left",
    )
    return joined.with_columns(
        pl.when(decided).then(expr).otherwise(pl.col(h)).alias(name)
        for name, expr, h in zip(_OUTPUTS, made, here, strict=True)
    ).drop(*realip, *here)


def _made_in_c(marker: str, header: str, peer: str | None) -> list[pl.Expr]:
    """`_OUTPUTS` from the decision columns the C split gave (`realip_marker`)."""
    part = {p: pl.col(f"{marker}.{p}") for p in REALIP_PARTS}
    source = pl.when(part["header"]).then(pl.lit(SOURCE_LABELS[header]))
    return [
        part["client"].alias(CLIENT_IP),
        source.otherwise(pl.lit(peer, pl.String)).alias(CLIENT_IP_SOURCE),
        part["untrusted"].alias(FORWARDED_BY_UNTRUSTED),
    ]


def _with_realip(
    lf: pl.LazyFrame, policy: ProxyPolicy, marker: str, header: str, peer: str | None
) -> pl.LazyFrame:
    """`attribute(lf, policy, eager_decisions=True)` of rows whose decisions
    the C split made where it could (`realip_marker`): those rows take them
    as they are, the others are decided here, once per distinct pair."""
    decided = pl.col(marker)
    realip = _realip_columns(lf.collect_schema().names())
    known = (
        lf.filter(decided)
        .with_columns(_made_in_c(marker, header, peer))
        .drop(*realip, PAIR_KEY, strict=False)
    )
    rest = lf.filter(~decided).drop(realip)
    if rest.select(pl.len()).collect().item() == 0:
        return known
    # the others are joined on a key as `with_pair_key` gives it, computed
    # for them alone: a join on the texts took 0.25 s more on 2M lines the C
    # split left undecided. Rows come out in no set order (aggregations).
    keys = [c for c in (peer, HEADERS[header]) if c is not None]
    decided_here = attribute(
        rest.with_columns(_pair_key(keys)), policy, eager_decisions=True
    )
    return pl.concat([known, decided_here.select(known.collect_schema().names())])


def attributed(frame: pl.DataFrame, policy: ProxyPolicy | None = None) -> pl.DataFrame:
    """`attribute` of a collected frame, without copying its columns.

    The decisions are joined to the key columns alone and the three columns
    added beside the others (a join of the whole frame gathers every column
    again: 270 MB more on 2M lines of a `main` log). Rows the C split
    decided as it read them (`realip_marker`) take those decisions; the
    others are decided here.
    """
    policy = policy or ProxyPolicy()
    realip = _realip_columns(frame.columns)
    decision = _decision(frame.columns, policy)
    marker = realip_marker(policy, frame.columns)
    if decision is None:  # expressions over the row: nothing to join
        return attribute(frame.drop(realip).lazy(), policy).collect()
    if marker is None or marker not in frame.columns or not frame[marker].any():
        keys = frame.select(decision.keys).lazy()
        outputs = attribute(keys, policy).select(_OUTPUTS).collect()
        return frame.drop(realip).with_columns(outputs)
    made = _made_in_c(marker, decision.header, decision.peer)
    outputs = frame.select(
        pl.when(pl.col(marker)).then(expr).alias(name)
        for name, expr in zip(_OUTPUTS, made, strict=True)
    )
    rows = frame.get_column(marker).not_().arg_true()
    if rows.len():  # the others, decided per distinct pair
        keys = frame.select(decision.keys).gather(rows).lazy()
        rest = attribute(keys, policy).select(_OUTPUTS).collect()
        outputs = outputs.with_columns(
            outputs.get_column(c).scatter(rows, rest.get_column(c)) for c in _OUTPUTS
        )
    return frame.drop(realip).with_columns(outputs)
