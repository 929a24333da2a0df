"""Inputs by URL: fsspec's memory filesystem in process, and `s3://` through s3fs
against moto's standalone S3 server, started as a process on loopback.

The S3 tests skip when s3fs or moto is missing, unless PPLOG_REQUIRE_S3=1
(`.ci/run` installs the `s3` and `test` extras and sets it). Every `s3://`
run of the CLI is a real subprocess that finds the server and the fake
credentials through the usual AWS variables, as a user's run would.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import zstandard
from click.testing import CliRunner
from polars.testing import assert_frame_equal

import pplog
from pplog import sources
from pplog.cli import cli
from pplog.errors import SourceError
from pplog.outputs import ReportOptions
from pplog.outputs import get as get_output
from realproc import free_ports

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_logs"
PACKAGE_ROOT = Path(pplog.__file__).resolve().parents[1]  # the pplog under test
REQUIRE = os.environ.get("PPLOG_REQUIRE_S3") == "1"
BUCKET = "pplog-logs"
START_TIMEOUT = 30.0
RUN_TIMEOUT = 120


def _missing(*modules: str) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def _need(*modules: str) -> None:
    missing = _missing(*modules)
    if missing:
        reason = f"needs {', '.join(missing)} (pip install -e '.[test,s3]')"
        if REQUIRE:
            pytest.fail(f"PPLOG_REQUIRE_S3=1 but {reason}", pytrace=False)
        pytest.skip(reason)


def _damaged_gzip() -> bytes:
    """combined-access.log with three bad lines, gzip'd, cut before its end."""
    lines = (SAMPLES / "combined-access.log").read_bytes().splitlines(keepends=True)
    bad = [b"not a log line at all\n", b"\xff\xfe broken \x00 bytes\n", b"GET /\n"]
    for at, line in zip((5, 400, 1200), bad, strict=True):
        lines.insert(at, line)
    data = gzip.compress(b"".join(lines), mtime=0)
    return data[: len(data) * 3 // 4]


def _layout() -> dict[str, bytes]:
    """The objects of the bucket (and the files of the local twin), by key."""
    rotated = SAMPLES / "rotated"
    zstd = zstandard.ZstdCompressor()
    return {
        **{f"rotated/{p.name}": p.read_bytes() for p in rotated.iterdir()},
        "mixed/elb-access.log.gz": gzip.compress(
            (SAMPLES / "elb-access.log").read_bytes(), mtime=0
        ),
        "mixed/main-access.log.zst": zstd.compress(
            (SAMPLES / "main-access.log").read_bytes()
        ),
        "mixed/combined-access.log": (SAMPLES / "combined-access.log").read_bytes(),
        "mixed/.hidden": b"never read\n",
        "damaged/access.log.1.gz": _damaged_gzip(),
    }


# Objects whose names a local directory cannot mirror: an object and a
# prefix of one name, a key with glob characters
_COMBINED = (SAMPLES / "combined-access.log").read_bytes()
_NO_TWIN = {
    "twin": _COMBINED[: _COMBINED.index(b"\n") + 1] * 5,
    "twin/access.log": _COMBINED,
    "odd/access[1].log": _COMBINED,
}


# -- in process: fsspec's memory filesystem (needs fsspec only) -----------


@pytest.fixture
def memory_logs(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The layout under `memory://<unique>/` and in `tmp_path`."""
    _need("fsspec")
    import fsspec

    fs = fsspec.filesystem("memory")
    root = f"/pplog-{os.getpid()}-{tmp_path.name}"
    for key, data in _layout().items():
        fs.pipe(f"{root}/{key}", data)
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_bytes(data)
    try:
        yield f"memory://{root}", tmp_path
    finally:
        fs.rm(root, recursive=True)


def test_expand_prefix_glob_and_object(memory_logs: tuple[str, Path]) -> None:
    url, local = memory_logs
    found = sources.expand([f"{url}/rotated/"])
    # oldest rotation first, names keep the URL, sizes from the listing
    assert [s.name for s in found] == [
        f"{url}/rotated/access.log.2.gz",
        f"{url}/rotated/access.log.1",
        f"{url}/rotated/access.log",
    ]
    assert [s.size for s in found] == [
        (local / "rotated" / n).stat().st_size
        for n in ("access.log.2.gz", "access.log.1", "access.log")
    ]
    assert all(s.path is None and not s.is_stdin for s in found)
    assert pickle.loads(pickle.dumps(found)) == found
    # a prefix lists like a directory: hidden names left out
    mixed = [s.name.rsplit("/", 1)[1] for s in sources.expand(f"{url}/mixed")]
    assert mixed == [
        "combined-access.log",
        "elb-access.log.gz",
        "main-access.log.zst",
    ]
    globbed = sources.expand(f"{url}/rotated/access.log.*")
    assert [s.name.rsplit("/", 1)[1] for s in globbed] == [
        "access.log.2.gz",
        "access.log.1",
    ]
    one = sources.expand(f"{url}/mixed/elb-access.log.gz")
    assert [(s.name, s.url) for s in one] == [(f"{url}/mixed/elb-access.log.gz",) * 2]
    # named twice: read once
    assert len(sources.expand([f"{url}/rotated/", f"{url}/rotated/access.log"])) == 3


@pytest.mark.parametrize(
    ("suffix", "message"),
    [
        (
            "/nope",
            "no such object or prefix: `{url}/nope`; check the bucket and the key",
        ),
        (
            "/rotated/*.bz2",
            "no object matches `{url}/rotated/*.bz2`; check the bucket, prefix and "
            "pattern",
        ),
    ],
)
def test_expand_missing_url(
    memory_logs: tuple[str, Path], suffix: str, message: str
) -> None:
    url, _ = memory_logs
    with pytest.raises(SourceError) as info:
        sources.expand(url + suffix)
    assert str(info.value) == message.format(url=url)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("github://x/y", "missing 2 required positional arguments"),  # needs org, repo
        ("ftp://127.0.0.1:9/x", "Connection refused"),  # nothing listens on port 9
    ],
)
def test_a_url_its_backend_refuses_is_one_error_line(url: str, says: str) -> None:
    _need("fsspec")
    result = CliRunner().invoke(cli, ["summarize", url])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: cannot read `{url}`: ")
    assert says in result.output
    assert "unexpected" not in result.output


def test_unknown_protocol_is_a_source_error() -> None:
    _need("fsspec")
    with pytest.raises(SourceError, match=r"^cannot read `nosuch://a/b`: .*fsspec"):
        sources.expand("nosuch://a/b")


def _read(name: str | Path) -> tuple[pl.DataFrame, list[str]]:
    """The rows of `name`, and its warnings with the name left out."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = pplog.read_log(name, include_rejects=True)
    return rows, [str(w.message).replace(str(name), "<name>") for w in caught]


def test_url_rows_equal_local_rows(memory_logs: tuple[str, Path]) -> None:
    """Every column but `source`, line numbers and offsets included, for plain,
    gzip, zstd and a damaged gzip; the damage is reported the same way."""
    url, local = memory_logs
    for key in (
        "rotated/access.log.2.gz",
        "mixed/main-access.log.zst",
        "mixed/combined-access.log",
        "damaged/access.log.1.gz",
    ):
        remote, remote_warnings = _read(f"{url}/{key}")
        here, here_warnings = _read(local / key)
        assert remote.height > 300, key
        assert remote.get_column("source").unique().to_list() == [f"{url}/{key}"]
        assert_frame_equal(remote.drop("source"), here.drop("source"))
        assert remote_warnings == here_warnings, key
    # the three bad lines, and the last one, cut by the truncation
    assert remote.get_column("reject_reason").drop_nulls().len() == 4
    assert remote_warnings == [
        "<name>: stopped at byte 264492: compressed data ends early (truncated file)"
    ]


def test_read_head_and_no_byte_ranges_for_urls(memory_logs: tuple[str, Path]) -> None:
    url, local = memory_logs
    (src,) = sources.expand(f"{url}/mixed/main-access.log.zst")
    expected = (SAMPLES / "main-access.log").read_text().splitlines()[:5]
    assert sources.read_head(src, 5) == expected
    assert sources.split_source(src, 4, min_bytes=1) == [src]


# -- s3:// through s3fs against moto's standalone server ------------------


def _env(endpoint: str, home: Path) -> dict[str, str]:
    """The process environment with fake credentials and the local endpoint,
    and nothing from the user's own AWS configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",  # noqa: S105 - moto's fake account
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=endpoint,
        AWS_CONFIG_FILE=str(home / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        PYTHONPATH=os.pathsep.join(
            [str(PACKAGE_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    )
    return env


@pytest.fixture(scope="module")
def s3(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[dict[str, str], Path]]:
    """moto's S3 server on a free loopback port, with the layout in `BUCKET`;
    yields the environment that points at it and the local twin directory."""
    _need("s3fs", "moto", "flask", "flask_cors")
    home = tmp_path_factory.mktemp("aws")
    local = tmp_path_factory.mktemp("local")
    (port,) = free_ports(1)
    endpoint = f"http://127.0.0.1:{port}"
    env = _env(endpoint, home)
    cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto server did not start: {cmd}", pytrace=False)
                time.sleep(0.1)
        with pytest.MonkeyPatch.context() as mp:
            for key in [k for k in os.environ if k.startswith("AWS_")]:
                mp.delenv(key)
            for key, value in env.items():
                if key.startswith("AWS_"):
                    mp.setenv(key, value)
            import s3fs

            s3fs.S3FileSystem.clear_instance_cache()
            fs = s3fs.S3FileSystem()
            fs.mkdir(BUCKET)
            for key, data in _layout().items():
                fs.pipe(f"{BUCKET}/{key}", data)
                (local / key).parent.mkdir(parents=True, exist_ok=True)
                (local / key).write_bytes(data)
            for key, data in _NO_TWIN.items():  # names no directory can hold
                fs.pipe(f"{BUCKET}/{key}", data)
            yield env, local
            s3fs.S3FileSystem.clear_instance_cache()
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _pplog(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    code = "from pplog.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def _local_json(*args: str) -> bytes:
    result = CliRunner().invoke(cli, ["summarize", *args, "--to", "json", "--top", "0"])
    assert result.exit_code == 0, result.output
    return result.stdout_bytes


@pytest.mark.parametrize(
    ("remote", "local"),
    [
        ("rotated/", "rotated"),  # a prefix: plain and gzip'd rotations
        ("mixed", "mixed"),  # three formats: gzip'd, zstd, plain
        ("rotated/access.log*", "rotated/access.log*"),  # a glob
    ],
)
def test_s3_summary_equals_local(
    s3: tuple[dict[str, str], Path], remote: str, local: str
) -> None:
    env, twin = s3
    result = _pplog(
        env, "summarize", f"s3://{BUCKET}/{remote}", "--to", "json", "--top", "0"
    )
    assert result.returncode == 0, result.stderr.decode()
    expected = _local_json(str(twin / local))
    # the only difference: the names of the sources
    prefix = f"s3://{BUCKET}/{local.split('/')[0]}/".encode()
    here = f"{twin / local.split('/')[0]}/".encode()
    assert result.stdout.count(prefix) >= 1
    assert result.stdout.replace(prefix, here) == expected
    assert json.loads(result.stdout)["overview"]["lines"] > 1000


def test_s3_damaged_gzip_rejects_equal_local(
    s3: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    """Line numbers and offsets of rejects, and the warning, as for the file."""
    env, twin = s3
    url = f"s3://{BUCKET}/damaged/access.log.1.gz"
    remote_rejects, local_rejects = tmp_path / "remote.jsonl", tmp_path / "local.jsonl"
    result = _pplog(
        env, "summarize", url, "--to", "json", "--rejects", str(remote_rejects)
    )
    assert result.returncode == 0, result.stderr.decode()
    local = twin / "damaged" / "access.log.1.gz"
    here = CliRunner().invoke(
        cli, ["summarize", str(local), "--to", "json", "--rejects", str(local_rejects)]
    )
    assert here.exit_code == 0, here.output
    assert result.stdout == here.stdout_bytes.replace(str(local).encode(), url.encode())
    rows = [json.loads(x) for x in remote_rejects.read_text().splitlines()]
    assert len(rows) == 4  # three bad lines and the one cut by the truncation
    assert {r["source"] for r in rows} == {url}
    expected = [json.loads(x) for x in local_rejects.read_text().splitlines()]
    for r in expected:
        r["source"] = url
    assert rows == expected
    # the truncation is one warning naming the object, at the same byte
    warning = [x for x in result.stderr.decode().splitlines() if "stopped at byte" in x]
    assert len(warning) == 1
    assert url in warning[0]
    assert warning[0].split("stopped at byte")[1] in here.stderr


@pytest.mark.parametrize(
    ("remote", "sources"),
    [
        ("twin/", ["twin/access.log"]),  # a prefix: not the object `twin`
        ("twin", ["twin"]),  # without its slash: the object
        ("odd/access[1].log", ["odd/access[1].log"]),  # a key, not a glob
        ("", ["twin"]),  # the bucket: the object beside the prefix `twin/`
        ("tw*", ["twin"]),  # a glob: the same
    ],
)
def test_s3_names_an_object_or_a_prefix_as_written(
    s3: tuple[dict[str, str], Path], remote: str, sources: list[str]
) -> None:
    """`s3://b/twin/` read the object `twin` (5 lines) instead of the prefix
    (3,000), with no word; an object whose key holds `[` was taken for a
    glob that matched nothing; the object `twin` beside the prefix `twin/`
    was left out of the bucket's listing and of a glob."""
    env, _ = s3
    result = _pplog(env, "summarize", f"s3://{BUCKET}/{remote}", "--to", "json")
    assert result.returncode == 0, result.stderr.decode()
    ov = json.loads(result.stdout)["overview"]
    assert ov["sources"] == [f"s3://{BUCKET}/{s}" for s in sources]
    whole = _COMBINED.count(b"\n")
    assert ov["lines"] == (5 if sources == ["twin"] else whole)


def test_s3_missing_object_is_one_error_line(s3: tuple[dict[str, str], Path]) -> None:
    env, _ = s3
    key = "; check the bucket and the key"
    pattern = "; check the bucket, prefix and pattern"
    for url, message, hint in [
        (f"s3://{BUCKET}/rotated/access.log.9", "no such object or prefix:", key),
        (f"s3://{BUCKET}-nope/logs/", "no such object or prefix:", key),
        (f"s3://{BUCKET}/rotated/*.bz2", "no object matches", pattern),
    ]:
        result = _pplog(env, "summarize", url)
        assert result.returncode == 1
        assert result.stderr.decode() == f"Error: {message} `{url}`{hint}\n"


@pytest.mark.parametrize("fault", ["no credentials", "unreachable endpoint"])
def test_s3_access_failure_is_one_error_line(
    s3: tuple[dict[str, str], Path], fault: str
) -> None:
    env, _ = s3
    bad = dict(env)
    if fault == "no credentials":
        del bad["AWS_ACCESS_KEY_ID"], bad["AWS_SECRET_ACCESS_KEY"]
        reason = "Unable to locate credentials"
    else:  # what a wrong AWS_ENDPOINT_URL gives; botocore's retries kept short
        (port,) = free_ports(1)
        bad.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_MAX_ATTEMPTS="1")
        reason = "Could not connect to the endpoint URL"
    result = _pplog(bad, "summarize", f"s3://{BUCKET}/rotated/")
    assert result.returncode == 1
    err = result.stderr.decode()
    assert err.count("\n") == 1
    assert err.startswith(f"Error: cannot list `s3://{BUCKET}/rotated/`: {reason}")
    assert err.rstrip().endswith("`AWS_ENDPOINT_URL`...)")


def test_s3_jobs_ship_url_sources_to_workers(s3: tuple[dict[str, str], Path]) -> None:
    """`--jobs 2` pickles the sources to spawned processes that open them."""
    env, twin = s3
    result = _pplog(
        env, "summarize", f"s3://{BUCKET}/mixed/", "--jobs", "2", "--to", "json",
        "--top", "0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    prefix = f"s3://{BUCKET}/mixed/".encode()
    expected = _local_json(str(twin / "mixed"))
    assert result.stdout.replace(prefix, f"{twin / 'mixed'}/".encode()) == expected


def test_s3_on_a_dask_cluster_equals_local(s3: tuple[dict[str, str], Path]) -> None:
    """Workers open the `s3://` sources themselves (issue 14: object storage
    read on the cluster); the summary is the local files' one."""
    if os.environ.get("PPLOG_REQUIRE_DASK") == "1":
        import distributed
    else:
        distributed = pytest.importorskip("distributed")
    env, twin = s3
    # the fixture put the endpoint and credentials in this process's
    # environment: the spawned workers inherit them
    assert os.environ["AWS_ENDPOINT_URL"] == env["AWS_ENDPOINT_URL"]
    with (
        pytest.MonkeyPatch.context() as mp,
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            host="127.0.0.1",
        ) as cluster,
    ):
        mp.setenv("PYTHONPATH", env["PYTHONPATH"])
        summary = pplog.summarize(f"s3://{BUCKET}/mixed/", top=0, cluster=cluster)
    out = io.StringIO()
    get_output("json").write(summary, ReportOptions(stream=out, top=0))
    got = out.getvalue().encode()
    expected = _local_json(str(twin / "mixed"))
    prefix = f"s3://{BUCKET}/mixed/".encode()
    assert got.count(prefix) >= 1
    assert got.replace(prefix, f"{twin / 'mixed'}/".encode()) == expected


def test_missing_s3fs_names_the_extra(tmp_path: Path) -> None:
    _need("fsspec")
    env = _env("http://127.0.0.1:9", tmp_path)
    code = "import sys; sys.modules['s3fs'] = None; from pplog.cli import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", code, "summarize", "s3://bucket/logs/"],
        env=env,
        capture_output=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.decode() == (
        "Error: reading `s3://bucket/logs/` needs a package that is missing: "
        "pip install 'pplog[s3]'\n"
    )


CUT = 20_000


def test_backend_failure_mid_read_is_a_warning(memory_logs: tuple[str, Path]) -> None:
    """A backend error that is no `OSError` (botocore's, aiohttp's) after some
    bytes: the lines before it are kept and one warning names the input."""
    url, local = memory_logs
    from fsspec.implementations.memory import MemoryFileSystem

    class Broken(RuntimeError):
        pass

    class Failing:
        """The object's bytes, then an error after `CUT` of them."""

        def __init__(self, data: bytes) -> None:
            self.data, self.at = data, 0

        def read(self, n: int = -1) -> bytes:
            if self.at >= CUT:
                msg = "connection reset by the storage"
                raise Broken(msg)
            end = CUT if n < 0 else min(self.at + n, CUT)
            out, self.at = self.data[self.at : end], end
            return out

        def close(self) -> None:
            pass

    class Flaky(MemoryFileSystem):  # type: ignore[misc]
        protocol = ("pplogflaky",)

        @classmethod
        def _strip_protocol(cls, path: str) -> str:
            return str(super()._strip_protocol(path.replace("pplogflaky://", "")))

        def _open(self, path: str, mode: str = "rb", **kwargs: object) -> Failing:
            return Failing(self.cat_file(path))

    import fsspec

    fsspec.register_implementation("pplogflaky", Flaky, clobber=True)
    name = url.replace("memory://", "pplogflaky://") + "/mixed/combined-access.log"
    rows, warned = _read(name)
    assert warned == [f"<name>: stopped at byte {CUT}: connection reset by the storage"]
    whole = pplog.read_log(
        local / "mixed" / "combined-access.log", include_rejects=True
    )
    complete = (local / "mixed" / "combined-access.log").read_bytes()[:CUT]
    kept = complete.count(b"\n")
    assert rows.height == kept + 1  # and the line the failure cut, a reject
    assert rows.item(kept, "reject_reason") is not None
    assert_frame_equal(rows.drop("source").head(kept), whole.drop("source").head(kept))
