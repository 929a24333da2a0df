"""The C library's IPv6 reader, where pplog uses it, agrees with nginx's rules.

`_ipaddr.inet6_addr` and `inet6_ntop` transcribe nginx; `_plain_inet6` takes
`inet_pton`/`inet_ntop` for ordinary spellings. Wherever the fast path answers,
its answer must be the transcription's, for any spelling of any address.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from pplog import _ipaddr


def _nginx(text: str) -> tuple[str, int] | None:
    value = _ipaddr.inet6_addr(text)
    return None if value is None else (_ipaddr.inet6_ntop(value), value)


@st.composite
def spellings(draw: st.DrawFn) -> str:
    """Any address, written with any case, padding and `::` placement."""
    # zero groups are common, so runs of them (and ties between runs) are too
    groups = draw(
        st.lists(st.one_of(st.just(0), st.integers(0, 0xFFFF)), min_size=8, max_size=8)
    )
    texts = []
    for g in groups:
        digits = f"{g:x}"
        digits = "0" * draw(st.integers(0, 4 - len(digits))) + digits
        texts.append(digits.upper() if draw(st.booleans()) else digits)
    zeros = [i for i, g in enumerate(groups) if g == 0]
    if zeros and draw(st.booleans()):
        start = draw(st.sampled_from(zeros))
        end = start
        while end + 1 < 8 and groups[end + 1] == 0 and draw(st.booleans()):
            end += 1
        return ":".join(texts[:start]) + "::" + ":".join(texts[end + 1 :])
    return ":".join(texts)


@settings(max_examples=1000, deadline=None)
@given(spellings())
def test_fast_path_reads_every_spelling_as_nginx_does(text: str) -> None:
    fast = _ipaddr._plain_inet6(text)
    if fast is not None:
        assert fast == _nginx(text)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="0123456789abcdefABCDEF:.", max_size=45))
def test_fast_path_never_accepts_what_nginx_reads_otherwise(text: str) -> None:
    fast = _ipaddr._plain_inet6(text)
    if fast is not None:
        assert fast == _nginx(text)


def test_fast_path_takes_the_usual_spellings() -> None:
    for text, expected in [
        ("2001:db8:85a3:0:0:8a2e:370:7334", "2001:db8:85a3::8a2e:370:7334"),
        ("2001:DB8::1", "2001:db8::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),  # the first longest run
        ("fe80::", "fe80::"),
        ("2001:db8:1:2:3:4:5::", None),  # 7 groups and `::`: nginx refuses
        ("1:2:3:4:5:6:7::", None),
        ("::1", None),  # a leading zero group: the transcription decides
        ("::ffff:1.2.3.4", None),
        (":1:2:3:4:5:6:7:8", None),  # nginx skips one leading colon
    ]:
        fast = _ipaddr._plain_inet6(text)
        assert (fast[0] if fast else None) == expected, text
        if fast is not None:
            assert fast == _nginx(text)
    # whatever path a token takes, parse_addr_port answers as nginx does
    for text in ("1:2:3:4:5:6:7::", ":1:2:3:4:5:6:7:8", "::1", "2001:DB8::1"):
        nginx = _nginx(text)
        got = _ipaddr.parse_addr_port(text)
        assert (got[0], got[2], got[3]) == (
            (nginx[0], nginx[1] >> 64, nginx[1] & ((1 << 64) - 1))
            if nginx
            else (None, None, None)
        ), text


_TOKENS = st.one_of(
    spellings(),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    st.ip_addresses(v=4).map(lambda a: f"::ffff:{a}"),
    st.sampled_from(["unix:", "255.255.255.255", "010.0.0.1", "[::1]", "1.2.3.4:80"]),
    st.text(alphabet="0123456789abcdef:.[]x", max_size=20),
)
_RANGES = st.lists(
    st.sampled_from(
        ["10.0.0.0/8", "0.0.0.0/0", "::/0", "2001:db8::/32", "fe80::/10", "unix:"]
        + ["192.168.1.7", "::ffff:0:0/96", "127.0.0.0/8", "::1"]
    ),
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_TOKENS, max_size=20), _RANGES)
def test_python_range_test_is_the_expressions(
    tokens: list[str], ranges: list[str]
) -> None:
    """`addr_in` (doctor, one address at a time) answers as
    `addr_in_networks` (the polars expression) for any token and ranges."""
    import polars as pl

    networks = _ipaddr.parse_networks(ranges)
    frame = pl.DataFrame({"t": tokens}, schema={"t": pl.String})
    expected = frame.select(_ipaddr.addr_in_networks(pl.col("t"), networks))
    assert [
        _ipaddr.addr_in(t, networks) for t in tokens
    ] == expected.to_series().to_list()


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(
        st.one_of(
            spellings(),
            st.text(alphabet="0123456789abcdefABCDEF:.", max_size=45),
            st.text(max_size=12),
            st.sampled_from(["1:2:3:4:5:6::7", "1:2:3:4:5:6:7::", "a::", "1::2::3"]),
        ),
        max_size=8,
    )
)
def test_c_reads_ordinary_ipv6_as_the_python_fast_path(texts: list[str]) -> None:
    """`_splitc.inet6_plain` (what `addr_info` reads tokens with, many at a
    time) answers for each token exactly what `_plain_inet6` answers."""
    from pplog import _splitc

    got = _splitc.inet6_plain(texts)
    for text, c in zip(texts, got, strict=True):
        python = _ipaddr._plain_inet6(text)
        want = (
            None
            if python is None
            else (python[0], python[1] >> 64, python[1] & ((1 << 64) - 1))
        )
        assert c == want, text


_V4_STRICT = re.compile(_ipaddr._V4_STRICT)


@settings(max_examples=2000, deadline=None)
@given(
    st.one_of(
        spellings(),
        st.ip_addresses(v=4).map(str),
        st.ip_addresses(v=6).map(str),
        st.text(alphabet="0123456789abcdefABCDEF:.", max_size=45),
        st.sampled_from(
            ["255.255.255.255", "01.2.3.4", "1.2.3", "1.2.3.4.5", "256.1.1.1"]
            + ["1:0:0:2::3", "1::2:0:0:3", "1:0::2", "2001:db8:0:0:1::1"]
        ),
    )
)
def test_c_reads_plain_addresses_as_the_trust_decision_must(text: str) -> None:
    """`_splitc.addr` (the addresses the C split decides on): a plain IPv4
    address (`_V4_STRICT`, not 255.255.255.255) or an ordinary IPv6 address
    already in nginx's text (`_plain_inet6` gives it back unchanged), with
    its value; anything else is left to `clientip` (kind 0)."""
    from pplog import _splitc

    kind, v4, hi, lo = _splitc.addr(text.encode())
    plain = _ipaddr._plain_inet6(text)
    if _V4_STRICT.fullmatch(text) and text != "255.255.255.255":
        assert (kind, v4) == (4, _ipaddr.inet_addr(text))
    elif plain is not None and plain[0] == text:
        assert (kind, hi, lo) == (6, plain[1] >> 64, plain[1] & ((1 << 64) - 1))
    else:
        assert kind == 0
