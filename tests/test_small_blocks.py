"""Small blocks of lines are split in Python, larger ones by polars: same rows.

`_lines._small_frame` spares a polars query per small file (a directory of
3,600 small logs spent 3 s in them); every row it gives must be the one
polars' line reader gives for the same bytes.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pplog.sources import _lines

# no CR, no NUL: what `_ascii_frame` is given; a BOM anywhere in a line
_CHARS = st.characters(
    blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"
) | st.sampled_from(["\ufeff", " ", '"', "é", "\t"])
_LINES = st.lists(st.text(_CHARS, max_size=40), max_size=12)


def _polars(data: bytes, line: int, offset: int, *, bom: bool) -> list[tuple]:
    with pytest.MonkeyPatch.context() as m:
        m.setattr(_lines, "SMALL_BLOCK", -1)
        return _lines._ascii_frame("a.log", data, line, offset, bom=bom).rows()


@settings(max_examples=300, deadline=None)
@given(_LINES, st.booleans(), st.integers(1, 10**6), st.integers(0, 10**9))
def test_small_blocks_split_as_polars_splits_them(
    lines: list[str], newline_at_end: bool, line: int, offset: int
) -> None:
    data = "\n".join(lines).encode() + (b"\n" if newline_at_end and lines else b"")
    bom = not data.isascii()
    small = _lines._small_frame("a.log", data, line, offset, bom=bom)
    assert small.schema == _lines.LINES_SCHEMA
    assert small.rows() == _polars(data, line, offset, bom=bom)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\n",
        b"\n\n",
        b"a\n\nb\n",
        b"a",
        b"a\n\n",
        b"\xef\xbb\xbfx\n\xef\xbb\xbf\n",
    ],
)
def test_edges_split_as_polars_splits_them(data: bytes) -> None:
    for bom in (False, True):
        got = _lines._small_frame("a.log", data, 7, 100, bom=bom).rows()
        assert got == _polars(data, 7, 100, bom=bom), (data, bom)
