"""Log formats: the nginx `log_format` compiler, presets, nginx.conf and detection."""

from __future__ import annotations

from pplog.errors import LogFormatError
from pplog.formats._compiler import FIXED_TEXT, SHAPES, Literal, Token, Variable
from pplog.formats._logformat import LogFormat
from pplog.formats._logpaths import (
    buffered_logs,
    formats_by_log_path,
    realip_by_log_path,
)
from pplog.formats._nginxconf import (
    RealIPSettings,
    SeveralFormatsError,
    format_from_config,
    read_config,
    realip_from_config,
)
from pplog.formats._presets import DETECTION_ORDER, PRESETS

__all__ = [
    "DETECTION_ORDER",
    "FIXED_TEXT",
    "PRESETS",
    "SHAPES",
    "Literal",
    "LogFormat",
    "RealIPSettings",
    "SeveralFormatsError",
    "Token",
    "Variable",
    "buffered_logs",
    "format_from_config",
    "formats_by_log_path",
    "get_format",
    "read_config",
    "realip_by_log_path",
    "realip_from_config",
]


def get_format(name: str) -> LogFormat:
    """The preset called `name`.

    Raises
    ------
    LogFormatError
        Naming the presets, when `name` is not one.
    """
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(PRESETS)
        msg = (
            f"unknown log format preset `{name}`; known presets: {known} "
            f"(or pass --log-format 'YOUR nginx log_format')"
        )
        raise LogFormatError(msg) from None
