"""`--to json`: the whole summary as one JSON object."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from pplog.outputs._files import atomic_write
from pplog.outputs._options import ReportOptions
from pplog.outputs._safe import UNSAFE_PRINTED
from pplog.reports import Summary


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    msg = f"cannot encode {type(value).__name__}"
    raise TypeError(msg)


def _rows(df: pl.DataFrame) -> list[dict[str, Any]]:
    return df.to_dicts()


def to_dict(summary: Summary) -> dict[str, Any]:
    """The JSON document as Python objects."""
    doc: dict[str, Any] = {"overview": summary.overview_dict()}
    for name, table in summary.tables().items():
        doc[name] = _rows(table)
    doc["reject_samples"] = _rows(summary.reject_samples)
    return doc


class JsonReporter:
    """One JSON object on stdout, or in the file given with `-o`."""

    name: ClassVar[str] = "json"

    def write(self, summary: Summary, options: ReportOptions) -> None:
        """Write `summary`."""
        text = json.dumps(
            to_dict(summary), default=_default, ensure_ascii=False, indent=2
        )
        # json.dumps escapes C0 controls; DEL, C1 and bidi controls become JSON
        # escapes too: the same data, inert on a terminal
        text = UNSAFE_PRINTED.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
        if options.out is None:
            stream = options.stream or sys.stdout
            stream.write(text + "\n")
            return
        out = options.out / "summary.json" if options.out.is_dir() else options.out
        atomic_write(out, partial(Path.write_text, data=text + "\n", encoding="utf-8"))
