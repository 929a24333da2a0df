"""`--config` TOML files: keys named like a command's options, checked.

The CLI feeds the checked keys to click as the command's `default_map`, so
options given on the command line win over the file and the file over the
options' defaults; nothing here knows which option is which.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pplog.errors import OptionError

# `pplog ingest --config`: key (the option's name, `-` as `_`) -> TOML type
INGEST_KEYS: dict[str, type | tuple[type, ...]] = {
    "paths": list,
    "dataset": str,
    "format": str,
    "log_format": str,
    "nginx_conf": str,
    "log_format_name": str,
    "set_real_ip_from": list,
    "real_ip_header": str,
    "real_ip_recursive": bool,
    "client_strategy": str,
    "trusted_hops": int,
    "final_grace": (int, float),
    "compact_threshold": int,
    "geoip": list,
}
# keys that name files: relative to the configuration file, `~` expanded
PATH_KEYS = frozenset({"paths", "dataset", "nginx_conf", "geoip"})
NOT_NEGATIVE = frozenset({"final_grace", "compact_threshold"})


def read_config(
    path: Path, keys: dict[str, type | tuple[type, ...]] = INGEST_KEYS
) -> dict[str, Any]:
    """The TOML file at `path` as option defaults; `OptionError` when unusable.

    Every key must be one of `keys` with a value of its type (lists hold
    strings); text may not be blank, numbers not negative. File names in it
    are relative to the file: cron's working directory is not the operator's.
    """
    import tomllib

    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        msg = f"cannot read --config `{path}`: {exc.strerror or exc}"
        raise OptionError(msg) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        msg = f"--config `{path}` is not valid TOML: {exc}"
        raise OptionError(msg) from exc
    except RecursionError as exc:  # tomllib recurses once per nested value
        msg = f"--config `{path}` nests tables or arrays too deeply; flatten it"
        raise OptionError(msg) from exc
    for key, value in doc.items():
        _check(path, keys, key, value)
    base = path.parent

    def resolve(text: str) -> str:
        return str(base / Path(text).expanduser())

    for key in PATH_KEYS & doc.keys():
        value = doc[key]
        doc[key] = (
            resolve(value) if isinstance(value, str) else list(map(resolve, value))
        )
    return doc


def _check(
    path: Path, keys: dict[str, type | tuple[type, ...]], key: str, value: object
) -> None:
    """Refuse an unknown key, a value of the wrong type, blank text, a negative."""
    kind = keys.get(key)
    if kind is str and isinstance(value, str) and not value.strip():
        msg = f"--config `{path}`: `{key}` is empty"
        raise OptionError(msg)
    if (
        key in NOT_NEGATIVE
        and not isinstance(value, bool)
        and isinstance(value, int | float)
        and value < 0
    ):
        msg = f"--config `{path}`: `{key}` must be 0 or more, not {value}"
        raise OptionError(msg)
    if kind is None:
        known = ", ".join(keys)
        msg = f"--config `{path}`: unknown key `{key}`; known keys: {known}"
        raise OptionError(msg)
    strings = not isinstance(value, list) or all(isinstance(v, str) for v in value)
    if not isinstance(value, kind) or not strings:
        kind_name = type(value).__name__
        msg = f"--config `{path}`: `{key}` has the wrong type ({kind_name})"
        raise OptionError(msg)
