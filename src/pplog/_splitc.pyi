"""Types of the C extension `_splitc.c` (see `pplog._fastsplit`)."""

from typing_extensions import Buffer

# views of the request's parts and their bitmaps (see `_splitc.c`)
_Parts = tuple[
    bytearray, bytearray, bytearray, bytearray, bytearray, bytearray, bytearray
]

def lines(
    block: Buffer,
    first_offset: int,
    program: object,
    nfields: int,
    limit: int,
    /,
) -> tuple[int, bytearray, bytearray, bytes, list[bytearray], _Parts | None] | None: ...
def shape(shape_id: int, value: bytes, /) -> bool: ...
def trim() -> bool: ...
