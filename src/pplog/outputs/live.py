"""`pplog top`'s outputs: a full-screen view, or one JSON object per interval.

Both drive a `run.live.Live`: poll the files, finish the window, show it,
wait for the next interval (or a key, a resize, a signal). SIGINT and
SIGTERM stop the loop; before the last view the files are read to their
current end (`poll(final=True)`), so a script that stops `top` after the
last request was logged gets every line in the last object.

Every value from a log reaches the screen through `safe_text` as a rich
`Text`, never as markup, as in the terminal report.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import sys
import termios
import time
import tty
from collections.abc import Iterator
from datetime import UTC, datetime
from types import FrameType
from typing import IO, TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.live import Live as RichLive
from rich.text import Text

from pplog.outputs._format import human_bytes, overview
from pplog.outputs._rich import TITLES, binned, fitted, spark
from pplog.outputs._safe import safe_text
from pplog.outputs.json import one_line

if TYPE_CHECKING:
    from pplog.run.live import Live, View

# The extra tables the screen shows: none (the overview, clients, paths and
# errors are always made; the status classes and balancer checks are in the
# overview), so none is computed for it.
SHOWN: frozenset[str] = frozenset()
WINDOW_KEYS = {"1": "1m", "5": "5m", "f": "15m", "a": "all"}
_ORDER = ("1m", "5m", "15m", "all")
_WINDOW_NAMES = {
    "1m": "last minute",
    "5m": "last 5 minutes",
    "15m": "last 15 minutes",
    "all": "since start",
}
_CLIENT_COLUMNS = (
    "client_ip",
    "requests",
    "errors_4xx",
    "errors_5xx",
    "bytes",
    "paths",
    "top_user_agent",
)
_PATH_COLUMNS = ("requests", "clients", "errors_4xx", "errors_5xx", "bytes")
_ERROR_COLUMNS = ("status", "path", "route", "requests", "clients", "top_clients")
_TABLE_CHROME = 5  # title, borders, header
_WARNINGS_SHOWN = 3  # the latest


class _Wakeup:
    """Signals and resizes wake the loop through a pipe; `stopped` says a
    stop was asked (SIGINT, SIGTERM; a second SIGINT interrupts at once)."""

    def __init__(self, *, resize: bool) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.write_fd, False)
        self.stopped = False
        self.resized = False
        self._old: dict[int, object] = {}
        wanted = [signal.SIGINT, signal.SIGTERM]
        if resize:
            wanted.append(signal.SIGWINCH)
        for sig in wanted:
            self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGWINCH:
            self.resized = True
        elif self.stopped and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: do not wait for the last read
        else:
            self.stopped = True
        with contextlib.suppress(OSError):
            os.write(self.write_fd, b"x")

    def wait(self, seconds: float, fds: tuple[int, ...] = ()) -> list[int]:
        """Sleep up to `seconds`; the fds of `fds` that became readable."""
        if self.stopped or seconds <= 0:
            return []
        # poll, not select: the followed files hold descriptors, and select
        # refuses any numbered 1024 or more (a directory of 3,600 logs)
        poller = select.poll()
        for fd in (self.read_fd, *fds):
            poller.register(fd, select.POLLIN)
        ready = []
        for fd, events in poller.poll(seconds * 1000):
            if events & select.POLLNVAL:
                raise OSError(errno.EBADF, os.strerror(errno.EBADF))
            ready.append(fd)  # readable, or at its end (as select says)
        if self.read_fd in ready:
            with contextlib.suppress(OSError):
                os.read(self.read_fd, 1024)
        return [fd for fd in ready if fd != self.read_fd]

    def close(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)  # type: ignore[arg-type]
        os.close(self.read_fd)
        os.close(self.write_fd)


@contextlib.contextmanager
def _wakeup(*, resize: bool) -> Iterator[_Wakeup]:
    wake = _Wakeup(resize=resize)
    try:
        yield wake
    finally:
        wake.close()


def write_jsonl(
    live: Live,
    stream: IO[str],
    *,
    window: str = "all",
    refresh: float = 1.0,
    duration: float | None = None,
) -> None:
    """One JSON object per interval (the shape of `summarize --to json`) for
    `window`, until SIGINT or SIGTERM (or `duration` seconds): then the files
    are read to their end and a last object is written."""
    with _wakeup(resize=False) as wake:
        start = time.monotonic()
        due = start
        while not wake.stopped:
            _catch_up(live, refresh)
            _write_line(stream, live.view(window))
            due += refresh
            if duration is not None and time.monotonic() - start >= duration:
                break
            wake.wait(due - time.monotonic())
        _read_to_end(live)
        _write_line(stream, live.view(window))


def _read_to_end(live: Live) -> None:
    """Everything written so far, a bounded read at a time, then the last
    lines of files renamed away (`final`)."""
    live.poll()
    while live.behind:
        live.poll()
    live.poll(final=True)


def _catch_up(live: Live, refresh: float) -> None:
    """Poll; again while the files hold more than one poll reads (a backlog),
    for at most one refresh."""
    start = time.monotonic()
    live.poll()
    while live.behind and time.monotonic() - start < refresh:
        live.poll()


def _write_line(stream: IO[str], view: View) -> None:
    stream.write(one_line(view.summary) + "\n")
    stream.flush()


def run_screen(
    live: Live,
    *,
    window: str = "1m",
    refresh: float = 1.0,
    color: bool | None = None,
    console: Console | None = None,
) -> None:
    """The full-screen view until `q` (or SIGINT, SIGTERM); the terminal is
    restored however it ends."""
    console = console or Console(
        highlight=False,
        markup=False,
        emoji=False,
        color_system="auto" if color is not False else None,
    )
    stdin = sys.stdin
    keys = stdin.isatty()
    saved = termios.tcgetattr(stdin.fileno()) if keys else None
    with _wakeup(resize=True) as wake:
        try:
            if keys:
                tty.setcbreak(stdin.fileno())
            with RichLive(
                console=console, screen=True, auto_refresh=False, transient=True
            ) as screen:
                due = time.monotonic()
                view = None
                while not wake.stopped:
                    if time.monotonic() >= due:
                        _catch_up(live, refresh)
                        view = live.view(window)
                        due = time.monotonic() + refresh
                    if view is not None:
                        screen.update(render(view, console), refresh=True)
                    wake.resized = False
                    ready = wake.wait(
                        due - time.monotonic(), (stdin.fileno(),) if keys else ()
                    )
                    if not ready:
                        continue
                    key = os.read(stdin.fileno(), 16).decode(errors="replace")
                    if "q" in key or "Q" in key:
                        break
                    chosen = _window_key(key, window)
                    if chosen != window:
                        window = chosen
                        view = live.view(window)
        finally:
            if saved is not None:
                termios.tcsetattr(stdin.fileno(), termios.TCSADRAIN, saved)


def _window_key(key: str, window: str) -> str:
    for char in key:
        if char in WINDOW_KEYS:
            window = WINDOW_KEYS[char]
        elif char in ("w", "\t"):
            window = _ORDER[(_ORDER.index(window) + 1) % len(_ORDER)]
    return window


def render(view: View, console: Console) -> RenderableType:
    """The view for the console's current size."""
    width, height = console.size
    summary = view.summary
    ov = overview(summary)
    parts: list[RenderableType] = []
    now = datetime.now(UTC).strftime("%H:%M:%S UTC")
    head = Text("pplog top", style="bold")
    head.append(f"  {_WINDOW_NAMES[view.window]}", style="bold cyan")
    head.append(f"  {now}  ")
    head.append("[1] [5] [f]15m [a]ll  [q]uit", style="dim")
    parts.append(head)
    parts.extend(_rates(view, width))
    parts.append(_statuses(ov))
    latency = _latency(view)
    if latency is not None:
        parts.append(latency)
    parts.append(_balancer(ov))
    # what is left after these lines, the footer, the warnings and each
    # table's title, borders and header is shared by the three tables
    warnings = view.warnings[-_WARNINGS_SHOWN:]
    spare = height - len(parts) - 1 - len(warnings) - 3 * _TABLE_CHROME
    rows = max(1, spare // 3)
    key = "route" if summary.by == "route" else "path"
    tables = (
        ("clients", summary.clients, _CLIENT_COLUMNS, int(ov.get("clients") or 0)),
        (
            "routes" if key == "route" else "paths",
            summary.paths,
            (key, *_PATH_COLUMNS),
            None,
        ),
        ("errors", summary.errors, _ERROR_COLUMNS, None),
    )
    for name, df, columns, total in tables:
        shown = df.select([c for c in columns if c in df.columns]).head(rows)
        if shown.height == 0:
            parts.append(Text(f"{TITLES.get(name, name)}: none", style="bold"))
        else:
            parts.append(fitted(console, name, shown, total))
    foot = Text(
        f"keys per table capped at {view.max_keys:,}", style="dim", no_wrap=True
    )
    if view.folded:
        foot.append(" (reached: the others are counted in (other))", style="yellow")
    files = [f for f in view.files if f.get("state") == "live"]
    foot.append(f"  following {len(files)} file{'s' if len(files) != 1 else ''}")
    parts.append(foot)
    parts.extend(
        Text(
            f"warning: {safe_text(w)}",
            style="yellow",
            no_wrap=True,
            overflow="ellipsis",
        )
        for w in warnings
    )
    return Group(*parts)


def _rates(view: View, width: int) -> list[Text]:
    """Requests/s and errors/s now (the last 5 s) and over the last seconds."""
    ticks = view.history
    label = 16
    room = max(10, width - label - 2)
    if not ticks:
        return [Text("requests/s  -"), Text("errors/s    -")]
    last = ticks[-1][0]
    per_second: dict[int, tuple[int, int]] = {}
    for second, n, failed in ticks:
        r, e = per_second.get(second, (0, 0))
        per_second[second] = (r + n, e + failed)
    span = range(max(ticks[0][0], last - room + 1), last + 1)
    requests = binned([per_second.get(s, (0, 0))[0] for s in span], room)
    errors = binned([per_second.get(s, (0, 0))[1] for s in span], room)
    recent = [per_second.get(s, (0, 0)) for s in range(last - 4, last + 1)]
    rate = sum(r for r, _ in recent) / len(recent)
    error_rate = sum(e for _, e in recent) / len(recent)
    top = max([*requests, 1])
    out = Text(f"requests/s {rate:>8,.1f} ", no_wrap=True)
    out.append(spark(requests, top), style="green")
    err = Text(f"errors/s   {error_rate:>8,.1f} ", no_wrap=True)
    err.append(spark(errors, top), style="red")
    return [out, err]


def _statuses(ov: dict[str, object]) -> Text:
    requests = int(ov.get("requests") or 0)  # type: ignore[call-overload]
    # clients folded into (other) past --max-keys: estimated (`capped`)
    about = "≈" if "overview.clients" in str(ov.get("approximate") or "") else ""
    out = Text(
        f"requests {requests:,}  clients {about}{ov.get('clients') or 0:,}  ",
        no_wrap=True,
        overflow="ellipsis",
    )
    styles = {"2xx": "green", "3xx": "cyan", "4xx": "yellow", "5xx": "red"}
    for cls in ("1xx", "2xx", "3xx", "4xx", "5xx", "other"):
        n = int(ov.get(f"status_{cls}") or 0)  # type: ignore[call-overload]
        if n or cls in styles:
            share = n / requests if requests else 0.0
            out.append(f"{cls} {n:,} ({share:.1%})  ", style=styles.get(cls, ""))
    rejected = int(ov.get("rejected") or 0)  # type: ignore[call-overload]
    if rejected:
        out.append(f"rejected lines {rejected:,}", style="yellow")
    out.append(f"  {human_bytes(int(ov.get('bytes') or 0))}", style="dim")  # type: ignore[call-overload]
    return out


def _latency(view: View) -> Text | None:
    if not view.latency:
        return None
    out = Text("latency ", no_wrap=True, overflow="ellipsis")
    for measure, (p50, p95, p99) in view.latency.items():
        values = "  ".join(
            f"{name} {'-' if v is None else f'{v * 1000:,.0f} ms'}"
            for name, v in (("p50", p50), ("p95", p95), ("p99", p99))
        )
        out.append(f"{measure}: {values}   ")
    return out


def _balancer(ov: dict[str, object]) -> Text:
    missing = int(ov.get("without_client_address") or 0)  # type: ignore[call-overload]
    forged = int(ov.get("forwarded_by_untrusted") or 0)  # type: ignore[call-overload]
    out = Text("balancer checks: ", no_wrap=True, overflow="ellipsis")
    out.append(
        f"without a client address {missing:,}", style="yellow" if missing else ""
    )
    out.append("  ")
    out.append(
        f"X-Forwarded-For from untrusted peers {forged:,}",
        style="yellow" if forged else "",
    )
    return out
