"""Which `log_format` each `access_log` of an nginx configuration writes with."""

from __future__ import annotations

import os
from pathlib import Path

from pplog.errors import LogFormatError
from pplog.formats._logformat import LogFormat
from pplog.formats._nginxconf import (
    Directive,
    RealIPSettings,
    read_config,
    realip_by_access_log,
)
from pplog.formats._presets import PRESETS


def formats_by_log_path(
    path: str | os.PathLike[str],
) -> tuple[dict[Path, LogFormat], dict[Path, str]]:
    """The format of every `access_log` whose file the configuration names,
    and the files several `access_log`s write in different formats, each
    with a sentence naming them (one read of the configuration).

    ``access_log /var/log/nginx/api.log elb_log;`` maps that path to the
    `log_format elb_log`; an `access_log` without a format writes nginx's
    built-in ``combined``. Paths with variables, ``syslog:`` targets and
    ``off`` name no one file and are left out. Relative paths are taken from
    the configuration's directory (nginx takes them from its prefix, which a
    reader of the logs cannot know). When two directives name the same file
    with different formats, the first one gives it its format: nginx writes
    each request with its own directive's format, so the file alternates
    them, and the others' lines are rejects (told of: the second value).
    """
    config = read_config(path)
    out: dict[Path, LogFormat] = {}
    seen: dict[Path, dict[str, Directive]] = {}  # each format's first directive
    for d in config.access_logs:
        file = _file_of(d, config.path.parent)
        if file is None:
            continue
        name = _format_name(d)
        seen.setdefault(file, {}).setdefault(name, d)
        if file in out:
            continue
        if name in config.log_formats:
            fd = config.log_formats[name]
            try:
                out[file] = LogFormat.from_pieces(fd.args[1:], name=name)
            except LogFormatError as exc:
                msg = f"{exc} (log_format `{name}` at {fd.file}:{fd.line})"
                raise LogFormatError(msg) from exc
        elif name == "combined":
            out[file] = PRESETS["combined"]
        # an unknown name: nginx refuses such a configuration; nothing to map
    shared = {
        file: (
            "access_log directives write it in several formats ("
            + ", ".join(f"`{n}` ({d.file}:{d.line})" for n, d in names.items())
            + "); it is read with the first, and the lines of the others are "
            "counted as rejects"
        )
        for file, names in seen.items()
        if len(names) > 1
    }
    return out, shared


def _format_name(d: Directive) -> str:
    """The format an `access_log` names (nginx's `combined` when none)."""
    return d.args[1] if len(d.args) > 1 and "=" not in d.args[1] else "combined"


def realip_by_log_path(
    path: str | os.PathLike[str],
) -> dict[Path, RealIPSettings | LogFormatError | None]:
    """The realip settings in force where each `access_log` naming one file
    stands (`realip_by_access_log`): a file written by a server with
    `real_ip_recursive off` is read so, whatever its format; None where realip
    is not configured. The first directive naming a file wins, as for its
    format."""
    base = Path(path).parent
    out: dict[Path, RealIPSettings | LogFormatError | None] = {}
    for d, settings in realip_by_access_log(path):
        file = _file_of(d, base)
        if file is not None:
            out.setdefault(file, settings)
    return out


def _file_of(d: Directive, base: Path) -> Path | None:
    """The one file an `access_log` writes (relative to `base`), or None:
    ``off``, a path with variables, ``syslog:`` or ``memory:``."""
    if not d.args or d.args[0] == "off" or "$" in d.args[0]:
        return None
    if d.args[0].startswith(("syslog:", "memory:")):
        return None
    file = Path(d.args[0])
    return file if file.is_absolute() else base / file


def buffered_logs(path: str | os.PathLike[str]) -> dict[Path, str]:
    """The files whose `access_log` buffers lines (``buffer=``, ``flush=``,
    ``gzip``), with the directive's settings as nginx reads them: such a log
    is written in bursts, when the buffer fills or the flush time passes."""
    config = read_config(path)
    out: dict[Path, str] = {}
    for d in config.access_logs:
        file = _file_of(d, config.path.parent)
        settings = [
            a for a in d.args[1:] if a.startswith(("buffer=", "flush=", "gzip"))
        ]
        if not settings or file is None:
            continue
        out.setdefault(file, f"{' '.join(settings)} ({d.file}:{d.line})")
    return out
