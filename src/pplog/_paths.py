"""Small path facts shared by every layer that writes files."""

from __future__ import annotations

from pathlib import Path


def writes_through(target: Path) -> bool:
    """True for targets that must not be replaced: devices, pipes, symlinks."""
    return target.is_symlink() or (target.exists() and not target.is_file())
