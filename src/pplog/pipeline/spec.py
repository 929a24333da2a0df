"""`LogSpec`: how to read a set of logs, as one value; `FileGroup`: what it
resolves to for some inputs (`LogSpec.groups`), each group read with one format.

Which format (forced, or detected per input), whom to believe about client
addresses, which GeoIP files to use and which rows the reports look at. The
CLI builds one with a single decorator; the API takes one (`spec=`) or the
keywords that build one. It is frozen and picklable: a worker process gets
the same value the command line built.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pplog.clientip import ProxyPolicy
from pplog.errors import LogFormatError, OptionError, described
from pplog.formats import LogFormat, RealIPSettings
from pplog.pipeline.filters import Filters

if TYPE_CHECKING:
    from pplog.sources import Source


@dataclass
class FileGroup:
    """Inputs read with one format: a rotation set, or every input when forced.

    `format` is None when no preset fits (the lines are then rejects).
    `notes` says how each input's format was chosen, where groups detected
    apart were merged (else `note` says it for all). `zone`: see
    `zone_lines`.
    """

    sources: list[Source]
    format: LogFormat | None
    note: str | None
    policy: ProxyPolicy = field(default_factory=lambda: ProxyPolicy())
    notes: dict[str, str | None] = field(default_factory=dict)
    # only the lines a format reads (True) or does not (False): the two
    # groups of the lines where a file's old and new log_format interleave
    zone: tuple[LogFormat, bool] | None = None
    # told of an input once, by name: a member its set's format and no
    # preset read (`_detect_members`' misfits)
    warnings: dict[str, str] = field(default_factory=dict)

    def copy(self, sources: Sequence[Source] | None = None) -> FileGroup:
        """This group with lists and dicts of its own, and `sources` when
        given instead of its inputs."""
        return replace(
            self,
            sources=list(self.sources if sources is None else sources),
            notes=dict(self.notes),
            warnings=dict(self.warnings),
        )


# Keywords of `LogSpec.build` that are filters, in `Filters.parse`'s names.
FILTER_KEYWORDS = ("since", "until", "status", "client", "path")


@dataclass(frozen=True)
class LogSpec:
    """How to read logs: format inputs, proxy policy, GeoIP files, row filters.

    Attributes
    ----------
    format
        A preset name, a `LogFormat`, or ``"auto"`` (detected per input).
    log_format, nginx_conf, log_format_name
        An nginx ``log_format`` string, or a configuration to read it (and the
        realip settings) from, optionally by name.
    trusted, real_ip_header, recursive, policy
        Whom to believe about client addresses (nginx's realip settings), or
        a ready `ProxyPolicy`. Unset values come from `nginx_conf`, else the
        defaults.
    geoip, geoip_skip_special
        MaxMind DB files (None: the usual directories) and whether private
        and other special addresses are left unlooked-up.
    filters, exclude_bots
        Which requests the tables look at.
    """

    format: str | LogFormat | None = "auto"
    log_format: str | None = None
    nginx_conf: str | None = None
    log_format_name: str | None = None
    trusted: tuple[str, ...] | None = None
    real_ip_header: str | None = None
    recursive: bool | None = None
    policy: ProxyPolicy | None = None
    geoip: tuple[str, ...] | None = None
    geoip_skip_special: bool = True
    filters: Filters = field(default_factory=Filters)
    exclude_bots: bool = False

    def __post_init__(self) -> None:
        _check_types(self)
        if self.log_format is not None and self.nginx_conf is not None:
            msg = "give either a log format string or an nginx configuration, not both"
            raise OptionError(msg)
        if self.log_format is not None and self.format not in (None, "auto"):
            # the string wins: the preset would be silently dropped
            msg = "give either a preset or a log format string, not both"
            raise OptionError(msg)
        realip = [
            name
            for name in ("trusted", "real_ip_header", "recursive")
            if getattr(self, name) is not None
        ]
        if self.policy is not None and realip:
            # the policy holds them: one would be silently dropped
            names = ", ".join(f"`{n}`" for n in realip)
            msg = f"give `policy` or {names}, not both"
            raise OptionError(msg)

    @classmethod
    def build(
        cls,
        *,
        format: str | LogFormat | None = "auto",  # noqa: A002 - mirrors --format
        log_format: str | None = None,
        nginx_conf: str | os.PathLike[str] | None = None,
        log_format_name: str | None = None,
        trusted: Sequence[str] | None = None,
        real_ip_header: str | None = None,
        recursive: bool | None = None,
        policy: ProxyPolicy | None = None,
        geoip: Sequence[str | os.PathLike[str]] | None = None,
        geoip_skip_special: bool = True,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        status: str | Sequence[str] | None = None,
        client: str | Sequence[str] | None = None,
        path: str | Sequence[str] | None = None,
        exclude_bots: bool = False,
    ) -> LogSpec:
        """A spec from the keywords `summarize`, `scan_log` and the CLI take.

        Filters are parsed here (``--since 1h`` is fixed to a point in time
        once), so every worker of a run filters the same window.
        """
        if isinstance(trusted, str | bytes) or not isinstance(trusted, Iterable | None):
            trusted = [trusted]  # one range, or refused
        if isinstance(geoip, str | os.PathLike):
            geoip = [geoip]
        return cls(
            format=format,
            log_format=log_format,
            nginx_conf=os.fspath(nginx_conf) if nginx_conf is not None else None,
            log_format_name=log_format_name,
            trusted=tuple(trusted) if trusted is not None else None,
            real_ip_header=real_ip_header,
            recursive=recursive,
            policy=policy,
            # () is kept: `ingest` reads it as GeoIP off, None as the usual places
            geoip=tuple(os.fspath(g) for g in geoip) if geoip is not None else None,
            geoip_skip_special=geoip_skip_special,
            filters=Filters.parse(
                since=since, until=until, status=status, client=client, path=path
            ),
            exclude_bots=exclude_bots,
        )

    @classmethod
    def of(cls, spec: LogSpec | None, **keywords: Any) -> LogSpec:  # noqa: ANN401
        """`spec` itself, or one built from `keywords`; not both.

        Keywords left at their defaults do not count as given.
        """
        given = {
            k: v
            for k, v in keywords.items()
            if v != _DEFAULTS.get(k) and not (k == "format" and v is None)
        }
        if spec is None:
            return cls.build(**given)
        if not isinstance(spec, LogSpec):
            msg = (
                f"`spec` is a `LogSpec`, not {described(spec)}; pass the format and "
                "the other settings as keywords instead (`format=`, `trusted=`, ...)"
            )
            raise OptionError(msg)
        if given:
            names = ", ".join(f"`{k}`" for k in sorted(given))
            msg = f"give `spec` or {names}, not both"
            raise OptionError(msg)
        return spec

    def with_(self, **changes: Any) -> LogSpec:  # noqa: ANN401
        """A copy with some attributes changed."""
        return replace(self, **changes)

    @property
    def forced(self) -> bool:
        """True when the format is given rather than detected per input."""
        return (
            self.format not in (None, "auto")
            or self.log_format is not None
            or self.log_format_name is not None
        )

    @property
    def reads_options(self) -> bool:
        """True when any format or real-IP setting is given (a dataset refuses them)."""
        return bool(
            self.format not in (None, "auto")
            or self.log_format
            or self.nginx_conf
            or self.trusted
            or self.real_ip_header
            or self.recursive is not None
            or self.policy
        )

    def resolve_policy(
        self,
        fmt: LogFormat | None = None,
        *,
        conf: tuple[RealIPSettings | LogFormatError | None] | None = None,
    ) -> ProxyPolicy:
        """The proxy policy for inputs read with `fmt` (see `resolve_policy`;
        `conf`: the realip settings where the inputs' `access_log` stands)."""
        from pplog.pipeline.opening import resolve_policy

        return resolve_policy(
            self.policy,
            trusted=self.trusted,
            real_ip_header=self.real_ip_header,
            recursive=self.recursive,
            nginx_conf=self.nginx_conf,
            fmt=fmt,
            conf=conf,
        )

    def groups(
        self, srcs: Sequence[Source], *, error_logs: bool = False, changes: bool = True
    ) -> list[FileGroup]:
        """The inputs in groups of one format and policy (detected if need be).

        `error_logs`, `changes`: as for `resolve_groups` (the caller reads
        nginx error logs too; lines in a format the configuration no longer
        names are read with a preset)."""
        from pplog.pipeline.detect import logs_realip, resolve_groups
        from pplog.pipeline.opening import merge_same

        groups = resolve_groups(
            list(srcs),
            self.format,
            log_format=self.log_format,
            nginx_conf=self.nginx_conf,
            log_format_name=self.log_format_name,
            error_logs=error_logs,
            changes=changes,
        )
        if self.nginx_conf is None or self.policy is not None:
            for g in groups:
                g.policy = self.resolve_policy(g.format)
            return merge_same(groups)
        # each file read with the realip settings where its `access_log`
        # stands: two servers may log one format with different ones
        named = logs_realip(self.nginx_conf)
        split: list[FileGroup] = []
        known: dict[tuple[Any, ...], ProxyPolicy] = {}  # thousands of vhost logs
        for g in groups:
            parts: dict[ProxyPolicy, list[Source]] = {}
            for src in g.sources:
                conf = named(src)
                key = (g.format, conf)
                if key not in known:
                    known[key] = self.resolve_policy(g.format, conf=conf)
                parts.setdefault(known[key], []).append(src)
            for policy, members in parts.items():
                notes = {m.name: g.notes[m.name] for m in members if m.name in g.notes}
                split.append(replace(g.copy(members), policy=policy, notes=notes))
        return merge_same(split)


_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in fields(LogSpec) if f.name not in ("filters",)
} | dict.fromkeys(FILTER_KEYWORDS)
_DEFAULTS["format"] = "auto"


def _check_types(spec: LogSpec) -> None:
    """Refuse settings of the wrong type from a notebook with a message
    naming them, before they fail deep inside a read."""
    texts = ("log_format", "nginx_conf", "log_format_name", "real_ip_header")
    for name in texts:
        value = getattr(spec, name)
        if value is not None and not isinstance(value, str):
            msg = f"`{name}` is text, not {described(value)}"
            raise OptionError(msg)
    if spec.format is not None and not isinstance(spec.format, str | LogFormat):
        shown = described(spec.format)
        msg = f"`format` is a preset name, `auto` or a `LogFormat`, not {shown}"
        raise OptionError(msg)
    for value in spec.trusted or ():
        if not isinstance(value, str):
            msg = (
                "`trusted` takes addresses and CIDR ranges as text "
                f'(`"10.0.0.0/8"`), not {described(value)}'
            )
            raise OptionError(msg)
    if spec.recursive is not None and not isinstance(spec.recursive, bool):
        msg = f"`recursive` is True or False, not {described(spec.recursive)}"
        raise OptionError(msg)
    if spec.policy is not None and not isinstance(spec.policy, ProxyPolicy):
        msg = (
            f"`policy` is a `ProxyPolicy`, not {described(spec.policy)}; for trusted "
            "ranges pass `trusted=[...]`"
        )
        raise OptionError(msg)
