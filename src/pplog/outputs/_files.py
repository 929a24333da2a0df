"""Atomic file writes for outputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pplog.errors import ReportError


def atomic_write(target: Path, write: Callable[[Path], object]) -> None:
    """Call `write(tmp)`, then move tmp over `target`: no reader sees half a file."""
    tmp = target.with_name(f".{target.name}.pplog-tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        msg = f"cannot write `{target}`: {exc.strerror or exc}"
        raise ReportError(msg) from exc
