"""Row enrichment: columns added per request, such as the client's country and AS."""

from __future__ import annotations

from pplog.enrich.geo import (
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

__all__ = [
    "HOW_TO_GET",
    "GeoDatabase",
    "GeoDatabases",
    "GeoIPError",
    "by_asn",
    "by_country",
    "default_database_paths",
    "enrich",
    "geo_table",
    "lookup",
    "open_databases",
]
