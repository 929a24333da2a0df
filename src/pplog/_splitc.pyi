"""Types of the C extension `_splitc.c` (see `pplog._fastsplit`)."""

from typing_extensions import Buffer

def lines(
    block: Buffer,
    first_line: int,
    first_offset: int,
    program: object,
    nfields: int,
    /,
) -> tuple[
    int,
    bytearray,
    bytearray,
    bytearray,
    bytes,
    list[bytearray],
    tuple[bytearray, bytearray, bytearray, bytearray, bytearray, bytearray, bytearray]
    | None,
]: ...
def shape(shape_id: int, value: bytes, /) -> bool: ...
