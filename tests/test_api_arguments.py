"""What a notebook passes by mistake gets one of pplog's errors, naming the argument.

`import pplog` is used by hand: a number as text, a pandas frame, bytes for a
path, a policy beside the trusted ranges it would override. Each must stop
with a `PplogError` that says which argument and what it takes, never an
internal `AttributeError` or a silently different attribution; what is a
fair reading of the argument (a `bytes` path, a time as text) is taken.
"""

from __future__ import annotations

import inspect
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import pplog
from helpers import SAMPLES
from pplog.clientip import ProxyPolicy
from pplog.errors import OptionError, ReportError, SourceError

COMBINED = SAMPLES / "combined-access.log"
MAIN = SAMPLES / "main-access.log"


def _raises(call: Callable[[], Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize(
    ("keywords", "match"),
    [
        ({"top": 2**32}, r"`top` must be from 0 to 2147483648, not 4294967296"),
        ({"top": 2**63}, r"`top` must be from 0 to"),
        ({"top": -1}, r"`top` must be from 0"),
        ({"top": "5"}, r"`top` is a whole number, not str '5'"),
        ({"top": 2.0}, r"`top` is a whole number, not float"),
        ({"top": True}, r"`top` is a whole number, not bool"),
        ({"jobs": "2"}, r"`jobs` is a whole number, not str '2'"),
        ({"jobs": 0}, r"`jobs` must be from 1"),
        ({"trusted": [10]}, r"`trusted` takes addresses and CIDR ranges as text"),
        ({"trusted": 10}, r"not int 10"),
        ({"trusted": [b"10.0.0.0/8"]}, r"not bytes b'10.0.0.0/8'"),
        ({"spec": "main"}, r"`spec` is a `LogSpec`, not str 'main'"),
        ({"policy": "10.0.0.0/8"}, r"`policy` is a `ProxyPolicy`.*pass `trusted="),
        ({"format": 5}, r"`format` is a preset name, `auto` or a `LogFormat`"),
        ({"real_ip_header": 1}, r"`real_ip_header` is text, not int 1"),
        ({"recursive": "no"}, r"`recursive` is True or False, not str 'no'"),
    ],
)
def test_summarize_names_an_argument_of_the_wrong_type(
    keywords: dict[str, Any], match: str
) -> None:
    _raises(lambda: pplog.summarize(COMBINED, **keywords), OptionError, match)


def test_top_at_the_command_lines_limit_is_every_row() -> None:
    """The largest `top` the CLI takes (2**31) keeps every row, as 0 does."""
    every = pplog.summarize(COMBINED, top=0)
    assert pplog.summarize(COMBINED, top=2**31).clients.equals(every.clients)


def test_the_policy_the_api_takes_is_public() -> None:
    """`policy=` takes a `ProxyPolicy`, the one road to the `hops` and
    `leftmost-public` strategies (`--client-strategy`) from Python: it is
    `pplog.ProxyPolicy`, not only `pplog.clientip`'s."""
    assert "ProxyPolicy" in pplog.__all__
    assert pplog.ProxyPolicy is ProxyPolicy
    policy = pplog.ProxyPolicy(trusted=["10.0.0.0/8"], strategy="hops", hops=1)
    by_hops = pplog.summarize(MAIN, policy=policy, top=0)
    assert by_hops.overview_dict()["requests"] == 2000


@pytest.mark.parametrize("realip", ["trusted", "real_ip_header", "recursive"])
def test_a_policy_beside_the_settings_it_holds_is_refused(realip: str) -> None:
    """`policy` holds the trusted ranges, header and recursion: given with
    one of them, that one was dropped without a word (every request of the
    main sample went to the balancer's address instead of the client's)."""
    value = {"trusted": ["10.0.0.0/8"], "real_ip_header": "X-Forwarded-For"}.get(
        realip, True
    )
    for call in (pplog.summarize, pplog.read_log):
        _raises(
            lambda call=call: call(MAIN, policy=ProxyPolicy(), **{realip: value}),
            OptionError,
            f"give `policy` or `{realip}`, not both",
        )


@pytest.mark.parametrize(
    ("column", "match"),
    [
        ("status", r"`status` column is String, not an integer"),
        ("body_bytes_sent", r"`body_bytes_sent` column is String, not an integer"),
        ("request_time", r"`request_time` column is String, not a number"),
    ],
)
def test_a_frame_with_a_text_number_is_refused(column: str, match: str) -> None:
    """A frame read back from CSV holds its numbers as text: refused by name
    before any table (a polars `ComputeError` from inside the map before)."""
    frame = pplog.read_log(MAIN, format="main")
    logged = column in frame.columns  # main does not log $request_time
    text = pl.col(column).cast(pl.String) if logged else pl.lit("0.125")
    frame = frame.with_columns(text.alias(column))
    _raises(lambda: pplog.summarize(frame), OptionError, match)
    _raises(lambda: pplog.diagnose(frame), OptionError, match)


def test_a_frame_with_other_number_types_is_summarized_the_same() -> None:
    """Integers of another width (a CSV's Int64) and a null column are fine."""
    frame = pplog.read_log(COMBINED)
    wider = frame.with_columns(
        pl.col("status").cast(pl.Int64),
        pl.col("body_bytes_sent").cast(pl.Int64),
        pl.lit(None).alias("http_referer"),
    )
    assert pplog.summarize(wider).clients.equals(pplog.summarize(frame).clients)


def test_paths_as_bytes_are_paths() -> None:
    """`b"/var/log/x.log"` names a file, as `open()` takes it (it was read as
    a sequence of 16 numbers)."""
    as_bytes = os.fsencode(COMBINED)
    assert pplog.read_log(as_bytes).equals(pplog.read_log(COMBINED))
    assert pplog.read_log([as_bytes]).equals(pplog.read_log(COMBINED))


@pytest.mark.parametrize(
    ("source", "match"),
    [
        (None, r"`source` takes paths, globs or directories .*not NoneType None"),
        (5, r"`source` takes paths.*not int 5"),
        ([COMBINED, 5], r"not int 5"),
        (pl.DataFrame({"a": [1]}), r"`source` takes paths.*not a polars.DataFrame"),
    ],
)
def test_read_log_names_what_is_not_a_path(source: object, match: str) -> None:
    _raises(lambda: pplog.read_log(source), OptionError, match)  # type: ignore[arg-type]


def test_a_pandas_or_arrow_frame_is_told_how_to_convert() -> None:
    """Iterated as paths, a pandas frame's column names were taken for files
    (``no such file: `source```)."""
    pandas = pytest.importorskip("pandas")
    arrow = pytest.importorskip("pyarrow")
    for frame in (pandas.DataFrame({"status": [200]}), arrow.table({"status": [200]})):
        _raises(
            lambda frame=frame: pplog.summarize(frame),
            OptionError,
            r"convert it with `pl.from_pandas\(...\)` or `pl.from_arrow\(...\)`",
        )


def test_diagnose_names_an_error_log_that_is_not_one() -> None:
    _raises(
        lambda: pplog.diagnose(None, 5),  # type: ignore[arg-type]
        OptionError,
        r"`error_log` takes paths, a frame from `read_error_log`.*not int 5",
    )


def test_ingest_refuses_an_empty_dataset_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``dataset=""`` made the dataset in the working directory (`_pplog/`,
    `requests/`, `rollups/` beside the user's files)."""
    monkeypatch.chdir(tmp_path)
    for empty in ("", "  "):
        _raises(
            lambda empty=empty: pplog.ingest([str(COMBINED)], empty),
            OptionError,
            r"`dataset` is empty",
        )
    assert list(tmp_path.iterdir()) == []


def test_ingest_names_a_dataset_path_that_cannot_be_a_directory(
    tmp_path: Path,
) -> None:
    """A file where the dataset should be (or above it) raised a bare
    `FileExistsError` / `NotADirectoryError`."""
    a_file = tmp_path / "ds"
    a_file.write_text("not a dataset\n")
    _raises(
        lambda: pplog.ingest([str(COMBINED)], a_file),
        OptionError,
        r"the dataset `.*ds` is a file, not a directory",
    )
    _raises(
        lambda: pplog.ingest([str(COMBINED)], a_file / "below"),
        ReportError,
        r"cannot make the dataset directory `.*below`: Not a directory",
    )
    _raises(
        lambda: pplog.ingest(None, tmp_path / "ok"),  # type: ignore[arg-type]
        OptionError,
        r"`paths` takes paths, globs or directories.*not NoneType None",
    )
    _raises(
        lambda: pplog.ingest([str(COMBINED)], 5),  # type: ignore[arg-type]
        OptionError,
        r"`dataset` is a directory path, not int 5",
    )
    assert a_file.read_text() == "not a dataset\n"


def test_the_fault_hook_is_not_in_the_api() -> None:
    """The fault tests' kill points are an environment variable of the test
    harness, not a keyword of `ingest` a user could find and pass."""
    assert "fault" not in inspect.signature(pplog.ingest).parameters


def test_scan_dataset_takes_times_as_text(tmp_path: Path) -> None:
    """`summarize(DIR, since="...")` took text, `scan_dataset` raised an
    `AttributeError` on it."""
    ds = tmp_path / "ds"
    pplog.ingest([str(SAMPLES / "elb-access.log")], ds)
    every = pplog.scan_dataset(ds).collect()
    assert every.height == 3000
    first, last = every["time"].min(), every["time"].max()
    assert isinstance(first, datetime)
    assert isinstance(last, datetime)
    text = f"{first:%Y-%m-%dT%H:%M:%S}Z"
    by_text = pplog.scan_dataset(ds, since=text).collect()
    by_time = pplog.scan_dataset(ds, since=first.astimezone(UTC)).collect()
    assert by_text.height == by_time.height == 3000
    after = f"{last.year + 1}-01-01"
    assert pplog.scan_dataset(ds, since=after).collect().height == 0
    _raises(
        lambda: pplog.scan_dataset(ds, since="not a time"),
        OptionError,
        r"not a time",
    )


def test_a_dataset_named_by_bytes_is_the_dataset(tmp_path: Path) -> None:
    """A dataset named as bytes is summarized as one, not listed as a
    directory of logs (``is a pplog dataset ... not a directory of logs``)."""
    ds = tmp_path / "ds"
    pplog.ingest([str(SAMPLES / "elb-access.log")], ds)
    by_text = pplog.summarize(ds, top=0)
    by_bytes = pplog.summarize(os.fsencode(ds), top=0)
    assert by_bytes.overview["requests"].item() == 3000
    assert by_bytes.clients.equals(by_text.clients)


def test_a_lazy_frame_whose_log_is_gone_names_the_log(tmp_path: Path) -> None:
    """A `scan_log` frame summarized after its file was rotated away: the
    error blamed pplog's temporary file ("cannot write a temporary file")."""
    log = tmp_path / "access.log"
    shutil.copy(COMBINED, log)
    frame = pplog.scan_log(log)
    log.unlink()
    _raises(
        lambda: pplog.summarize(frame),
        SourceError,
        rf"cannot read `{log}`: No such file or directory",
    )
