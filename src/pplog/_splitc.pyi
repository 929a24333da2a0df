"""Types of the C extension `_splitc.c` (see `pplog._fastsplit`)."""

from typing_extensions import Buffer

# the (schema, array) capsules of the Arrow PyCapsule protocol
_Capsules = tuple[object, object]

def read(
    fd: int,
    start: int,
    stop: int,
    size: int,
    slack: int,
    program: object,
    nfields: int,
    limit: int,
    names: tuple[str, ...],
    values: bool = False,
    /,
) -> tuple[int, int, _Capsules | None]: ...
def lines(
    block: Buffer,
    first_offset: int,
    program: object,
    nfields: int,
    limit: int,
    names: tuple[str, ...],
    values: bool = False,
    /,
) -> tuple[int, _Capsules] | None: ...
def shape(shape_id: int, value: bytes, /) -> bool: ...
def trim() -> bool: ...
