"""Country, city and autonomous system of client addresses, from MaxMind DB files."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import maxminddb
import polars as pl

from pplog.errors import OptionError, PplogError
from pplog.schema import BODY_BYTES_SENT, BYTES_SENT, CLIENT_IP

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from types import TracebackType
    from typing import Self

    Address = ipaddress.IPv4Address | ipaddress.IPv6Address
    Answer = tuple[str | None, str | None, int | None, str | None]

# Columns added by `enrich` (move to schema.py with the rest of the contract)
COUNTRY = "country"
CITY = "city"
ASN = "asn"
AS_ORG = "as_org"
GEO_COLUMNS = (COUNTRY, CITY, ASN, AS_ORG)
GEO_SCHEMA: dict[str, pl.DataType] = {
    CLIENT_IP: pl.String(),
    COUNTRY: pl.String(),
    CITY: pl.String(),
    ASN: pl.UInt32(),
    AS_ORG: pl.String(),
}

HOW_TO_GET = (
    "no GeoIP database found; pass --geoip FILE.mmdb (GeoLite2 City/Country/ASN "
    "from MaxMind with a free account, or DB-IP Lite) or install one under "
    "/usr/share/GeoIP"
)

DEFAULT_DIRECTORIES = (Path("/usr/share/GeoIP"), Path("/var/lib/GeoIP"))

# File names `default_database_paths` looks for: one file per group, the first
# pattern that matches wins (commercial, then GeoLite2, then DB-IP Lite).
_KNOWN_FILES = (
    ("GeoIP2-City.mmdb", "GeoLite2-City.mmdb", "dbip-city*.mmdb"),
    ("GeoIP2-Country.mmdb", "GeoLite2-Country.mmdb", "dbip-country*.mmdb"),
    ("GeoIP2-ISP.mmdb", "GeoLite2-ASN.mmdb", "dbip-asn*.mmdb"),
)

# domain-spec §5.5: addresses that are not globally routed are never looked up.
# Our own table on purpose: `ipaddress.is_private`/`is_global` changed between
# CPython patch releases and leave 100.64.0.0/10 in neither set.
SPECIAL_RANGES: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "this network"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared address space (CGNAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("255.255.255.255/32", "limited broadcast"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::ffff:0:0/96", "IPv4-mapped"),  # unmapped before classifying
    ("64:ff9b::/96", "NAT64"),
    ("100::/64", "discard-only"),
    ("2001::/32", "Teredo"),
    ("2001:db8::/32", "documentation"),
    ("2002::/16", "6to4"),
    ("fc00::/7", "unique local"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
)


def _compile_ranges() -> dict[int, tuple[tuple[int, int], ...]]:
    """(network, mask) integer pairs per IP version."""
    out: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
    for cidr, _ in SPECIAL_RANGES:
        net = ipaddress.ip_network(cidr)
        out[net.version].append((int(net.network_address), int(net.netmask)))
    return {version: tuple(pairs) for version, pairs in out.items()}


_SPECIAL = _compile_ranges()


class GeoIPError(PplogError):
    """A GeoIP database cannot be opened or read."""


class RecordReader(Protocol):
    """What pplog needs from a MaxMind DB reader (`maxminddb.Reader` has it)."""

    def get(self, ip_address: str, /) -> object:
        """The record for `ip_address`, or None."""

    def close(self) -> None:
        """Release the file."""


@dataclass(frozen=True)
class GeoDatabase:
    """One open MaxMind DB file and what its metadata says about it."""

    path: Path
    database_type: str
    ip_version: int
    reader: RecordReader


@dataclass(frozen=True)
class GeoDatabases:
    """Open location (City/Country) and ASN databases, consulted in order.

    For each address the first database with a record answers: `location`
    gives `country` and `city`, `asn` gives `asn` and `as_org`. Use it as a
    context manager, or call `close`, to release the files.
    """

    location: tuple[GeoDatabase, ...] = ()
    asn: tuple[GeoDatabase, ...] = ()

    def close(self) -> None:
        """Close every database; lookups afterwards raise `GeoIPError`."""
        for db in (*self.location, *self.asn):
            db.reader.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def default_database_paths(
    directories: Iterable[str | os.PathLike[str]] = DEFAULT_DIRECTORIES,
) -> list[Path]:
    """MaxMind DB files installed in the usual places, at most one of each kind.

    Looks for a City, a Country and an ASN database (GeoIP2, then GeoLite2,
    then DB-IP Lite names such as ``dbip-city-lite-2026-11.mmdb``, newest name
    first) in `directories`, in order. Missing directories are skipped.

    Parameters
    ----------
    directories
        Where to look; defaults to ``/usr/share/GeoIP`` and ``/var/lib/GeoIP``.

    Returns
    -------
    list[Path]
        City, Country and ASN files found, in that order; empty when none
        (tell the user `HOW_TO_GET`).
    """
    dirs = [Path(d) for d in directories]
    found: list[Path] = []
    for patterns in _KNOWN_FILES:
        for pattern in patterns:
            matches = [
                p
                for d in dirs
                for p in sorted(d.glob(pattern), reverse=True)
                if p.is_file()
            ]
            if matches:
                found.append(matches[0])
                break
    return found


def _kind(database_type: str) -> str | None:
    """`asn`, `location` or None, from the metadata `database_type`."""
    name = database_type.lower()
    if "asn" in name or "isp" in name:  # GeoLite2-ASN, GeoIP2-ISP, DBIP-ASN-Lite
        return "asn"
    if "city" in name or "country" in name:  # GeoLite2-City, DBIP-Country-Lite
        return "location"
    return None


def _open(path: Path) -> GeoDatabase:
    """Open one file; any failure is a `GeoIPError` naming it."""
    try:
        reader = maxminddb.open_database(path)
        meta = reader.metadata()
    except FileNotFoundError as e:
        msg = f"cannot open GeoIP database `{path}`: no such file; check the path"
        raise GeoIPError(msg) from e
    except (maxminddb.InvalidDatabaseError, ValueError) as e:
        msg = (
            f"cannot open GeoIP database `{path}`: not a valid MaxMind DB file; "
            "download the .mmdb file again"
        )
        raise GeoIPError(msg) from e
    except OSError as e:
        reason = (e.strerror or str(e)).lower()
        msg = f"cannot open GeoIP database `{path}`: {reason}; check the path"
        raise GeoIPError(msg) from e
    if _kind(meta.database_type) is None:
        reader.close()
        msg = (
            f"unsupported GeoIP database type `{meta.database_type}` in `{path}`; "
            "pass a City, Country or ASN database (GeoIP2, GeoLite2 or DB-IP Lite)"
        )
        raise GeoIPError(msg)
    return GeoDatabase(path, meta.database_type, meta.ip_version, reader)


def open_databases(
    paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
) -> GeoDatabases:
    """Open MaxMind DB files and sort them into location and ASN databases.

    The kind comes from each file's metadata ``database_type``: a name
    containing ``ASN`` or ``ISP`` is an ASN database, one containing ``City``
    or ``Country`` a location database (GeoIP2/GeoLite2 and DB-IP Lite
    layouts). Databases of one kind are consulted in the order given.

    Parameters
    ----------
    paths
        ``.mmdb`` files, e.g. from `default_database_paths`.

    Returns
    -------
    GeoDatabases
        Open databases; close them (or use ``with``) when done.

    Raises
    ------
    GeoIPError
        When `paths` is empty, or a file is missing, unreadable, not a
        MaxMind DB, or of another type. Files opened so far are closed.

    Examples
    --------
    >>> with open_databases(["GeoLite2-City.mmdb"]) as dbs:  # doctest: +SKIP
    ...     df = enrich(lf, dbs).collect()
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    if not paths:
        raise GeoIPError(HOW_TO_GET)
    location: list[GeoDatabase] = []
    asn: list[GeoDatabase] = []
    try:
        for path in paths:
            db = _open(Path(path))
            (asn if _kind(db.database_type) == "asn" else location).append(db)
    except GeoIPError:
        GeoDatabases(tuple(location), tuple(asn)).close()
        raise
    return GeoDatabases(tuple(location), tuple(asn))


def _normalise(text: str) -> Address | None:
    """The address in `text` (IPv4-mapped unmapped, zone dropped), or None."""
    try:
        addr = ipaddress.ip_address(text.strip().lower())
    except ValueError:  # `unknown`, `1.2.3.4:80`, `[::1]`, `010.1.1.1`, ...
        return None
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return addr.ipv4_mapped
        if addr.scope_id is not None:
            return ipaddress.IPv6Address(int(addr))
    return addr


def _is_special(addr: Address) -> bool:
    """True when `addr` is in `SPECIAL_RANGES`."""
    value = int(addr)
    return any(value & mask == net for net, mask in _SPECIAL[addr.version])


def _record(databases: tuple[GeoDatabase, ...], addr: Address) -> dict[str, object]:
    """The first database record for `addr`; empty when none has one."""
    for db in databases:
        if addr.version == 6 and db.ip_version == 4:
            continue  # maxminddb would raise ValueError: no IPv6 in this file
        try:
            record = db.reader.get(str(addr))
        except maxminddb.InvalidDatabaseError as e:
            msg = (
                f"cannot read GeoIP database `{db.path}`: the file is corrupt; "
                "download the .mmdb file again"
            )
            raise GeoIPError(msg) from e
        except ValueError as e:
            if getattr(db.reader, "closed", False):
                msg = (
                    f"GeoIP database `{db.path}` is closed; "
                    "look addresses up inside the `with open_databases(...)` block"
                )
                raise GeoIPError(msg) from e
            continue  # e.g. IPv6 in an IPv4-only file whose metadata said 6
        if isinstance(record, dict):
            return record
    return {}


def _text(record: object, *keys: str) -> str | None:
    """``record[k1][k2]...`` when every level exists and the value is text."""
    value = record
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value if isinstance(value, str) and value else None


def _number(value: object) -> int | None:
    """`value` when it is an integer that fits UInt32 (every real AS number)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**32:
        return value
    return None


def _answer(addr: Address, dbs: GeoDatabases) -> Answer:
    """(country, city, asn, as_org) for one global address."""
    place = _record(dbs.location, addr)
    # `country` is absent for networks MaxMind cannot place (anycast, satellite);
    # the registered country is the best remaining answer and keeps them out
    # of the unknown bucket. `city` stays null, so such rows remain visible.
    country = _text(place, "country", "iso_code") or _text(
        place, "registered_country", "iso_code"
    )
    network = _record(dbs.asn, addr)
    return (
        country,
        _text(place, "city", "names", "en"),
        _number(network.get("autonomous_system_number")),
        _text(network, "autonomous_system_organization"),
    )


def geo_table(
    addresses: pl.Series, dbs: GeoDatabases, *, skip_special: bool = True
) -> pl.DataFrame:
    """One row of geo columns per distinct address: the table `enrich` joins.

    Each distinct value is normalised (trimmed, lowercased, ``::ffff:a.b.c.d``
    unmapped to ``a.b.c.d``, an IPv6 zone dropped) and each distinct address
    is looked up once. Use it on an aggregated table, e.g.
    ``table.join(geo_table(table["client_ip"], dbs), on="client_ip",
    how="left")``.

    Parameters
    ----------
    addresses
        Client addresses as text; nulls are ignored.
    dbs
        Open databases from `open_databases`.
    skip_special
        Leave addresses in `SPECIAL_RANGES` (private, loopback, CGNAT,
        documentation, multicast, ...) unlooked-up with null columns, as
        domain-spec §5.5 requires. Pass False to look everything up, e.g. for
        demos with documentation addresses.

    Returns
    -------
    pl.DataFrame
        ``client_ip`` (the input text, unique), ``country`` (ISO 3166 code;
        the registered country when the record has no country), ``city``
        (English name), ``asn`` (UInt32) and ``as_org``. Text that is not an
        address, special addresses and misses give nulls; never raises for a
        bad value.

    Raises
    ------
    GeoIPError
        When a database turns out to be corrupt or has been closed.

    Examples
    --------
    >>> geo_table(pl.Series(["203.0.113.9", "10.0.0.1"]), dbs)  # doctest: +SKIP
    shape: (2, 5)
    ┌─────────────┬─────────┬────────┬───────┬─────────────┐
    │ client_ip   ┆ country ┆ city   ┆ asn   ┆ as_org      │
    │ ---         ┆ ---     ┆ ---    ┆ ---   ┆ ---         │
    │ str         ┆ str     ┆ str    ┆ u32   ┆ str         │
    ╞═════════════╪═════════╪════════╪═══════╪═════════════╡
    │ 203.0.113.9 ┆ AU      ┆ Sydney ┆ 64501 ┆ Example Net │
    │ 10.0.0.1    ┆ null    ┆ null   ┆ null  ┆ null        │
    └─────────────┴─────────┴────────┴───────┴─────────────┘
    """
    texts = addresses.cast(pl.String).drop_nulls().unique(maintain_order=True)
    nothing: Answer = (None, None, None, None)
    answers: dict[Address, Answer] = {}
    rows: list[tuple[str, str | None, str | None, int | None, str | None]] = []
    for text in texts.to_list():
        addr = _normalise(text)
        if addr is None or (skip_special and _is_special(addr)):
            rows.append((text, *nothing))
            continue
        if addr not in answers:
            answers[addr] = _answer(addr, dbs)
        rows.append((text, *answers[addr]))
    return pl.DataFrame(rows, schema=GEO_SCHEMA, orient="row")


def lookup(
    addresses: pl.Series, dbs: GeoDatabases, *, skip_special: bool = True
) -> pl.DataFrame:
    """Geo columns for each address, row for row (see `geo_table`).

    Distinct addresses are looked up once, then joined back, so the result
    has the length and order of `addresses`; null addresses give null rows.

    Examples
    --------
    >>> lookup(pl.Series(["203.0.113.9", "203.0.113.9"]), dbs)  # doctest: +SKIP
    """
    frame = addresses.cast(pl.String).alias(CLIENT_IP).to_frame()
    table = geo_table(addresses, dbs, skip_special=skip_special)
    return frame.join(table, on=CLIENT_IP, how="left", maintain_order="left")


def enrich(
    lf: pl.LazyFrame, dbs: GeoDatabases, *, skip_special: bool = True
) -> pl.LazyFrame:
    """Add ``country``, ``city``, ``asn`` and ``as_org`` to request rows.

    Runs ``lf.select("client_ip").unique()`` once (a small frame: one row per
    client), looks those addresses up with `geo_table`, and returns `lf`
    left-joined to that table. No Python runs per row, but the query behind
    `lf` is evaluated twice (once here, once when the result is collected),
    so enrich a spooled or in-memory frame rather than a raw log scan. For a
    table that is already aggregated per client, `geo_table` plus a join is
    enough. Geo columns already in `lf` are replaced.

    Parameters
    ----------
    lf
        Rows with a ``client_ip`` column.
    dbs
        Open databases from `open_databases`.
    skip_special
        See `geo_table`.

    Returns
    -------
    pl.LazyFrame
        `lf`, in its order, plus the four geo columns (null when unknown).

    Raises
    ------
    OptionError
        When `lf` has no ``client_ip`` column.
    GeoIPError
        When a database is corrupt or closed.

    Examples
    --------
    >>> with open_databases(default_database_paths()) as dbs:  # doctest: +SKIP
    ...     by_country(enrich(lf, dbs)).collect()
    """
    schema = lf.collect_schema()
    if CLIENT_IP not in schema:
        msg = f"frame has no `{CLIENT_IP}` column; read it with pplog.scan_log first"
        raise OptionError(msg)
    ips = lf.select(pl.col(CLIENT_IP).unique()).collect().get_column(CLIENT_IP)
    table = geo_table(ips, dbs, skip_special=skip_special)
    if schema[CLIENT_IP] != pl.String:
        table = table.with_columns(pl.col(CLIENT_IP).cast(schema[CLIENT_IP]))
    return lf.drop(GEO_COLUMNS, strict=False).join(
        table.lazy(), on=CLIENT_IP, how="left", maintain_order="left"
    )


def _bytes(columns: list[str]) -> pl.Expr:
    """Response bytes as `reports._columns.bytes_column` (use it once moved)."""
    for name in (BODY_BYTES_SENT, BYTES_SENT):
        if name in columns:
            return pl.col(name).fill_null(0)
    return pl.lit(0, pl.UInt64)


def _by(lf: pl.LazyFrame, key: str, extra: list[pl.Expr], top: int) -> pl.LazyFrame:
    """Requests, distinct clients and bytes per `key`, busiest first."""
    columns = lf.collect_schema().names()
    if key not in columns:
        msg = f"frame has no `{key}` column; add the geo columns with enrich() first"
        raise OptionError(msg)
    table = lf.group_by(key).agg(
        *extra,
        pl.len().cast(pl.UInt64).alias("requests"),
        pl.col(CLIENT_IP).drop_nulls().n_unique().cast(pl.UInt64).alias("clients"),
        _bytes(columns).sum().cast(pl.UInt64).alias("bytes"),
    )
    # tie-break on the key for stable output; the null (unknown) group stays
    table = table.sort(["requests", key], descending=[True, False], nulls_last=True)
    return table.head(top) if top else table


def by_country(lf: pl.LazyFrame, *, top: int = 10) -> pl.LazyFrame:
    """Requests, distinct clients and bytes per country, busiest first.

    Parameters
    ----------
    lf
        Rows with ``country`` (from `enrich`), ``client_ip`` and, if logged,
        ``body_bytes_sent`` or ``bytes_sent``.
    top
        Number of rows to keep; 0 keeps all. Ties are ordered by country.

    Returns
    -------
    pl.LazyFrame
        ``country``, ``requests``, ``clients``, ``bytes``; a null ``country``
        row counts requests from unknown or special addresses.

    Examples
    --------
    >>> lf = pl.LazyFrame(
    ...     {
    ...         "client_ip": ["203.0.113.9", "203.0.113.9", "10.0.0.1"],
    ...         "country": ["AU", "AU", None],
    ...         "body_bytes_sent": [100, 50, 7],
    ...     }
    ... )
    >>> by_country(lf).collect()
    shape: (2, 4)
    ┌─────────┬──────────┬─────────┬───────┐
    │ country ┆ requests ┆ clients ┆ bytes │
    │ ---     ┆ ---      ┆ ---     ┆ ---   │
    │ str     ┆ u64      ┆ u64     ┆ u64   │
    ╞═════════╪══════════╪═════════╪═══════╡
    │ AU      ┆ 2        ┆ 1       ┆ 150   │
    │ null    ┆ 1        ┆ 1       ┆ 7     │
    └─────────┴──────────┴─────────┴───────┘
    """
    return _by(lf, COUNTRY, [], top)


def by_asn(lf: pl.LazyFrame, *, top: int = 10) -> pl.LazyFrame:
    """Requests, distinct clients and bytes per autonomous system, busiest first.

    Parameters
    ----------
    lf
        Rows with ``asn`` and ``as_org`` (from `enrich`), ``client_ip`` and,
        if logged, ``body_bytes_sent`` or ``bytes_sent``.
    top
        Number of rows to keep; 0 keeps all. Ties are ordered by ASN.

    Returns
    -------
    pl.LazyFrame
        ``asn``, ``as_org`` (null when the database has no name for it),
        ``requests``, ``clients``, ``bytes``; a null ``asn`` row counts
        requests from unknown or special addresses.

    Examples
    --------
    >>> lf = pl.LazyFrame(
    ...     {
    ...         "client_ip": ["203.0.113.9", "198.51.100.7", "198.51.100.8"],
    ...         "asn": pl.Series([64501, 64500, 64500], dtype=pl.UInt32),
    ...         "as_org": ["Example Net", None, None],
    ...         "body_bytes_sent": [100, 50, 7],
    ...     }
    ... )
    >>> by_asn(lf).collect()
    shape: (2, 5)
    ┌───────┬─────────────┬──────────┬─────────┬───────┐
    │ asn   ┆ as_org      ┆ requests ┆ clients ┆ bytes │
    │ ---   ┆ ---         ┆ ---      ┆ ---     ┆ ---   │
    │ u32   ┆ str         ┆ u64      ┆ u64     ┆ u64   │
    ╞═══════╪═════════════╪══════════╪═════════╪═══════╡
    │ 64500 ┆ null        ┆ 2        ┆ 2       ┆ 57    │
    │ 64501 ┆ Example Net ┆ 1        ┆ 1       ┆ 100   │
    └───────┴─────────────┴──────────┴─────────┴───────┘
    """
    # one organisation per ASN in practice; min() ignores nulls and is stable
    return _by(lf, ASN, [pl.col(AS_ORG).min().alias(AS_ORG)], top)
