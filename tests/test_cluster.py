"""`summarize --cluster`: the same tables on Dask workers as in this process (issue 14).

Real processes: a `dask scheduler` and two `dask worker`s started here on
127.0.0.1 (random free ports, the workers importing this tree's pplog), and a
`distributed.LocalCluster` of two worker processes. The local run is the judge:
`--to json --top 0`, byte for byte. Skipped without the `dask` extra, unless
PPLOG_REQUIRE_DASK=1 (the CI).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import pplog
from helpers import REPO, SAMPLES
from pplog.errors import LogFormatError, OptionError, ReportError
from realproc import free_ports

if os.environ.get("PPLOG_REQUIRE_DASK") == "1":
    import distributed
else:
    distributed = pytest.importorskip("distributed")

from pplog.outputs import ReportOptions  # noqa: E402
from pplog.outputs import get as get_output  # noqa: E402
from pplog.run import cluster as dask_cluster  # noqa: E402

START_SECONDS = 60
DASK = [sys.executable, "-m", "dask"]


def _env() -> dict[str, str]:
    """The workers import this tree's pplog, with one polars thread each."""
    env = dict(os.environ)
    src = str(REPO / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    env["POLARS_MAX_THREADS"] = "1"
    return env


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process we started (its own group), by its id."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


class Cluster:
    """A scheduler and two workers (no nanny: a worker is the process started)."""

    def __init__(self, log_dir: Path) -> None:
        (port,) = free_ports(1)
        self.address = f"tcp://127.0.0.1:{port}"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.workers: list[subprocess.Popen[bytes]] = []
        self.log_dir = log_dir

    def _start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [*DASK, *args],
            env=_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: stopped as one
        )
        log.close()
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        port = self.address.rsplit(":", 1)[1]
        self._start(
            "scheduler",
            ["scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"],
        )
        for i in range(2):
            worker = self._start(
                f"worker-{i}",
                [
                    "worker",
                    self.address,
                    "--host",
                    "127.0.0.1",
                    "--nthreads",
                    "1",
                    "--nworkers",
                    "1",
                    "--no-nanny",
                    "--no-dashboard",
                    "--death-timeout",
                    "60",
                ],
            )
            self.workers.append(worker)
        client = distributed.Client(
            self.address, timeout=START_SECONDS, set_as_default=False
        )
        try:
            client.wait_for_workers(2, timeout=START_SECONDS)
        finally:
            client.close()

    def stop(self) -> None:
        for proc in reversed(self.procs):
            _stop(proc)


@contextlib.contextmanager
def running_cluster(log_dir: Path) -> Iterator[Cluster]:
    found = Cluster(log_dir)
    try:
        found.start()
        yield found
    finally:
        found.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("dask")) as found:
        yield found


@pytest.fixture(scope="module")
def local_cluster() -> Iterator[object]:
    """Two single-threaded worker processes (spawned: they import pplog anew)."""
    with (
        pytest.MonkeyPatch.context() as env,
        contextlib.ExitStack() as stack,
    ):
        for key, value in _env().items():
            env.setenv(key, value)
        found = stack.enter_context(
            distributed.LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # a free port: 8787 may be taken
                host="127.0.0.1",
            )
        )
        yield found


def _mixed(folder: Path) -> Path:
    """Four formats (a gzip'd rotation among them), damaged lines, a file no
    preset fits, a truncated .gz and a binary file."""
    folder.mkdir()
    elb = (SAMPLES / "elb-access.log").read_bytes().splitlines(keepends=True)
    junk = [b"PROXY TCP4 198.51.100.7 10.0.0.5 5123 80\n", b"\n", b"junk\n"]
    (folder / "elb.log").write_bytes(b"".join(elb[:900] + junk + elb[900:1500]))
    (folder / "elb.log.1.gz").write_bytes(gzip.compress(b"".join(elb[1500:]), mtime=0))
    combined = (SAMPLES / "combined-access.log").read_bytes()
    (folder / "combined.log").write_bytes(
        combined[: combined.index(b"\n", 120_000) + 1]
    )
    main = (SAMPLES / "main-access.log").read_bytes()
    (folder / "main.log").write_bytes(main)
    (folder / "main.log.1.gz").write_bytes(gzip.compress(main, mtime=0)[:20_000])
    (folder / "blob.bin").write_bytes(bytes(range(256)) * 64)
    (folder / "notes.txt").write_text("this is not an access log\n" * 30)
    return folder


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _mixed(tmp_path_factory.mktemp("logs") / "mixed")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rotated sample set and the elb sample, ingested (one file, one rollup each)."""
    root = tmp_path_factory.mktemp("dataset")
    ds = root / "ds"
    logs = root / "logs"
    logs.mkdir()
    lines = (SAMPLES / "elb-access.log").read_bytes().splitlines(keepends=True)
    (logs / "access.log.1").write_bytes(b"".join(lines[:1500]))
    (logs / "access.log").write_bytes(
        b"".join([*lines[1500:2000], b"junk\n", *lines[2000:]])
    )
    pplog.ingest([str(logs / "access.log.1")], ds, format="elb_log")
    pplog.ingest([str(logs / "access.log")], ds, format="elb_log")
    return ds


def as_json(summary: pplog.Summary) -> str:
    """The JSON output of `summary`, as `--to json --top 0` writes it."""
    out = io.StringIO()
    get_output("json").write(summary, ReportOptions(stream=out, top=0))
    return out.getvalue()


def _local(source: object, **kw: object) -> str:
    return as_json(pplog.summarize(source, top=0, on_problem=_quiet, **kw))  # type: ignore[arg-type]


def _remote(source: object, cluster: object, **kw: object) -> str:
    out = pplog.summarize(source, top=0, cluster=cluster, on_problem=_quiet, **kw)  # type: ignore[arg-type]
    return as_json(out)


def _quiet(_name: str, _message: str) -> None:
    """Problems are in the overview too; they are compared there."""


SAMPLE_INPUTS = [
    "elb-access.log",
    "combined-access.log",
    "main-access.log",
    "rotated",
]


@pytest.mark.parametrize("name", SAMPLE_INPUTS)
def test_sample_logs_on_real_workers(cluster: Cluster, name: str) -> None:
    path = str(SAMPLES / name)
    assert _remote([path], cluster.address) == _local([path])


def test_mixed_directory_on_real_workers(cluster: Cluster, mixed: Path) -> None:
    local = _local([str(mixed)])
    assert '"unreadable"' in local and "blob.bin" in local  # problems are compared
    assert _remote([str(mixed)], cluster.address) == local


def test_problems_reach_on_problem(cluster: Cluster, mixed: Path) -> None:
    seen: list[tuple[str, str]] = []
    local: list[tuple[str, str]] = []
    pplog.summarize([str(mixed)], on_problem=lambda *a: local.append(a))
    pplog.summarize(
        [str(mixed)], cluster=cluster.address, on_problem=lambda *a: seen.append(a)
    )
    assert sorted(seen) == sorted(local) and seen


def test_byte_ranges_merge_in_a_tree(
    local_cluster: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """16 KiB ranges: 21 tasks for one file, more than `CLIENT_PARTS`: the
    first 8 merged on a worker, that and the other 13 merged here."""
    monkeypatch.setattr(dask_cluster, "RANGE_BYTES", 16 << 10)
    path = SAMPLES / "combined-access.log"
    progress: list[tuple[int, int | None]] = []
    out = pplog.summarize(
        [str(path)],
        top=0,
        cluster=local_cluster,
        on_progress=lambda n, total: progress.append((n, total)),
    )
    assert as_json(out) == _local([str(path)])
    assert len(progress) > dask_cluster.CLIENT_PARTS
    assert sum(n for n, _ in progress) == path.stat().st_size
    assert {total for _, total in progress} == {path.stat().st_size}


def test_mixed_directory_on_a_local_cluster(local_cluster: object, mixed: Path) -> None:
    assert _remote([str(mixed)], local_cluster) == _local([str(mixed)])


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"since": "2026-11-20", "until": "2026-11-21"},
        {"since": "2026-11-19", "until": "2026-11-20"},
        {"status": "4xx"},
        {"approx": True},
    ],
    ids=["rollups", "whole days", "until the data's day", "filtered", "approx"],
)
def test_dataset_on_real_workers(
    cluster: Cluster, dataset: Path, options: dict[str, object]
) -> None:
    local = _local(dataset, **options)
    assert '"requests"' in local
    assert _remote(dataset, cluster.address, **options) == local


def test_dataset_rollup_a_worker_cannot_use(
    local_cluster: object, tmp_path: Path, dataset: Path
) -> None:
    """A damaged rollup: its file's rows are read on the worker instead."""
    import shutil

    ds = tmp_path / "ds"
    shutil.copytree(dataset, ds)
    first = sorted((ds / "rollups" / "requests").rglob("*.zip"))[0]
    first.write_bytes(b"not a rollup")
    assert _remote(ds, local_cluster) == _local(ds)


def test_cli_on_real_workers(cluster: Cluster, mixed: Path, tmp_path: Path) -> None:
    """`python -m pplog summarize ... --cluster` (and PPLOG_CLUSTER) equal the local run."""
    base = [
        sys.executable,
        "-m",
        "pplog",
        "summarize",
        str(mixed),
        "--to",
        "json",
        "--top",
        "0",
    ]
    env = _env()
    local = subprocess.run(base, env=env, capture_output=True, timeout=120, check=False)
    assert local.returncode == 0, local.stderr
    remote = subprocess.run(
        [*base, "--cluster", cluster.address, "--jobs", "3"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert remote.returncode == 0, remote.stderr
    assert remote.stdout == local.stdout
    assert remote.stderr == local.stderr  # the same warnings
    via_env = subprocess.run(
        base,
        env={**env, "PPLOG_CLUSTER": cluster.address},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert via_env.returncode == 0 and via_env.stdout == local.stdout


def test_scheduler_unreachable_is_one_error_line(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pplog",
            "summarize",
            str(SAMPLES / "elb-access.log"),
            "--cluster",
            f"tcp://127.0.0.1:{port}",
        ],
        env=_env(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert time.monotonic() - started < 10
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        f"Error: cannot reach the Dask scheduler at `tcp://127.0.0.1:{port}`: "
    )
    assert lines[0].endswith("; is it running?")
    assert result.stdout == b""


def _summarize_on(address: str) -> subprocess.CompletedProcess[str]:
    """`pplog summarize` of a sample on the cluster at `address`."""
    log = str(SAMPLES / "elb-access.log")
    return subprocess.run(
        [sys.executable, "-m", "pplog", "summarize", log, "--cluster", address],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@contextlib.contextmanager
def _not_dask(answer: bytes | None) -> Iterator[int]:
    """A loopback service that is no Dask scheduler: silent (`answer` None,
    as a dashboard port to a Dask client) or replying `answer` to what it
    reads. Its port; stopped (its socket closed) at the end."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)
            if answer is not None:
                with contextlib.suppress(OSError):
                    conn.settimeout(5)
                    conn.recv(4096)
                    conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()
        for conn in held:
            conn.close()


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (None, "accepts connections but does not answer as a Dask scheduler"),
        (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", "answers, but"),
    ],
    ids=["silent", "http"],
)
def test_a_port_that_is_no_scheduler_is_one_error_line(
    answer: bytes | None, says: str
) -> None:
    """The dashboard's port (silent to a Dask client) made the run wait
    without end; an HTTP server's reply was read as a frame, a 3 EiB
    allocation reported as an unexpected MemoryError."""
    with _not_dask(answer) as port:
        started = time.monotonic()
        result = _summarize_on(f"tcp://127.0.0.1:{port}")
    assert time.monotonic() - started < 30
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"Error: `tcp://127.0.0.1:{port}` "), lines
    assert says in lines[0]
    assert "scheduler's port (8786 by default)" in lines[0]


def test_a_tls_address_without_tls_settings_is_one_error_line() -> None:
    """`tls://` passed the address check, then failed with a TypeError
    ("unexpected failure") and a traceback from the client's `__del__`."""
    result = _summarize_on("tls://127.0.0.1:1")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("Error: cannot connect to the Dask scheduler at `tls://")
    assert "Dask's TLS settings" in lines[0]


def test_a_scheduler_without_workers_is_an_error_not_a_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scheduler started, its workers not: the run waited without end and
    without a word."""
    found = Cluster(tmp_path)
    port = found.address.rsplit(":", 1)[1]
    found._start(
        "scheduler",
        ["scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"],
    )
    monkeypatch.setattr(dask_cluster, "WORKERS_SECONDS", 1)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:  # the scheduler up: it answers
            try:
                client = distributed.Client(
                    found.address, timeout=2, set_as_default=False
                )
            except OSError:
                assert time.monotonic() < deadline, "the scheduler did not start"
                continue
            client.close()
            break
        with pytest.raises(ReportError, match="has no workers \\(waited 1 s\\)"):
            _remote(str(SAMPLES / "elb-access.log"), found.address)
    finally:
        found.stop()


@pytest.mark.parametrize(
    ("address", "says"),
    [("foo", "missing port"), ("udp://h:1", "protocol `udp`")],
)
def test_a_bad_address_is_a_usage_error(address: str, says: str) -> None:
    with pytest.raises(OptionError, match=says):
        pplog.summarize(str(SAMPLES / "elb-access.log"), cluster=address)


def test_what_a_cluster_cannot_read_is_refused(tmp_path: Path) -> None:
    log = str(SAMPLES / "elb-access.log")
    with pytest.raises(OptionError, match="stdin"):
        pplog.summarize("-", cluster="tcp://127.0.0.1:1")
    with pytest.raises(OptionError, match="`rejects` cannot be written"):
        pplog.summarize(log, cluster="tcp://127.0.0.1:1", rejects=tmp_path / "r.jsonl")
    with pytest.raises(OptionError, match="frame of rows"):
        pplog.summarize(pplog.scan_log(log), cluster="tcp://127.0.0.1:1")


def test_task_failures(local_cluster: object) -> None:
    """A PplogError on a worker is re-raised; anything else names the input."""
    import operator

    with distributed.Client(local_cluster, set_as_default=False) as client:
        with pytest.raises(LogFormatError, match="nope"):
            dask_cluster.run(
                client,
                [dask_cluster.Work(pplog.formats.get_format, ("nope",), "a.log")],
                pplog.tasks.merge,
            )
        with pytest.raises(ReportError) as info:
            dask_cluster.run(
                client,
                [dask_cluster.Work(operator.truediv, (1, 0), "b.log")],
                pplog.tasks.merge,
            )
        assert str(info.value) == (
            "reading `b.log` failed on the cluster: ZeroDivisionError: division by zero; "
            "see the workers' logs"
        )


def _add(values: list[int]) -> int:
    return sum(values)


def _refuse(values: list[int]) -> int:
    msg = "no merge today"
    raise RuntimeError(msg)


def _eights(start: int, stop: int) -> list[int]:
    return [sum(range(i, min(i + 8, stop))) for i in range(start, stop, 8)]


@pytest.mark.parametrize(
    ("n", "here"),
    [
        # up to CLIENT_PARTS maps: no merge task, every partial comes here
        (16, list(range(16))),
        # 25 maps: the first 16 merged in two tasks, the last 9 come as they are
        (25, [*_eights(0, 16), *range(16, 25)]),
        # 200 maps: 25 merges of 8; two more of the first 16 of those
        (200, [sum(range(64)), sum(range(64, 128)), *_eights(128, 200)]),
        # 129 maps: 16 merges of 8 (never a merge of one), then one of the
        # first 8 of those
        (129, [sum(range(64)), *_eights(64, 128), 128]),
    ],
)
def test_the_workers_merge_only_what_would_leave_too_many_here(
    local_cluster: object, n: int, here: list[int]
) -> None:
    assert dask_cluster.FAN_IN == 8
    assert dask_cluster.CLIENT_PARTS == 16
    work = [dask_cluster.Work(int, (str(i),), f"{i}.log") for i in range(n)]
    with distributed.Client(local_cluster, set_as_default=False) as client:
        finals: list[list[int]] = []

        def final(parts: list[int]) -> int:
            finals.append(parts)
            return sum(parts)

        got = dask_cluster.run(client, work, _add, final=final)  # type: ignore[arg-type]
        assert got == sum(range(n))
        assert finals == [here]
        if n > dask_cluster.CLIENT_PARTS:  # a merge on a worker fails
            with pytest.raises(ReportError) as info:
                dask_cluster.run(client, work, _refuse)  # type: ignore[arg-type]
            assert str(info.value) == (
                "merging the partials failed on the cluster: RuntimeError: no "
                "merge today; see the workers' logs"
            )


def test_an_input_a_worker_cannot_open_stops_the_run(
    local_cluster: object, tmp_path: Path
) -> None:
    """A worker that cannot open what this machine opened (a mount missing on
    one node) must not drop the input's rows behind a warning: the task fails,
    runs again elsewhere, and the run stops naming the input."""
    import functools

    here = tmp_path / "here.log"
    here.write_bytes((SAMPLES / "elb-access.log").read_bytes())
    fmt = pplog.formats.get_format("elb_log")
    policy = pplog.LogSpec.build().resolve_policy(fmt)
    gone = pplog.tasks.Task(
        (pplog.sources.Source("gone.log", tmp_path / "not-on-this-node.log"),),
        fmt,
        policy,
    )
    visible = pplog.tasks.Task((pplog.sources.Source("here.log", here),), fmt, policy)
    assert dask_cluster._opens_here(visible)
    assert not dask_cluster._opens_here(gone)
    settings = pplog.tasks.MapSettings(escape=fmt.escape)
    strict = functools.partial(dask_cluster.map_on_worker, must_open=True)
    with distributed.Client(local_cluster, set_as_default=False) as client:
        with pytest.raises(ReportError) as info:
            dask_cluster.run(
                client,
                [
                    dask_cluster.Work(strict, (visible, settings), "here.log"),
                    dask_cluster.Work(strict, (gone, settings), "gone.log"),
                ],
                pplog.tasks.merge,
            )
        assert str(info.value).startswith(
            "a worker cannot open `gone.log` (cannot open: No such file or directory "
            "on this worker): the workers must see the inputs"
        )
        # what this machine cannot open either is a warning, as in a local run
        lenient = functools.partial(dask_cluster.map_on_worker, must_open=False)
        partial = dask_cluster.run(
            client,
            [dask_cluster.Work(lenient, (gone, settings), "gone.log")],
            pplog.tasks.merge,
        )
        assert [name for name, _ in partial.problems(warnings=True)] == ["gone.log"]


@pytest.mark.slow  # 13 s: a worker killed and the run retried on another
def test_a_worker_killed_mid_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL to a worker holding map tasks: the run still equals the local run."""
    lines = (SAMPLES / "main-access.log").read_bytes()
    log = tmp_path / "access.log"
    log.write_bytes(lines * 12)
    monkeypatch.setattr(dask_cluster, "RANGE_BYTES", 128 << 10)
    local = _local([str(log)])
    with running_cluster(tmp_path) as found:
        result: dict[str, object] = {}

        def run() -> None:
            try:
                result["json"] = _remote([str(log)], found.address)
            except Exception as exc:  # noqa: BLE001 - reported below
                result["error"] = exc

        thread = threading.Thread(target=run)
        thread.start()
        with distributed.Client(found.address, set_as_default=False) as watcher:
            victim = _busy_worker(watcher, found, deadline=time.monotonic() + 60)
            os.kill(victim.pid, signal.SIGKILL)
            assert thread.is_alive(), "the run ended before the worker was killed"
        thread.join(timeout=120)
        assert not thread.is_alive()
        assert victim.wait(timeout=10) == -signal.SIGKILL
    assert "error" not in result, result
    assert result["json"] == local


def _busy_worker(
    client: object, found: Cluster, deadline: float
) -> subprocess.Popen[bytes]:
    """The worker process that is running a map task now."""
    pids = client.run(os.getpid)  # type: ignore[attr-defined]
    ours = {w.pid: w for w in found.workers}
    while time.monotonic() < deadline:
        processing = client.processing()  # type: ignore[attr-defined]
        for address, keys in processing.items():
            if any(str(k).startswith("pplog-map-") for k in keys):
                return ours[pids[address]]
        time.sleep(0.02)
    pytest.fail("no worker ran a map task in time")


@pytest.mark.slow  # a cluster of its own and a run of 400 files: about 20 s
def test_a_scheduler_lost_mid_run_is_one_error_line(tmp_path: Path) -> None:
    """The scheduler killed while the maps run: the run printed two of
    Dask's tracebacks (36 lines) and blamed "merging the partials" and the
    workers' logs; it is one `Error:` line that names the lost scheduler."""
    logs = tmp_path / "logs"
    logs.mkdir()
    lines = (SAMPLES / "main-access.log").read_bytes().splitlines(keepends=True)
    for i in range(400):
        (logs / f"v{i:04d}.log").write_bytes(b"".join(lines[: 50 + i % 50]))
    with running_cluster(tmp_path) as found:
        run = subprocess.Popen(
            [sys.executable, "-m", "pplog", "summarize", str(logs)]
            + ["--cluster", found.address, "--to", "json"],
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            with distributed.Client(found.address, set_as_default=False) as watcher:
                deadline = time.monotonic() + 60
                while not any(
                    str(k).startswith("pplog-map-")
                    for keys in watcher.processing().values()
                    for k in keys
                ):
                    assert time.monotonic() < deadline, "no map task ran in time"
                    assert run.poll() is None, "the run ended before the kill"
                    time.sleep(0.02)
            scheduler = found.procs[0]
            os.killpg(scheduler.pid, signal.SIGKILL)
            _, stderr = run.communicate(timeout=120)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait(timeout=10)
    assert run.returncode == 1
    said = stderr.splitlines()
    assert len(said) == 1, stderr[-3000:]
    assert said[0].startswith(
        f"Error: lost the Dask scheduler at `{found.address}` during the run"
    ), said


def test_an_empty_cluster_option_is_bad_usage() -> None:
    """`--cluster ''` ran in this process without a word, where the API's
    `cluster=''` is refused; an empty `PPLOG_CLUSTER` is no setting."""
    from click.testing import CliRunner

    from pplog.cli import cli

    log = str(SAMPLES / "elb-access.log")
    refused = CliRunner().invoke(cli, ["summarize", log, "--cluster", ""])
    assert refused.exit_code == 2, refused.output
    assert "cannot use `` as a Dask scheduler address" in refused.output
    unset = CliRunner().invoke(cli, ["summarize", log], env={"PPLOG_CLUSTER": ""})
    assert unset.exit_code == 0, unset.output
