"""Bytes as text: binary-ness by the share of non-text bytes; bad UTF-8 as `\\xHH`."""

from __future__ import annotations

import codecs
import os
import re
from pathlib import Path

SAMPLE_BYTES = 4096  # the head `looks_binary` judges, after a leading NUL hole
BINARY_SHARE = 0.3  # share of non-text bytes above which a sample is binary
# A run of NULs this long is a hole (a crash, logrotate `copytruncate`), not data.
_HOLE = re.compile(rb"\x00{16,}")
NOT_NUL = re.compile(rb"[^\x00]")
# Control bytes that text does not hold (tab, LF, VT, FF, CR, BS, ESC do);
# NULs outside holes count too.
_CONTROL = bytes(b for b in range(32) if b not in b"\t\n\v\f\r\b\x1b") + b"\x7f"
_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # bytes decoded by `surrogateescape`
_TEXT_LINE = re.compile(rb"(?:^|\n)[\t\x20-\x7e]{16}")  # a line that starts as text
SKIPPED_BINARY = "skipped: binary data, not a text log"  # the one warning


def looks_binary(sample: bytes) -> bool:
    """Whether `sample` (the head of a file) is binary data rather than text.

    Binary means that more than `BINARY_SHARE` of its bytes are not text
    (control bytes other than tab, LF, VT, FF, CR, backspace and ESC, and
    bytes that are not valid UTF-8) and that no line in it starts with 16
    printable ASCII characters. Runs of 16 or more NULs are left out: they
    are the hole a crash or logrotate `copytruncate` leaves before good lines.
    Lines that start as text make a log even when raw bytes fill them: nginx
    before 1.23.2 writes what a client sent to a `proxy_protocol` listener
    (a TLS handshake, say) raw into its error log. Take the sample after a
    leading hole (`SAMPLE_BYTES` of the decompressed content); a sample of
    NULs only is not binary.

    Examples
    --------
    >>> looks_binary(b"\\x00" * 5000 + b'10.0.0.1 - - "GET / HTTP/1.1" 200\\n')
    False
    >>> looks_binary(bytes(range(256)))
    True
    """
    data = _HOLE.sub(b"", sample)
    if not data:
        return False
    control = len(data) - len(data.translate(None, _CONTROL))
    # a character cut by the end of the sample is held back, not counted
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    invalid = len(_NOT_UTF8.findall(decoder.decode(data, final=False)))
    if control + invalid <= BINARY_SHARE * len(data):
        return False
    return _TEXT_LINE.search(data) is None


# what `surrogateescape` makes of each byte that is not UTF-8, as `\xHH`
_SURROGATE_XHH = {0xDC00 + b: f"\\x{b:02X}" for b in range(0x80, 0x100)}


def is_utf8(data: bytes) -> bool:
    """Whether `data` is valid UTF-8."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def decode_bytes(data: bytes) -> str:
    """Decode UTF-8, writing undecodable bytes as nginx-style `\\xHH`.

    `surrogateescape` stands for each such byte with a lone surrogate, which
    valid UTF-8 never decodes to; each is then written as its byte's escape,
    both steps in C.
    """
    text = data.decode("utf-8", "surrogateescape")
    return text.translate(_SURROGATE_XHH) if not text.isascii() else text


def binary_throughout(path: Path | None, head: bytes) -> bool:
    """True when `head` looks binary and so do samples from the middle and the
    end of the plain file at `path` (None: a stream, judged by its head).

    A file whose first bytes are damaged (garbage, then lines) is read, its
    damage counted as rejects, rather than skipped whole.
    """
    if not looks_binary(head):
        return False
    if path is None:
        return True
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            for at in (size // 2, size - SAMPLE_BYTES):
                if at <= len(head):
                    continue
                f.seek(at)
                sample = f.read(SAMPLE_BYTES)
                cut = sample.find(b"\n")  # judge from a line's start
                if cut >= 0 and not looks_binary(sample[cut + 1 :]):
                    return False
    except OSError:
        return True
    return True
