"""The import rules of the module layout (DESIGN.md), checked on the source.

Imports flow one way; `reports/` holds pure functions and imports no
orchestration, dataset or output code; `pipeline/` turns sources into rows and
knows nothing of the tables; `batch/` reaches the map step and the partials
through `pplog.tasks` only; only `cli.py` imports click; and a private module
(`_name`) is imported only inside its own package. Every import counts,
including those inside functions.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def _imports() -> Iterator[tuple[str, str]]:
    """(importing module, imported name) for every import in pplog (a relative
    one made absolute)."""
    for path in sorted((SRC / "pplog").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = module if parts[-1] == "__init__" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's own package up
                    anchor = package.split(".")[
                        : len(package.split(".")) - node.level + 1
                    ]
                    base = ".".join([*anchor, *([base] if base else [])])
                yield module, base
                for alias in node.names:
                    yield module, f"{base}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    yield module, alias.name


IMPORTS = sorted(set(_imports()))


def _package(module: str) -> str:
    """`pplog.reports.finish` -> `reports`; a top-level module -> its name."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _within(module: str, package: str) -> bool:
    return module == f"pplog.{package}" or module.startswith(f"pplog.{package}.")


def test_the_source_is_read() -> None:
    """The rules below see the imports: some that are known to exist."""
    assert ("pplog.cli", "click") in IMPORTS
    assert ("pplog.tasks", "pplog.reports.partial") in IMPORTS
    assert ("pplog.batch.rollup", "pplog.tasks") in IMPORTS


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("reports", ("batch", "cli", "run", "outputs", "tasks")),
        ("pipeline", ("reports", "batch", "cli", "run", "outputs", "tasks")),
        ("batch", ("reports", "cli", "outputs")),
        ("formats", ("pipeline", "reports", "batch", "run", "outputs", "cli")),
        ("sources", ("pipeline", "reports", "batch", "run", "outputs", "cli")),
        ("enrich", ("pipeline", "reports", "batch", "run", "outputs", "cli")),
    ],
)
def test_imports_flow_one_way(package: str, forbidden: tuple[str, ...]) -> None:
    wrong = [
        (src, dst)
        for src, dst in IMPORTS
        if _within(src, package)
        and dst.startswith("pplog.")
        and _package(dst) in forbidden
    ]
    assert wrong == []


def test_only_the_cli_imports_click() -> None:
    users = {src for src, dst in IMPORTS if dst.split(".")[0] == "click"}
    assert users == {"pplog.cli"}


def test_private_modules_stay_in_their_package() -> None:
    wrong = []
    for src, dst in IMPORTS:
        parts = dst.split(".")
        if parts[0] != "pplog":
            continue
        for i, part in enumerate(parts[1:], start=1):
            if part.startswith("_") and not part.startswith("__"):
                owner = ".".join(parts[:i])  # the package the private name is in
                if not (src == owner or src.startswith(owner + ".")):
                    wrong.append((src, dst))
                break
    assert wrong == []
