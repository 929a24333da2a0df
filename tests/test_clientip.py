"""Client attribution: nginx realip semantics, exactly (domain spec §2.4)."""

from __future__ import annotations

import polars as pl
import pytest

from pplog.clientip import PAIR_KEY, ProxyPolicy, attribute, with_pair_key
from pplog.errors import OptionError


def attributed(
    peer: str, xff: str | None, *, recursive: bool, **kwargs: object
) -> dict:
    frame = pl.LazyFrame(
        {"realip_remote_addr": [peer], "http_x_forwarded_for": [xff]},
        schema={"realip_remote_addr": pl.String, "http_x_forwarded_for": pl.String},
    )
    policy = ProxyPolicy(
        trusted=kwargs.pop("trusted", ["10.0.0.0/8"]),
        header="X-Forwarded-For",
        recursive=recursive,
        **kwargs,  # type: ignore[arg-type]
    )
    return attribute(frame, policy).collect().row(0, named=True)


# Table 2.4 of the domain spec: peer 10.0.0.5, trusted 10.0.0.0/8.
TABLE = [
    ("203.0.113.7", False, "203.0.113.7"),
    ("198.51.100.9, 203.0.113.7", False, "203.0.113.7"),
    ("203.0.113.7, 10.1.1.1", False, "10.1.1.1"),
    ("203.0.113.7, 10.1.1.1", True, "203.0.113.7"),
    ("10.9.9.9, 10.1.1.1", True, "10.9.9.9"),
    ("unknown, 10.1.1.1", True, "10.1.1.1"),
    ("203.0.113.7, unknown", True, "10.0.0.5"),
    ("203.0.113.7, 10.1.1.1", True, "203.0.113.7"),  # two lines joined
    ("203.0.113.7, 10.1.1.1", False, "10.1.1.1"),
    ("[2001:db8::7]:51234, 10.1.1.1", True, "2001:db8::7"),
    ("203.0.113.7:0", False, "10.0.0.5"),
    ("010.001.002.003", False, "10.1.2.3"),
    ("198.51.100.9 203.0.113.7", False, "203.0.113.7"),
    ("203.0.113.7,", False, "203.0.113.7"),
    ("255.255.255.255", False, "10.0.0.5"),
    ("2001:DB8:0:0::7", False, "2001:db8::7"),
    ("203.0.113.7, ::ffff:10.1.1.1", True, "203.0.113.7"),
    ("198.51.100.1, 203.0.113.7, 10.2.2.2, 10.1.1.1", True, "203.0.113.7"),
    ("a,,203.0.113.7", False, "203.0.113.7"),
    ("_obf, 10.1.1.1", True, "10.1.1.1"),
    ("-", False, "10.0.0.5"),
    (None, True, "10.0.0.5"),
]


@pytest.mark.parametrize(("xff", "recursive", "expected"), TABLE)
def test_realip_worked_examples(
    xff: str | None, recursive: bool, expected: str
) -> None:
    assert attributed("10.0.0.5", xff, recursive=recursive)["client_ip"] == expected


def test_untrusted_peer_keeps_its_address_and_flags_the_header() -> None:
    row = attributed("198.51.100.1", "203.0.113.7", recursive=True)
    assert row["client_ip"] == "198.51.100.1"
    assert row["client_ip_source"] == "realip_remote_addr"
    assert row["forwarded_by_untrusted"] is True


def test_source_names_the_header_used() -> None:
    row = attributed("10.0.0.5", "203.0.113.7", recursive=True)
    assert (row["client_ip_source"], row["forwarded_by_untrusted"]) == (
        "x_forwarded_for",
        False,
    )


def test_ipv6_trusted_ranges_and_mapped_peers() -> None:
    trusted = ["2001:db8:1::/48", "10.0.0.0/8"]
    row = attributed("2001:db8:1::9", "203.0.113.7", recursive=True, trusted=trusted)
    assert row["client_ip"] == "203.0.113.7"
    row = attributed("::ffff:10.0.0.5", "203.0.113.7", recursive=True, trusted=trusted)
    assert row["client_ip"] == "203.0.113.7"  # a mapped peer counts as IPv4


def test_proxy_protocol_header_is_rendered_like_nginx() -> None:
    frame = pl.LazyFrame(
        {"realip_remote_addr": ["10.0.0.5"], "proxy_protocol_addr": ["2001:DB8::1"]}
    )
    row = (
        attribute(frame, ProxyPolicy(header="proxy_protocol"))
        .collect()
        .row(0, named=True)
    )
    assert (row["client_ip"], row["client_ip_source"]) == (
        "2001:db8::1",
        "proxy_protocol",
    )


def test_auto_prefers_proxy_protocol_then_xff_then_peer() -> None:
    frame = pl.LazyFrame(
        {
            "remote_addr": ["10.0.0.5", "10.0.0.5"],
            "proxy_protocol_addr": ["203.0.113.7", None],
            "http_x_forwarded_for": ["198.51.100.1", "198.51.100.1"],
        }
    )
    out = attribute(frame, ProxyPolicy()).collect()
    # a format that logs $proxy_protocol_addr is read for it; `-` falls back to the peer
    assert out.get_column("client_ip").to_list() == ["203.0.113.7", "10.0.0.5"]


def test_forwarded_header() -> None:
    frame = pl.LazyFrame(
        {
            "remote_addr": ["10.0.0.5"],
            "http_forwarded": [
                'for=192.0.2.43, for="[2001:db8:cafe::17]:4711";proto=https, for=10.1.1.1'
            ],
        }
    )
    row = attribute(frame, ProxyPolicy(header="Forwarded")).collect().row(0, named=True)
    assert (row["client_ip"], row["client_ip_source"]) == (
        "2001:db8:cafe::17",
        "forwarded",
    )


def test_other_strategies() -> None:
    frame = pl.LazyFrame(
        {
            "remote_addr": ["10.0.0.5"],
            "http_x_forwarded_for": ["10.1.1.1, 198.51.100.7, 8.8.8.8, 10.2.2.2"],
        }
    )
    hops = attribute(
        frame, ProxyPolicy(header="X-Forwarded-For", strategy="hops", hops=2)
    )
    assert hops.collect().item(0, "client_ip") == "8.8.8.8"
    left = attribute(
        frame, ProxyPolicy(header="X-Forwarded-For", strategy="leftmost-public")
    )
    assert (
        left.collect().item(0, "client_ip") == "8.8.8.8"
    )  # 198.51.100.0/24 is documentation


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"trusted": ["10.0.0.0/33"]}, "not an address or CIDR range"),
        ({"header": "X-Client"}, "unknown real IP header"),
        ({"strategy": "guess"}, "unknown strategy"),
        ({"hops": 0}, "1 or more"),
    ],
)
def test_bad_policies_are_clear_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(OptionError, match=message):
        ProxyPolicy(**kwargs)


def test_untrusted_peer_without_header_is_not_flagged() -> None:
    row = attributed("198.51.100.1", None, recursive=True)
    assert (row["client_ip"], row["forwarded_by_untrusted"]) == ("198.51.100.1", False)


def _pairs_frame() -> pl.LazyFrame:
    peers = ["10.0.0.5", "10.0.0.5", "203.0.113.50", "10.0.0.6", "10.0.0.5"]
    xffs = ["203.0.113.7", "198.51.100.9, 10.1.1.1", "203.0.113.7", None, "x, y"]
    return pl.LazyFrame(
        {"id": range(5), "remote_addr": peers, "http_x_forwarded_for": xffs}
    )


WANT = ["203.0.113.7", "198.51.100.9", "203.0.113.50", "10.0.0.6", "10.0.0.5"]


def test_decisions_joined_on_the_pair_hash_match_the_text_join() -> None:
    policy = ProxyPolicy(header="X-Forwarded-For")
    keyed = with_pair_key(_pairs_frame(), policy)
    assert PAIR_KEY in keyed.collect_schema().names()
    # eager decisions give rows in no set order: compare by id
    out = attribute(keyed, policy, eager_decisions=True).collect().sort("id")
    assert PAIR_KEY not in out.columns
    assert out.get_column("client_ip").to_list() == WANT
    plain = attribute(_pairs_frame(), policy).collect()
    assert out.equals(plain)


def test_colliding_pair_hashes_fall_back_to_the_text_join() -> None:
    # every pair given the same key: attribution must not merge them
    policy = ProxyPolicy(header="X-Forwarded-For")
    forged = _pairs_frame().with_columns(pl.lit(7, pl.UInt64).alias(PAIR_KEY))
    out = attribute(forged, policy, eager_decisions=True).collect().sort("id")
    assert out.get_column("client_ip").to_list() == WANT
    assert PAIR_KEY not in out.columns


def test_no_pair_key_when_nothing_is_decided() -> None:
    frame = pl.LazyFrame({"proxy_protocol_addr": ["203.0.113.7"]})
    assert with_pair_key(frame).collect_schema().names() == ["proxy_protocol_addr"]
