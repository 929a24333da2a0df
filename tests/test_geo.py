"""GeoIP enrichment against small MaxMind DB files built at test time."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path

import maxminddb
import netaddr
import polars as pl
import pytest
from mmdb_writer import MMDBWriter
from polars.testing import assert_frame_equal

import pplog
from pplog.enrich import (
    HOW_TO_GET,
    GeoDatabase,
    GeoDatabases,
    GeoIPError,
    by_asn,
    by_country,
    default_database_paths,
    enrich,
    geo_table,
    lookup,
    open_databases,
)
from pplog.errors import OptionError

NULL_ROW = {"country": None, "city": None, "asn": None, "as_org": None}
SYDNEY = {"country": "AU", "city": "Sydney", "asn": 64501, "as_org": "Example Net"}


def build_city(path: Path) -> Path:
    """City-like IPv6 database with IPv4 under ::/96 (domain-spec §6.4.6)."""
    w = MMDBWriter(
        ip_version=6,
        database_type="GeoLite2-City",
        languages=["en"],
        description="pplog test city",
        ipv4_compatible=True,
    )
    records = {
        "203.0.113.0/24": {
            "country": {"iso_code": "AU", "names": {"en": "Australia"}},
            "city": {"names": {"en": "Sydney"}},
        },
        "198.51.100.0/24": {"country": {"iso_code": "US"}},
        "2001:db8::/32": {"country": {"iso_code": "DE"}},
        # a city without an English name, and a network placed by registration only
        "192.0.2.0/25": {
            "country": {"iso_code": "DE"},
            "city": {"names": {"de": "München"}},
        },
        "192.0.2.128/25": {"registered_country": {"iso_code": "NL"}},
    }
    for cidr, record in records.items():
        w.insert_network(netaddr.IPSet([cidr]), record)
    w.to_db_file(str(path))
    return path


def build_asn(path: Path) -> Path:
    """IPv4-only ASN database; one AS without an organisation."""
    w = MMDBWriter(
        ip_version=4,
        database_type="GeoLite2-ASN",
        languages=["en"],
        description="pplog test asn",
    )
    w.insert_network(
        netaddr.IPSet(["198.51.100.0/24"]), {"autonomous_system_number": 64500}
    )
    w.insert_network(
        netaddr.IPSet(["203.0.113.0/24"]),
        {
            "autonomous_system_number": 64501,
            "autonomous_system_organization": "Example Net",
        },
    )
    w.to_db_file(str(path))
    return path


@pytest.fixture(scope="module")
def mmdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("mmdb")
    build_city(d / "city.mmdb")
    build_asn(d / "asn.mmdb")
    return d


@pytest.fixture
def dbs(mmdb_dir: Path) -> Iterator[GeoDatabases]:
    with open_databases([mmdb_dir / "city.mmdb", mmdb_dir / "asn.mmdb"]) as opened:
        yield opened


class CountingReader:
    """A reader that counts `get` calls and forwards them (or answers `fixed`)."""

    def __init__(
        self, inner: object = None, fixed: dict[str, object] | None = None
    ) -> None:
        self.inner = inner
        self.fixed = fixed
        self.calls: list[str] = []

    def get(self, ip_address: str, /) -> object:
        self.calls.append(ip_address)
        if self.inner is None:
            return self.fixed
        return self.inner.get(ip_address)  # type: ignore[attr-defined]

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()  # type: ignore[attr-defined]


def counting(dbs: GeoDatabases) -> tuple[GeoDatabases, CountingReader, CountingReader]:
    loc = CountingReader(dbs.location[0].reader)
    asn = CountingReader(dbs.asn[0].reader)
    wrapped = GeoDatabases(
        location=(dataclasses.replace(dbs.location[0], reader=loc),),
        asn=(dataclasses.replace(dbs.asn[0], reader=asn),),
    )
    return wrapped, loc, asn


def one(address: str, dbs: GeoDatabases, **kwargs: bool) -> dict[str, object]:
    row = geo_table(pl.Series([address]), dbs, **kwargs).row(0, named=True)
    assert row.pop("client_ip") == address  # the input text, unchanged
    return row


# --- opening -------------------------------------------------------------------


def test_databases_are_classified_by_metadata(dbs: GeoDatabases) -> None:
    assert [d.database_type for d in dbs.location] == ["GeoLite2-City"]
    assert [d.database_type for d in dbs.asn] == ["GeoLite2-ASN"]
    assert (dbs.location[0].ip_version, dbs.asn[0].ip_version) == (6, 4)


def test_order_of_paths_does_not_matter(mmdb_dir: Path) -> None:
    with open_databases([mmdb_dir / "asn.mmdb", str(mmdb_dir / "city.mmdb")]) as d:
        assert one("203.0.113.9", d, skip_special=False) == SYDNEY


def test_a_single_path_is_accepted(mmdb_dir: Path) -> None:
    with open_databases(mmdb_dir / "city.mmdb") as d:
        assert len(d.location) == 1 and d.asn == ()


def test_missing_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "GeoLite2-City.mmdb"
    with pytest.raises(GeoIPError, match="no such file") as info:
        open_databases([missing])
    assert str(missing) in str(info.value)


@pytest.mark.parametrize(
    "content",
    [b"", b"not a maxmind database\n" * 50],
    ids=["empty", "garbage"],
)
def test_corrupt_file_names_it(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(content)
    with pytest.raises(GeoIPError, match="not a valid MaxMind DB") as info:
        open_databases([bad])
    assert f"`{bad}`" in str(info.value)
    assert "\n" not in str(info.value)


def test_truncated_file_names_it(tmp_path: Path, mmdb_dir: Path) -> None:
    data = (mmdb_dir / "city.mmdb").read_bytes()
    bad = tmp_path / "truncated.mmdb"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(GeoIPError, match="truncated.mmdb"):
        open_databases([bad])


def test_directory_is_not_a_database(tmp_path: Path) -> None:
    with pytest.raises(GeoIPError, match=str(tmp_path)):
        open_databases([tmp_path])


def test_corrupt_search_tree_surfaces_once(tmp_path: Path, mmdb_dir: Path) -> None:
    data = bytearray((mmdb_dir / "city.mmdb").read_bytes())
    data[:200] = b"\xff" * 200  # metadata intact, tree nonsense
    bad = tmp_path / "tree.mmdb"
    bad.write_bytes(bytes(data))
    with (
        open_databases([bad]) as d,
        pytest.raises(GeoIPError, match="tree.mmdb.*corrupt"),
    ):
        geo_table(pl.Series(["203.0.113.9", "203.0.113.10"]), d, skip_special=False)


def test_unsupported_database_type(tmp_path: Path) -> None:
    w = MMDBWriter(ip_version=4, database_type="GeoIP2-Anonymous-IP")
    w.insert_network(netaddr.IPSet(["192.0.2.0/24"]), {"is_anonymous": True})
    path = tmp_path / "anon.mmdb"
    w.to_db_file(str(path))
    with pytest.raises(GeoIPError, match="unsupported GeoIP database type"):
        open_databases([path])


def test_files_opened_before_an_error_are_closed(
    tmp_path: Path, mmdb_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readers: list[object] = []
    real_open = maxminddb.open_database

    def spy(path: object) -> object:
        reader = real_open(path)
        readers.append(reader)
        return reader

    monkeypatch.setattr(maxminddb, "open_database", spy)
    with pytest.raises(GeoIPError):
        open_databases([mmdb_dir / "city.mmdb", tmp_path / "missing.mmdb"])
    assert [r.closed for r in readers] == [True]  # type: ignore[attr-defined]


def test_no_paths_explains_how_to_get_one() -> None:
    with pytest.raises(GeoIPError) as info:
        open_databases([])
    assert str(info.value) == HOW_TO_GET
    assert HOW_TO_GET.startswith("no GeoIP database found; ")


def test_closed_databases_raise(mmdb_dir: Path) -> None:
    with open_databases([mmdb_dir / "city.mmdb"]) as d:
        pass
    assert d.location[0].reader.closed  # type: ignore[attr-defined]
    with pytest.raises(GeoIPError, match="is closed"):
        geo_table(pl.Series(["8.8.8.8"]), d)


# --- default paths -------------------------------------------------------------


def test_default_database_paths(tmp_path: Path) -> None:
    first, second = tmp_path / "usr-share", tmp_path / "var-lib"
    first.mkdir()
    second.mkdir()
    for name in ["GeoLite2-City.mmdb", "other.mmdb", "GeoLite2-ASN.mmdb.tmp"]:
        (first / name).touch()
    for name in [
        "GeoLite2-City.mmdb",
        "dbip-country-lite-2026-10.mmdb",
        "dbip-country-lite-2026-11.mmdb",
        "dbip-asn-lite-2026-11.mmdb",
        "README.txt",
    ]:
        (second / name).touch()
    found = default_database_paths([first, second, tmp_path / "absent"])
    assert found == [
        first / "GeoLite2-City.mmdb",
        second / "dbip-country-lite-2026-11.mmdb",
        second / "dbip-asn-lite-2026-11.mmdb",
    ]


def test_default_database_paths_empty(tmp_path: Path) -> None:
    assert default_database_paths([tmp_path, tmp_path / "absent"]) == []


def test_default_paths_open(tmp_path: Path, mmdb_dir: Path) -> None:
    shutil.copy(mmdb_dir / "city.mmdb", tmp_path / "GeoLite2-City.mmdb")
    shutil.copy(mmdb_dir / "asn.mmdb", tmp_path / "GeoLite2-ASN.mmdb")
    with open_databases(default_database_paths([tmp_path])) as d:
        assert one("203.0.113.9", d, skip_special=False) == SYDNEY


# --- lookups (domain-spec §7.9) -------------------------------------------------


def test_ipv4_hit_in_ipv6_database(dbs: GeoDatabases, mmdb_dir: Path) -> None:
    assert one("203.0.113.9", dbs, skip_special=False) == SYDNEY
    # edge case 45: the prefix is reported relative to IPv4
    with maxminddb.open_database(mmdb_dir / "city.mmdb") as reader:
        assert reader.get_with_prefix_len("203.0.113.9")[1] == 24


def test_ipv6_hit(dbs: GeoDatabases) -> None:
    # the ASN database is IPv4-only: no crash, null asn
    assert one("2001:db8::1", dbs, skip_special=False) == {**NULL_ROW, "country": "DE"}


def test_ipv6_in_ipv4_database_whose_metadata_says_ipv6(dbs: GeoDatabases) -> None:
    # the reader raises ValueError; the address gets nulls, not an exception
    lying = dataclasses.replace(dbs.asn[0], ip_version=6)
    d = GeoDatabases(location=dbs.location, asn=(lying,))
    assert one("2001:db8::1", d, skip_special=False) == {**NULL_ROW, "country": "DE"}


@pytest.mark.parametrize(
    "text",
    [
        "::ffff:203.0.113.9",  # misses in mmdb-writer files unless unmapped
        "::FFFF:203.0.113.9",
        "::ffff:cb00:7109",
        " 203.0.113.9\t",
    ],
)
def test_addresses_are_normalised(dbs: GeoDatabases, text: str) -> None:
    assert one(text, dbs, skip_special=False) == SYDNEY


def test_uppercase_ipv6(dbs: GeoDatabases) -> None:
    assert one("2001:DB8::A", dbs, skip_special=False)["country"] == "DE"


def test_record_without_city(dbs: GeoDatabases) -> None:
    row = one("198.51.100.7", dbs, skip_special=False)
    assert row == {"country": "US", "city": None, "asn": 64500, "as_org": None}


def test_city_without_english_name(dbs: GeoDatabases) -> None:
    row = one("192.0.2.1", dbs, skip_special=False)
    assert row == {**NULL_ROW, "country": "DE"}


def test_registered_country_is_the_fallback(dbs: GeoDatabases) -> None:
    assert one("192.0.2.200", dbs, skip_special=False) == {**NULL_ROW, "country": "NL"}


@pytest.mark.parametrize("text", ["8.8.8.8", "2606:4700::1111", "1.0.0.1"])
def test_miss_gives_nulls(dbs: GeoDatabases, text: str) -> None:
    assert one(text, dbs) == NULL_ROW


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-",
        "unknown",
        "_hidden",
        "203.0.113.9:443",
        "[2001:db8::1]",
        "[2001:db8::1]:8080",
        "010.1.1.1",
        "999.1.1.1",
        "203.0.113",
        "not an address",
    ],
)
def test_unparsable_text_gives_nulls(dbs: GeoDatabases, text: str) -> None:
    assert one(text, dbs, skip_special=False) == NULL_ROW


def test_documentation_ranges_are_skipped_by_default(dbs: GeoDatabases) -> None:
    wrapped, loc, asn = counting(dbs)
    texts = ["203.0.113.9", "198.51.100.7", "2001:db8::1", "::ffff:192.0.2.1"]
    table = geo_table(pl.Series(texts), wrapped)
    assert table.select("country", "city", "asn", "as_org").null_count().row(0) == (
        4,
        4,
        4,
        4,
    )
    assert loc.calls == [] and asn.calls == []


@pytest.mark.parametrize(
    "text",
    [
        "10.0.0.1",
        "127.0.0.1",
        "192.168.1.1",
        "172.16.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "::1",
        "fe80::1%eth0",
        "fd00::1",
        "::ffff:10.0.0.1",
    ],
)
def test_private_addresses_are_not_looked_up(dbs: GeoDatabases, text: str) -> None:
    wrapped, loc, asn = counting(dbs)
    assert one(text, wrapped) == NULL_ROW
    assert loc.calls == [] and asn.calls == []


def stub_databases() -> tuple[GeoDatabases, CountingReader]:
    """Databases whose one reader places every address in country ZZ."""
    reader = CountingReader(fixed={"country": {"iso_code": "ZZ"}})
    db = GeoDatabase(Path("stub.mmdb"), "GeoLite2-Country", 6, reader)
    return GeoDatabases(location=(db,)), reader


SPECIAL = [
    "0.0.0.0",
    "0.255.255.255",
    "10.255.255.255",
    "100.64.0.0",
    "100.127.255.255",
    "127.255.255.255",
    "169.254.0.0",
    "172.31.255.255",
    "192.0.0.8",
    "192.0.2.255",
    "192.88.99.1",
    "192.168.255.255",
    "198.18.0.0",
    "198.19.255.255",
    "198.51.100.0",
    "203.0.113.255",
    "224.0.0.1",
    "239.255.255.255",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "::ffff:127.0.0.1",
    "64:ff9b::808:808",
    "100::1",
    "2001::1",
    "2001:0:ffff:ffff:ffff:ffff:ffff:ffff",
    "2001:db8:ffff::1",
    "2002:cb00:7109::1",
    "fc00::1",
    "fdff:ffff::1",
    "fe80::1",
    "febf::1",
    "ff02::1",
]
GLOBAL = [
    "1.1.1.1",
    "9.255.255.255",
    "11.0.0.0",
    "100.63.255.255",
    "100.128.0.0",
    "126.255.255.255",
    "128.0.0.0",
    "169.253.255.255",
    "172.15.255.255",
    "172.32.0.0",
    "192.0.1.255",
    "192.0.3.0",
    "192.167.255.255",
    "198.17.255.255",
    "198.20.0.0",
    "203.0.114.0",
    "223.255.255.255",
    "::2",
    "::ffff:8.8.8.8",
    "64:ff9b::1:0:0",
    "100::1:0:0:0:0",
    "2001:1::1",
    "2001:db7:ffff::1",
    "2001:db9::1",
    "2003::1",
    "2606:4700::1111",
    "fbff::1",
    "fec0::1",
]


@pytest.mark.parametrize("text", SPECIAL)
def test_special_range_table(text: str) -> None:
    d, reader = stub_databases()
    assert one(text, d)["country"] is None
    assert reader.calls == []
    assert one(text, d, skip_special=False)["country"] == "ZZ"


@pytest.mark.parametrize("text", GLOBAL)
def test_global_addresses_are_looked_up(text: str) -> None:
    d, reader = stub_databases()
    assert one(text, d)["country"] == "ZZ"
    assert len(reader.calls) == 1


def test_each_distinct_address_is_looked_up_once(dbs: GeoDatabases) -> None:
    wrapped, loc, asn = counting(dbs)
    ips = [f"203.0.113.{i % 100}" for i in range(100_000)]
    lf = pl.LazyFrame({"client_ip": ips, "body_bytes_sent": [1] * len(ips)})
    out = enrich(lf, wrapped, skip_special=False).collect()
    assert out.height == 100_000
    assert (len(loc.calls), len(asn.calls)) == (100, 100)
    assert out.get_column("city").unique().to_list() == ["Sydney"]


def test_spellings_of_one_address_share_a_lookup(dbs: GeoDatabases) -> None:
    wrapped, loc, _ = counting(dbs)
    texts = ["203.0.113.9", "::ffff:203.0.113.9", " 203.0.113.9", "203.0.113.9"]
    table = geo_table(pl.Series(texts), wrapped, skip_special=False)
    assert table.get_column("client_ip").to_list() == texts[:3]
    assert table.get_column("city").to_list() == ["Sydney"] * 3
    assert loc.calls == ["203.0.113.9"]


def test_geo_table_schema_and_empty_input(dbs: GeoDatabases) -> None:
    table = geo_table(pl.Series("client_ip", [None], dtype=pl.String), dbs)
    assert table.schema == pl.Schema(
        {
            "client_ip": pl.String,
            "country": pl.String,
            "city": pl.String,
            "asn": pl.UInt32,
            "as_org": pl.String,
        }
    )
    assert table.height == 0


def test_lookup_keeps_length_and_order(dbs: GeoDatabases) -> None:
    texts = ["2001:db8::1", None, "203.0.113.9", "garbage", "2001:db8::1"]
    got = lookup(pl.Series(texts, dtype=pl.String), dbs, skip_special=False)
    expected = pl.DataFrame(
        {
            "client_ip": texts,
            "country": ["DE", None, "AU", None, "DE"],
            "city": [None, None, "Sydney", None, None],
            "asn": pl.Series([None, None, 64501, None, None], dtype=pl.UInt32),
            "as_org": [None, None, "Example Net", None, None],
        }
    )
    assert_frame_equal(got, expected)


# --- enrich and the report tables -----------------------------------------------


@pytest.fixture
def requests() -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "client_ip": [
                "203.0.113.9",
                "203.0.113.10",
                "203.0.113.9",
                "198.51.100.7",
                "2001:db8::1",
                "10.0.0.1",
                None,
            ],
            "body_bytes_sent": pl.Series([100, 200, 300, 40, 5, 6, 7], dtype=pl.UInt64),
        }
    )


def test_enrich_adds_columns_in_row_order(
    dbs: GeoDatabases, requests: pl.LazyFrame
) -> None:
    out = enrich(requests, dbs, skip_special=False).collect()
    assert out.columns == [
        "client_ip",
        "body_bytes_sent",
        "country",
        "city",
        "asn",
        "as_org",
    ]
    assert (
        out.get_column("client_ip").to_list()
        == requests.collect()["client_ip"].to_list()
    )
    assert out.get_column("country").to_list() == [
        "AU",
        "AU",
        "AU",
        "US",
        "DE",
        None,
        None,
    ]
    assert out.get_column("asn").to_list() == [
        64501,
        64501,
        64501,
        64500,
        None,
        None,
        None,
    ]


def test_enrich_skips_documentation_ranges_by_default(
    dbs: GeoDatabases, requests: pl.LazyFrame
) -> None:
    out = enrich(requests, dbs).collect()
    assert out.select("country", "city", "asn", "as_org").null_count().row(0) == (
        7,
        7,
        7,
        7,
    )


def test_enrich_replaces_existing_geo_columns(
    dbs: GeoDatabases, requests: pl.LazyFrame
) -> None:
    once = enrich(requests, dbs, skip_special=False)
    twice = enrich(once, dbs, skip_special=False)
    assert_frame_equal(twice.collect(), once.collect())


def test_enrich_same_on_both_engines(dbs: GeoDatabases, requests: pl.LazyFrame) -> None:
    lf = enrich(requests, dbs, skip_special=False)
    assert_frame_equal(lf.collect(), lf.collect(engine="streaming"))


def test_enrich_categorical_client_ip(dbs: GeoDatabases) -> None:
    lf = pl.LazyFrame(
        {"client_ip": pl.Series(["203.0.113.9", "10.0.0.1"], dtype=pl.Categorical)}
    )
    out = enrich(lf, dbs, skip_special=False).collect()
    assert out.get_column("city").to_list() == ["Sydney", None]


def test_enrich_needs_client_ip(dbs: GeoDatabases) -> None:
    with pytest.raises(OptionError, match="no `client_ip` column"):
        enrich(pl.LazyFrame({"remote_addr": ["203.0.113.9"]}), dbs)


def test_by_country(dbs: GeoDatabases, requests: pl.LazyFrame) -> None:
    geo = enrich(requests, dbs, skip_special=False)
    expected = pl.DataFrame(
        {
            "country": ["AU", None, "DE", "US"],
            "requests": [3, 2, 1, 1],
            "clients": [2, 1, 1, 1],
            "bytes": [600, 13, 5, 40],
        },
        schema_overrides={
            "requests": pl.UInt64,
            "clients": pl.UInt64,
            "bytes": pl.UInt64,
        },
    )
    assert_frame_equal(by_country(geo).collect(), expected)
    assert_frame_equal(by_country(geo, top=2).collect(), expected.head(2))


def test_by_asn(dbs: GeoDatabases, requests: pl.LazyFrame) -> None:
    geo = enrich(requests, dbs, skip_special=False)
    expected = pl.DataFrame(
        {
            "asn": pl.Series([64501, None, 64500], dtype=pl.UInt32),
            "as_org": ["Example Net", None, None],
            "requests": [3, 3, 1],
            "clients": [2, 2, 1],
            "bytes": [600, 18, 40],
        },
        schema_overrides={
            "requests": pl.UInt64,
            "clients": pl.UInt64,
            "bytes": pl.UInt64,
        },
    )
    assert_frame_equal(by_asn(geo, top=0).collect(), expected)


def test_reports_without_bytes_column(dbs: GeoDatabases) -> None:
    lf = enrich(pl.LazyFrame({"client_ip": ["203.0.113.9"]}), dbs, skip_special=False)
    row = by_country(lf).collect().row(0, named=True)
    assert row == {"country": "AU", "requests": 1, "clients": 1, "bytes": 0}


def test_reports_need_geo_columns(requests: pl.LazyFrame) -> None:
    with pytest.raises(OptionError, match="no `country` column"):
        by_country(requests)
    with pytest.raises(OptionError, match="no `asn` column"):
        by_asn(requests)


def test_summarize_with_geoip_adds_country_and_network_tables(tmp_path: Path) -> None:
    """End to end: --geoip files give clients a country and ASN, plus two tables."""
    import pplog

    city, asn = build_city(tmp_path / "city.mmdb"), build_asn(tmp_path / "asn.mmdb")
    log = tmp_path / "access.log"
    line = (
        '{ip} - - [27/Nov/2026:06:01:02 +0000] "GET / HTTP/1.1" 200 10 "-" "curl/8.5.0"'
    )
    log.write_text(
        "\n".join(line.format(ip=ip) for ip in ["203.0.113.9"] * 3 + ["198.51.100.7"])
        + "\n"
    )
    s = pplog.summarize(
        log, format="combined", geoip=[city, asn], geoip_skip_special=False
    )
    assert s.clients.select("client_ip", "country", "asn").rows() == [
        ("203.0.113.9", "AU", 64501),
        ("198.51.100.7", "US", 64500),
    ]
    assert s.extra["countries"].select("country", "requests").rows() == [
        ("AU", 3),
        ("US", 1),
    ]
    assert s.extra["networks"].get_column("asn").to_list() == [64501, 64500]
    assert s.geoip == "GeoIP: city.mmdb, asn.mmdb"


def test_summarize_without_database_says_how_to_get_one(tmp_path: Path) -> None:
    import pplog

    log = tmp_path / "access.log"
    log.write_text(
        '203.0.113.9 - - [27/Nov/2026:06:01:02 +0000] "GET / HTTP/1.1" 200 1 "-" "-"\n'
    )
    s = pplog.summarize(log, format="combined")
    if s.geoip is not None and s.geoip.startswith("GeoIP:"):
        pytest.skip("this machine has a GeoIP database in the usual directories")
    assert s.geoip is not None and "--geoip FILE.mmdb" in s.geoip
    assert "countries" not in s.extra


def test_read_log_with_geoip_adds_row_columns(tmp_path: Path) -> None:
    import pplog

    city, asn = build_city(tmp_path / "city.mmdb"), build_asn(tmp_path / "asn.mmdb")
    log = tmp_path / "access.log"
    log.write_text(
        '10.0.0.9 - - [27/Nov/2026:06:01:02 +0000] "GET / HTTP/1.1" 200 1 "-" "curl/8.5.0"\n'
    )
    df = pplog.read_log(log, format="combined", geoip=[city, asn])
    assert df.select("client_ip", "country", "city", "asn", "as_org").row(0) == (
        "10.0.0.9",
        None,  # private: never looked up
        None,
        None,
        None,
    )
    assert df.item(0, "agent_class") == "tool"


def test_scan_log_of_stdin_with_geoip_keeps_every_row(mmdb_dir: Path) -> None:
    """The GeoIP lookup reads the distinct clients first, then the rows:
    from stdin the rows came out empty."""
    import subprocess
    import sys

    log = Path(__file__).resolve().parent.parent / "sample_logs" / "elb-access.log"
    dbs = [str(mmdb_dir / "city.mmdb"), str(mmdb_dir / "asn.mmdb")]
    script = (
        "import sys, pplog; "
        f"df = pplog.scan_log('-', geoip={dbs!r}).collect(); "
        "print(df.height, df.get_column('country').drop_nulls().len())"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        input=log.read_bytes(),
        capture_output=True,
        check=True,
    )
    rows, located = (int(x) for x in proc.stdout.split())
    expected = pplog.read_log(log, geoip=dbs)
    assert rows == expected.height == 3000
    assert located == expected.get_column("country").drop_nulls().len()
