"""What `pplog ingest` says on stderr: the warnings worth a cron mail, and `-v`.

Cron mails any output, so a run that went well says nothing; these texts are
the exceptions. The CLI prints them (warnings as `pplog: warning: ...`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pplog.outputs._safe import safe_text

if TYPE_CHECKING:
    from pplog.batch import IngestResult

STUCK_AFTER = 3600.0  # seconds a lock may be held before skipped runs warn

WARNINGS = {
    "bytes_lost_unread": "{n:,} bytes were rotated away before they were read; "
    "run ingest more often than logrotate rotates, or keep more rotations",
    "identity_resets": "{n} file(s) were truncated or rewritten under the same "
    "name and are read again from the start as new streams",
    "files_not_read": "{n} file(s) read before are no longer readable or no longer "
    "match the paths given; they are kept and read on when they are back",
}


def run_warnings(result: IngestResult) -> list[str]:
    """Warnings about a run that committed (or had nothing new)."""
    counted = [
        WARNINGS[key].format(n=count)
        for key, count in result.warnings.items()
        if count and key in WARNINGS
    ]
    return counted + [safe_text(text) for text in result.format_warnings]


def run_lines(result: IngestResult) -> list[str]:
    """`-v`: the bytes held back, then one summary line."""
    return [*(safe_text(line) for line in result.held_lines()), result.line()]
