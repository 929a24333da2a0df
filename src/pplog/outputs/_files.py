"""File writes for outputs: atomic for regular files, straight through otherwise."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pplog._paths import writes_through
from pplog.errors import ReportError


def atomic_write(target: Path, write: Callable[[Path], object]) -> None:
    """Call `write(tmp)`, then move tmp over `target`: no reader sees half a file.

    Devices (`/dev/stdout`), named pipes and symlinks are written through,
    never replaced.
    """
    if writes_through(target):
        try:
            write(target)
        except OSError as exc:
            msg = f"cannot write `{target}`: {exc.strerror or exc}"
            raise ReportError(msg) from exc
        return
    tmp = target.with_name(f".{target.name}.pplog-tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        msg = f"cannot write `{target}`: {exc.strerror or exc}"
        raise ReportError(msg) from exc
