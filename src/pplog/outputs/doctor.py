"""`pplog doctor` findings on the terminal."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.text import Text

from pplog.outputs._safe import safe_text

if TYPE_CHECKING:
    from pplog.reports.doctor import Finding

_STYLE = {"error": "bold red", "warning": "bold yellow", "info": "bold cyan"}


def write_findings(findings: list[Finding], stream: TextIO | None = None) -> None:
    """One block per finding: code, count, explanation, fix, examples."""
    console = Console(
        file=stream or sys.stdout, highlight=False, markup=False, emoji=False
    )
    if not findings:
        console.print(
            Text("No load-balancer or PROXY-protocol problems found.", "green")
        )
        return
    for finding in findings:
        head = Text(
            f"{finding.severity.upper()} ", _STYLE.get(finding.severity, "bold")
        )
        head.append(f"{finding.code}", "bold")
        head.append(f"  ({finding.count:,})")
        console.print(head)
        console.print(Text("  " + safe_text(finding.message)))
        console.print(Text("  fix: " + safe_text(finding.fix), "green"))
        for example in finding.examples:
            console.print(
                Text("  e.g. " + safe_text(example), "dim"),
                no_wrap=True,
                overflow="ellipsis",
            )
        console.print()
