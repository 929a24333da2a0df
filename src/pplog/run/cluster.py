"""Map tasks on a Dask cluster: the same tasks, merged in a tree on the workers.

    client: tasks (one per file, per 64 MiB byte range of a large plain file)
    workers: map_task -> Partial ─┐
                                  ├ merge (8 at a time, on the workers, only
    workers: map_task -> Partial ─┘   while more than 16 partials would be left)
        ... ─► 16 or fewer partials ─► client: merge (concatenating) ─► finish

A map task has no side effects (its temporary files aside), so a task whose
worker died is simply run again elsewhere and the merged result is exact.
Inputs must be paths the workers can open (a shared filesystem) with the
same names, or object storage URLs they open themselves: relative paths
are made absolute against this process's directory, and the `source`
column keeps the name given.
Dask is an optional dependency (`pplog[dask]`), imported here only.
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pplog import sources
from pplog.errors import OptionError, PplogError, ReportError
from pplog.reports.partial import Partial
from pplog.sources import ProblemHandler, ProgressHandler, Source
from pplog.tasks import Task

# A byte range per task: large enough that a task's start (a scan, a spool,
# a Partial sent back) is noise, small enough that a large file is shared
# by several workers. `sources.split_source` cuts only plain files.
RANGE_BYTES = 64 << 20
FAN_IN = 8  # partials merged per merge task
# Partials this process merges itself, at the end: it concatenates the
# large frames `finish` groups again (the pairs, per-client sums, errors,
# timeline) and groups the small ones, 10 ms for 16 partials of 250k lines,
# where a merge task groups them all on one single-threaded worker (0.4 s
# for 8 such partials) and sends the result on. So the workers merge only
# what would leave more than this here; this process then holds at most
# this many partials, each bounded by its inputs' distinct keys.
CLIENT_PARTS = 16
RETRIES = 2  # a task that raised is tried this many more times
CONNECT_SECONDS = 5
# a scheduler without workers would hold the run without end: workers that
# are starting have this long to join
WORKERS_SECONDS = 30
INSTALL = "pip install 'pplog[dask]'"


@dataclass(frozen=True)
class Work:
    """One map task for the cluster: `fn(*args) -> Partial`, and what it reads."""

    fn: Callable[..., Partial]
    args: tuple[Any, ...]
    name: str  # the input, for messages
    size: int = 0  # bytes, for progress


def _distributed() -> Any:
    """The `distributed` module, or an `OptionError` saying how to install it."""
    try:
        import distributed
    except ImportError as exc:
        msg = f"running on a Dask cluster needs Dask: {INSTALL}"
        raise OptionError(msg) from exc
    return distributed


def _checked_address(address: str) -> str:
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address.strip())
        parse_host_port(location)
    except ValueError as exc:
        msg = (
            f"cannot use `{address}` as a Dask scheduler address ({exc}); "
            "give it as tcp://HOST:PORT"
        )
        raise OptionError(msg) from exc
    if scheme not in ("tcp", "tls", "ws", "wss"):
        msg = (
            f"cannot use `{address}` as a Dask scheduler address (protocol "
            f"`{scheme}`); give it as tcp://HOST:PORT"
        )
        raise OptionError(msg)
    return f"{scheme}://{location}"


@contextlib.contextmanager
def connected(cluster: object) -> Iterator[Any]:
    """A `distributed.Client` for `cluster`.

    A `Client` is used as it is and left open; an address string
    (``tcp://HOST:8786``) or a cluster object (`LocalCluster`, ...) is
    connected to here, with a short timeout, and closed at the end.
    """
    distributed = _distributed()
    if isinstance(cluster, distributed.Client):
        yield cluster
        return
    if isinstance(cluster, str):
        address = _checked_address(cluster)
        _probe(address, distributed)
        try:
            client = distributed.Client(
                address, timeout=CONNECT_SECONDS, set_as_default=False
            )
        except (OSError, TimeoutError) as exc:
            msg = (
                f"cannot reach the Dask scheduler at `{address}`: {_first(exc)}; "
                "is it running?"
            )
            raise ReportError(msg) from None
        try:
            _wait_for_workers(client, address)
        except BaseException:
            client.close()
            raise
    elif hasattr(cluster, "scheduler_address"):  # LocalCluster, SSHCluster, ...
        client = distributed.Client(
            cluster, timeout=CONNECT_SECONDS, set_as_default=False
        )
    else:
        msg = (
            "`cluster` is a Dask scheduler address (tcp://HOST:8786), a "
            f"`distributed.Client` or a cluster object, not {type(cluster).__name__}"
        )
        raise OptionError(msg)
    try:
        yield client
    finally:
        client.close()


def _first(exc: BaseException) -> str:
    """The first line of what `exc` says, or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _probe(address: str, distributed: Any) -> None:
    """A `ReportError` unless a Dask scheduler answers at `address` within
    `CONNECT_SECONDS` (and one more for its handshake). `distributed.Client`
    waits without end for the handshake of a port that accepts and says
    nothing (the dashboard's, 8787, for the scheduler's 8786), and reads
    another service's answer as a frame (an HTTP server's: a 3 EiB
    allocation). Run on a thread with a loop of its own, so that a
    notebook's running loop is no obstacle."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    connect = distributed.comm.core.connect  # typed Any, as the module is
    args = distributed.Security().get_connection_args("client")

    async def handshake() -> None:
        comm = await connect(address, timeout=CONNECT_SECONDS, **args)
        await comm.close()

    async def bounded() -> None:  # the connection's timeout first, if it is one
        await asyncio.wait_for(handshake(), CONNECT_SECONDS + 1)

    with ThreadPoolExecutor(1, thread_name_prefix="pplog-probe") as pool:
        try:
            pool.submit(asyncio.run, bounded()).result()
        except TimeoutError:
            msg = (
                f"`{address}` accepts connections but does not answer as a Dask "
                f"scheduler within {CONNECT_SECONDS + 1} s: is it the scheduler's "
                "port (8786 by default), not the dashboard's (8787)?"
            )
            raise ReportError(msg) from None
        except OSError as exc:
            msg = (
                f"cannot reach the Dask scheduler at `{address}`: {_first(exc)}; "
                "is it running?"
            )
            raise ReportError(msg) from None
        except Exception as exc:  # noqa: BLE001 - whatever the other end sent
            if address.startswith(("tls://", "wss://")):
                msg = (
                    f"cannot connect to the Dask scheduler at `{address}`: "
                    f"{_first(exc)} (a {address.split(':')[0]}:// scheduler needs "
                    "Dask's TLS settings, `distributed.comm.tls` in its configuration)"
                )
            else:  # another service's answer, read as a Dask frame
                msg = (
                    f"`{address}` answers, but not as a Dask scheduler: is it the "
                    "scheduler's port (8786 by default)?"
                )
            raise ReportError(msg) from None


def _wait_for_workers(client: Any, address: str) -> None:
    """Return once the scheduler has a worker; a `ReportError` after
    `WORKERS_SECONDS` without one (the run would wait without end)."""
    if client.scheduler_info().get("workers"):
        return
    try:
        client.wait_for_workers(1, timeout=WORKERS_SECONDS)
    except TimeoutError:
        msg = (
            f"the Dask scheduler at `{address}` has no workers (waited "
            f"{WORKERS_SECONDS} s): start them with `dask worker {address}`"
        )
        raise ReportError(msg) from None


def shared(src: Source) -> Source:
    """`src` as a worker opens it: a relative path made absolute, the name kept
    (a URL as it is: the workers open it with their own credentials).

    stdin and a pipe are this process's own: they cannot be read on a
    cluster.
    """
    if src.path is None and src.url is not None:
        return src
    if src.path is None or src.pipe:
        what = "stdin" if src.path is None else "a pipe"
        msg = (
            f"`{src.name}` ({what}) cannot be read on a cluster: the workers "
            "read paths; save it to a file they can see, or drop `--cluster`"
        )
        raise OptionError(msg)
    if not src.path.is_absolute():
        return replace(src, path=src.path.absolute())
    return src


def split(tasks: Sequence[Task]) -> list[Task]:
    """One task per input, large plain files in ranges of about `RANGE_BYTES`.

    An input that `split_source` would drop (its check finds it unusable)
    stays whole, so its worker reports it as a local run does.
    """
    out: list[Task] = []
    for task in tasks:
        for src in map(shared, task.sources):
            parts = [src]
            if task.format is not None and src.size >= 2 * RANGE_BYTES:
                n = src.size // RANGE_BYTES
                parts = sources.split_source(src, n, min_bytes=RANGE_BYTES) or [src]
            out.extend(task.of(part, first=i == 0) for i, part in enumerate(parts))
    return out


class WorkerCannotOpen(Exception):
    """A worker could not open an input this process can open."""


def map_on_worker(task: Task, settings: Any, *, must_open: bool) -> Partial:
    """`map_task` on a worker. With `must_open` (this process opened the
    input), a worker that cannot open it fails the task, so that Dask runs
    it again elsewhere and, failing everywhere, the run stops; locally the
    same input would have been read, so a warning would drop its rows."""
    from pplog.tasks import map_task

    def problem(name: str, message: str) -> None:
        if must_open and message.startswith(sources.CANNOT_OPEN):
            msg = f"{message} on this worker"
            raise WorkerCannotOpen(msg)

    return map_task(task, settings, on_problem=problem)


def _opens_here(task: Task) -> bool:
    """Whether this process can open every input of `task` (URLs: assumed)."""
    for src in task.sources:
        if src.path is None or src.skip is not None:  # a FIFO: not opened
            continue
        try:
            with src.path.open("rb"):
                pass
        except OSError:
            return False
    return True


def map_work(tasks: Sequence[Task], settings: Any) -> list[Work]:
    """The cluster's map tasks for `summarize`'s tasks."""
    return [
        Work(
            functools.partial(map_on_worker, must_open=_opens_here(t)),
            (t, settings),
            t.sources[0].name,
            t.size,
        )
        for t in split(tasks)
    ]


def run(
    client: Any,
    work: Sequence[Work],
    merge: Callable[[list[Partial]], Partial],
    *,
    on_problem: ProblemHandler | None = None,
    on_progress: ProgressHandler | None = None,
    passthrough: tuple[type[BaseException], ...] = (),
    final: Callable[[list[Partial]], Partial] | None = None,
) -> Partial:
    """Run `work` on the cluster and return the merged partial.

    `merge` must be associative and commutative (it runs in a tree, in no
    fixed order, `FAN_IN` partials a task, only as far as needed to leave
    `CLIENT_PARTS` or fewer); those are sent here as each is done and
    merged by `final` (default `merge`): for a partial that only `finish`
    reads, a merge that leaves the frames `finish` groups again
    concatenated, so the run does not wait for merge tasks and their
    transfers at its end (on 16 inputs of 250k lines, two merges of 8 on
    single-threaded workers took 0.4 s each, the last after the last map).

    `on_progress` gets each finished task's bytes; the problems the tasks
    met reach `on_problem` at the end, in the inputs' order. A task that
    raises a `PplogError` (or one of `passthrough`) re-raises it here; one
    that keeps failing (its workers died, or it raised something else after
    its retries) is a `ReportError` naming its input.
    """
    distributed = _distributed()
    if not work:
        msg = "no map task to run"
        raise ValueError(msg)
    run_id = uuid.uuid4().hex[:12]
    total = sum(w.size for w in work)
    maps = [
        client.submit(w.fn, *w.args, key=f"pplog-map-{run_id}-{i}", retries=RETRIES)
        for i, w in enumerate(work)
    ]
    of = {future.key: w for future, w in zip(maps, work, strict=True)}
    level = maps
    depth = 0
    while len(level) > CLIENT_PARTS:
        depth += 1
        # as few merges as bring the level within CLIENT_PARTS, of the
        # first inputs (submitted first, so done first): they run while
        # the later maps still do, and the last maps come here unmerged
        need = -(-(len(level) - CLIENT_PARTS) // (FAN_IN - 1))
        groups = min(need, len(level) // FAN_IN)  # whole groups of FAN_IN
        level = [
            *(
                client.submit(
                    merge,
                    level[i * FAN_IN : (i + 1) * FAN_IN],
                    key=f"pplog-merge-{run_id}-{depth}-{i}",
                    retries=RETRIES,
                    # ahead of the maps still waiting: a merge whose inputs
                    # are done runs while the others map
                    priority=depth,
                )
                for i in range(groups)
            ),
            *level[groups * FAN_IN :],
        ]
    last = level
    # only the futures still running are held here: a map's partial is
    # released on its worker once merged, not kept to the end of the run
    live = {future.key: future for future in maps}
    # the last level's partials come here as each is done, while the rest
    # still runs
    wanted = {future.key: i for i, future in enumerate(last)}
    parts: list[Partial | None] = [None] * len(last)
    finished = distributed.as_completed(
        [*maps, *(f for f in last if f.key not in of)], loop=client.loop
    )
    del maps, level
    try:
        for future in finished:
            w = of.get(future.key)
            if future.status == "cancelled":  # not by us: the scheduler is gone
                _lost(client, future)
            if future.status == "error":
                if w is not None:
                    _raise(future.exception(), w.name, distributed, passthrough)
                _merge_failed(future.exception(), distributed, passthrough)
            if w is not None:
                del live[future.key]
                if on_progress is not None:
                    on_progress(w.size, total)
            if future.key in wanted:
                try:
                    parts[wanted[future.key]] = future.result()
                except Exception as exc:  # noqa: BLE001 - as a failed merge
                    _merge_failed(exc, distributed, passthrough)
    except BaseException:  # a failed task, Ctrl-C: stop the rest of the run
        client.cancel([*last, *live.values()])
        raise
    done = [p for p in parts if p is not None]
    partial = (final or merge)(done) if len(done) > 1 else done[0]
    if on_problem is not None:
        for name, message in partial.problems(warnings=True):
            on_problem(name, message)
    return partial


def _lost(client: Any, future: Any) -> None:
    """The run's futures were cancelled under it: the connection to the
    scheduler was lost (it died, or the network went)."""
    address = getattr(client.scheduler, "address", None) or "the scheduler"
    why = ""
    with contextlib.suppress(Exception):  # why Dask cancelled it, if it says
        reason = getattr(future.exception(timeout=0), "reason", "")
        why = f" ({reason})" if reason else ""
    msg = (
        f"lost the Dask scheduler at `{address}` during the run{why}: nothing "
        "was reported; run again once it is back"
    )
    raise ReportError(msg)


def _merge_failed(
    exc: BaseException, distributed: Any, passthrough: tuple[type[BaseException], ...]
) -> None:
    if isinstance(exc, (PplogError, *passthrough)):
        raise exc
    msg = (
        f"merging the partials failed on the cluster: {_why(exc, distributed)}; "
        "see the workers' logs"
    )
    raise ReportError(msg) from exc


def _why(exc: BaseException, distributed: Any) -> str:
    if isinstance(exc, distributed.KilledWorker):
        return "its worker died every time it ran it (see the workers' logs)"
    first = _first(exc)
    return first if first == type(exc).__name__ else f"{type(exc).__name__}: {first}"


def _raise(
    exc: BaseException,
    name: str,
    distributed: Any,
    passthrough: tuple[type[BaseException], ...],
) -> None:
    if isinstance(exc, (PplogError, *passthrough)):
        raise exc
    if isinstance(exc, WorkerCannotOpen):
        msg = (
            f"a worker cannot open `{name}` ({exc}): the workers must see the "
            "inputs at the same paths as this machine (a shared filesystem), or "
            "read them from object storage URLs"
        )
        raise ReportError(msg) from exc
    msg = (
        f"reading `{name}` failed on the cluster: {_why(exc, distributed)}; "
        "see the workers' logs"
    )
    raise ReportError(msg) from exc
