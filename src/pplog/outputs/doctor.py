"""`pplog doctor` findings on the terminal, or as JSON."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, TextIO

from rich.text import Text

from pplog._text import escape_json
from pplog.outputs._rich import Console
from pplog.outputs._safe import safe_text
from pplog.reports.doctor import to_dict

if TYPE_CHECKING:
    from pplog.reports.doctor import Finding

_STYLE = {"error": "bold red", "warning": "bold yellow", "info": "bold cyan"}


def _block(
    console: Console, prefix: str, text: str, style: str = "", *, wrap: bool = True
) -> None:
    """`text` after `prefix`, every further line indented to line up under it.

    Lines of `text` stay lines; with `wrap` long ones are wrapped at the
    console width, else cut with an ellipsis (examples: log lines). No line
    ends in spaces.
    """
    room = max(console.width - len(prefix), 20)
    lead = prefix
    for part in text.split("\n"):
        body = Text(safe_text(part), style)
        if wrap:
            lines = list(body.wrap(console, room))
        else:
            body.truncate(room, overflow="ellipsis")
            lines = [body]
        for line in lines or [Text()]:
            line.rstrip()
            out = Text(lead.rstrip() if not line.plain else lead, style)
            out.append_text(line)
            console.print(out, no_wrap=True, crop=False)
            lead = " " * len(prefix)


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
        _block(console, "  ", finding.message)
        _block(console, "  fix: ", finding.fix, "green")
        for example in finding.examples:
            _block(console, "  e.g. ", example, "dim", wrap=False)
        console.print()


def write_findings_json(findings: list[Finding], stream: TextIO | None = None) -> None:
    """``{"findings": [...]}`` with the same escapes as `summarize --to json`."""
    text = json.dumps(to_dict(findings), indent=2, ensure_ascii=False)
    (stream or sys.stdout).write(escape_json(text) + "\n")
