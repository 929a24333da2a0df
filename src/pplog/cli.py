"""The `pplog` command line: options -> library call -> output, and exit codes."""

from __future__ import annotations

import contextlib
import functools
import gc
import inspect
import os
import resource
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

import pplog
import pplog._memory  # noqa: F401 - sets the allocator before polars loads
import pplog._threads  # noqa: F401 - and polars' threads from --jobs
from pplog import outputs
from pplog.clientip import HEADERS, MAX_HOPS, STRATEGIES, ProxyPolicy
from pplog.config import read_config
from pplog.errors import OptionError, PplogError
from pplog.formats import PRESETS, LogFormat, get_format
from pplog.outputs import safe_text
from pplog.outputs.targets import Targets
from pplog.outputs.targets import progress as progress_bar
from pplog.pipeline import LogSpec

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
# `pplog doctor`: it ran and found problems (1 is "could not run", 2 bad usage)
EXIT_FOUND_PROBLEMS = 3
# stdout closed by its reader (`pplog ... | head`): ended quietly with
# 128 + SIGPIPE, what a shell shows for Unix tools killed by the signal
EXIT_CLOSED_PIPE = 128 + 13


@contextlib.contextmanager
def errors_as_click() -> Iterator[None]:
    """Turn library errors into `Error: ...` and exit code 1."""
    try:
        yield
    except OptionError as exc:
        raise click.UsageError(str(exc)) from exc
    except PplogError as exc:
        raise click.ClickException(str(exc)) from exc


def _warn(message: str) -> None:
    click.echo(f"pplog: warning: {safe_text(message)}", err=True)


def _problem(name: str, message: str) -> None:
    """A problem with one input (`on_problem`): a warning, and the run goes on."""
    _warn(f"{name}: {message}")


_FORMAT_OPTIONS = [
    click.option(
        "--format",
        default="auto",
        show_default=True,
        metavar="NAME|auto",
        help=(
            f"Preset: {', '.join(PRESETS)}; `auto` picks, file by file, the "
            "one that parses its first lines."
        ),
    ),
    click.option(
        "--log-format",
        metavar="'STRING'",
        help=(
            "Your nginx log_format string, e.g. "
            "'$remote_addr [$time_local] \"$request\" $status'."
        ),
    ),
    click.option(
        "--nginx-conf",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Read the log_format from this nginx configuration (follows include).",
    ),
    click.option(
        "--log-format-name",
        metavar="NAME",
        help="Which log_format of --nginx-conf (needed when it defines several).",
    ),
]
_REAL_IP_OPTIONS = [
    click.option(
        "--set-real-ip-from",
        multiple=True,
        metavar="CIDR",
        help=(
            "A trusted balancer/proxy range, as nginx's set_real_ip_from "
            "(repeat; default: loopback and private ranges)."
        ),
    ),
    click.option(
        "--real-ip-header",
        type=click.Choice(["auto", *HEADERS]),
        help="Where the client address is (nginx's real_ip_header).",
    ),
    click.option(
        "--real-ip-recursive/--no-real-ip-recursive",
        default=None,
        help="Walk past trusted addresses (nginx real_ip_recursive) [default: on].",
    ),
    click.option(
        "--client-strategy",
        type=click.Choice(list(STRATEGIES)),
        default="realip",
        show_default=True,
        help=(
            "realip: nginx's rules; hops: the address --trusted-hops entries from "
            "the right; leftmost-public: first public address (spoofable)."
        ),
    ),
    click.option(
        "--trusted-hops",
        type=click.IntRange(min=1, max=MAX_HOPS),
        default=1,
        show_default=True,
        help="For --client-strategy hops: proxies that each append one address.",
    ),
]
GEOIP_HELP = {
    "report": "MaxMind DB (country/city and ASN; GeoLite2 or DB-IP), repeatable; "
    "default: found in /usr/share/GeoIP or /var/lib/GeoIP.",
    "rows": "MaxMind DB to add country and ASN to each row (repeatable); default: "
    "found in /usr/share/GeoIP or /var/lib/GeoIP.",
}
_FILTER_OPTIONS = [
    click.option(
        "--exclude-bots",
        is_flag=True,
        help="Leave out crawlers, AI crawlers, health checkers and scanners.",
    ),
    click.option(
        "--since",
        metavar="TIME",
        help="Only requests from TIME on: 2026-11-27T08:00 (UTC unless an offset), "
        "27/Nov/2026:08:00:00 +0000, or a duration back from now (15m, 1h, 2d).",
    ),
    click.option(
        "--until", metavar="TIME", help="Only requests before TIME (as --since)."
    ),
    click.option(
        "--status",
        multiple=True,
        metavar="5xx|404|400-499",
        help="Only these statuses (repeat or use commas).",
    ),
    click.option(
        "--client",
        multiple=True,
        metavar="ADDR|CIDR",
        help="Only these clients: drill down into one address or a range (repeatable).",
    ),
    click.option(
        "--path",
        multiple=True,
        metavar="REGEX",
        help="Only paths matching REGEX: drill down into part of a site (repeatable).",
    ),
]


def log_spec_options(
    *, filters: bool = False, geoip: str | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the format and real-IP options, and pass the command one `spec`.

    `geoip` (``"report"`` or ``"rows"``, the help text) adds `--geoip`;
    `filters` adds `--exclude-bots` and the row filters. The command gets a
    `LogSpec` built once from them (bad values: usage errors, exit 2).
    """
    options = [*_FORMAT_OPTIONS, *_REAL_IP_OPTIONS]
    if geoip is not None:
        options.append(
            click.option(
                "--geoip",
                multiple=True,
                type=click.Path(dir_okay=False, path_type=Path),
                help=GEOIP_HELP[geoip],
            )
        )
    if filters:
        options += _FILTER_OPTIONS

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        own = inspect.signature(func).parameters  # the rest build the spec

        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
            values = {k: kwargs.pop(k) for k in list(kwargs) if k not in own}
            with errors_as_click():
                spec = _spec(**values)
            return func(*args, spec=spec, **kwargs)

        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _spec(
    set_real_ip_from: tuple[str, ...],
    real_ip_header: str | None,
    real_ip_recursive: bool | None,  # noqa: FBT001
    client_strategy: str,
    trusted_hops: int,
    **values: Any,  # noqa: ANN401
) -> LogSpec:
    """The `LogSpec` of the options (a `ProxyPolicy` for strategies but realip)."""
    trusted = list(set_real_ip_from) or None
    if client_strategy == "realip":
        proxy: dict[str, Any] = {
            "trusted": trusted,
            "real_ip_header": real_ip_header,
            "recursive": real_ip_recursive,
        }
    else:
        policy = ProxyPolicy(
            trusted=trusted,
            header=real_ip_header or "auto",
            recursive=True if real_ip_recursive is None else real_ip_recursive,
            strategy=client_strategy,
            hops=trusted_hops,
        )
        proxy = {"policy": policy}
    for key in ("geoip", "status", "client", "path"):  # repeated: none is None
        if key in values:
            values[key] = list(values[key]) or None
    return LogSpec.build(**values, **proxy)


def route_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """`--by path|route` and `--route PATTERN` (summarize, top)."""
    options = [
        click.option(
            "--by",
            type=click.Choice(["path", "route"]),
            default="path",
            show_default=True,
            help="Group the paths table by path, or by route template (ids "
            "become :id).",
        ),
        click.option(
            "--route",
            "routes",
            multiple=True,
            metavar="PATTERN",
            help="A route for --by route, tried before the automatic templates: "
            "'/users/*' (* one segment, ** the rest); repeatable, first match wins.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


class ClosedPipe(Exception):  # noqa: N818 - a state, not a failure
    """stdout's reader is gone (`pplog ... | head`): the run ends quietly."""


class _Group(click.Group):
    """The `pplog` group: a closed stdout leaves click's hands as `ClosedPipe`.

    click turns a write to a closed pipe into exit 1 with nothing said, which
    the exit codes keep for errors with an `Error:` line; `main` ends such a
    run as Unix tools end, with 128 + SIGPIPE.
    """

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:  # `pplog --help | head -1`
            return super().make_context(info_name, args, parent, **extra)
        except BrokenPipeError as exc:
            raise ClosedPipe from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            raise ClosedPipe from exc


@click.group(cls=_Group, context_settings=CONTEXT)
@click.version_option(pplog.__version__, "-V", "--version", prog_name="pplog")
@click.option("--debug", is_flag=True, help="Show a traceback for unexpected failures.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:  # noqa: FBT001
    """Read nginx access logs written behind load balancers.

    Attributes each request to its real client (PROXY protocol, X-Forwarded-For)
    and reports per-client, per-path and error summaries.

    \b
    Examples:
      pplog summarize /var/log/nginx/access.log
      pplog summarize '/var/log/nginx/access.log*' --to json > summary.json
      pplog formats elb_log
    """
    ctx.obj = {"debug": debug}


@cli.command("summarize", context_settings=CONTEXT)
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@log_spec_options(filters=True, geoip="report")
@click.option(
    "--top",
    type=click.IntRange(min=0, max=2**31),
    help="Rows per table; 0 shows all [default: 10; csv and parquet: all].",
)
@click.option(
    "--to",
    "targets",
    multiple=True,
    default=["terminal"],
    show_default=True,
    type=click.Choice(outputs.available()),
    help="Output; repeat for several (the summary is computed once).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    help="File for json and html, directory for csv/parquet (missing directories "
    "are made; checked before reading) [default: stdout for json].",
)
@click.option(
    "--interval",
    metavar="DURATION",
    help="Timeline interval: 30s, 5m, 1h, 1d ... [default: from the time span].",
)
@route_options
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every rejected line (file, line, reason, text) to FILE as JSON lines.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=lambda: os.cpu_count() or 1,
    show_default="the number of cores",
    metavar="N",
    help="Cores to use: --jobs 1 keeps pplog to about one core on a busy server. "
    "polars' threads use them, and from 2 GiB of input a process per 2 GiB, "
    "at most N. The tables are the same for any N. Ignored with --cluster.",
)
@click.option(
    "--cluster",
    envvar="PPLOG_CLUSTER",
    metavar="tcp://HOST:PORT",
    help="Map on this Dask scheduler's workers (pip install 'pplog[dask]'): a "
    "task per file (plain files of 128 MiB or more in 64 MiB ranges); past 16 "
    "partials they merge on the workers, the rest here; the same tables as a "
    "local run. This machine and the workers "
    "must see the same paths (or give s3:// URLs). [env: PPLOG_CLUSTER]",
)
@click.option(
    "--approx",
    is_flag=True,
    help="Estimate paths per client, clients per path (HyperLogLog, ~1.6%) and "
    "latency percentiles (DDSketch, 1%) in fixed memory, for inputs whose "
    "distinct (client, path) pairs would not fit in memory.",
)
@click.option(
    "--width", type=click.IntRange(min=40), help="Terminal width to render for."
)
@click.option(
    "--color/--no-color",
    default=None,
    help="Colour the terminal report [default: on a terminal, unless NO_COLOR is set].",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress on stderr (default: when stderr is a terminal).",
)
def summarize_cmd(
    paths: tuple[str, ...],
    spec: LogSpec,
    top: int | None,
    targets: tuple[str, ...],
    output: str | None,
    interval: str | None,
    by: str,
    routes: tuple[str, ...],
    rejects: Path | None,
    jobs: int,
    cluster: str | None,
    approx: bool,  # noqa: FBT001
    width: int | None,
    color: bool | None,
    progress: bool | None,
) -> None:
    """Summarize requests per client, per path and per error.

    PATH may be files, globs, directories, `-` for stdin, or object storage
    URLs such as s3://bucket/prefix/ (the s3 extra; credentials and endpoint
    from the usual AWS settings); .gz, .bz2, .xz and .zst are read
    transparently.

    \b
    Examples:
      pplog summarize sample_logs/elb-access.log
      pplog summarize access.log access.log.1 access.log.2.gz --top 20
      pplog summarize access.log --format main --to json -o summary.json
      pplog summarize access.log --format main --set-real-ip-from 10.0.0.0/8
      pplog summarize access.log --nginx-conf /etc/nginx/nginx.conf
      pplog summarize access.log --since 1h --status 5xx
      pplog summarize access.log --client 203.0.113.7   # one client's requests
      pplog summarize access.log --path '^/api/' --by route --route '/users/*'
      pplog summarize access.log --to html -o report.html
      pplog summarize '/var/log/nginx/access.log*' --jobs 1   # one core
      pplog summarize huge.log --approx   # distinct counts in fixed memory
      pplog summarize /shared/logs/ --cluster tcp://10.0.0.5:8786   # Dask workers
      pplog summarize 's3://my-bucket/nginx/access.log*.gz'   # pip install 'pplog[s3]'
      zcat access.log.*.gz | pplog summarize - --rejects rejects.jsonl
    """
    if color is None and os.environ.get("NO_COLOR"):
        color = False  # https://no-color.org: any non-empty value
    if cluster and not click.get_current_context().find_root().params.get("debug"):
        _quiet_dask()
    with errors_as_click():
        plan = Targets.plan(targets, output, top)
        with progress_bar(progress, color=color) as on_progress:
            summary = pplog.summarize(
                list(paths),
                spec=spec,
                top=plan.top,
                interval=interval,
                by=by,
                routes=list(routes),
                rejects=rejects,
                jobs=jobs,
                cluster=cluster,  # `--cluster ""` is refused, not local
                approx=approx,
                on_problem=_problem,
                on_progress=on_progress,
            )
        plan.write(summary, width=width, color=color)


@cli.command("top", context_settings=CONTEXT)
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@log_spec_options(filters=True, geoip="report")
@click.option(
    "--to",
    "target",
    type=click.Choice(["terminal", "jsonl"]),
    help="terminal: the full-screen view; jsonl: one JSON object (the shape of "
    "`summarize --to json`) per interval, and a last one on SIGINT/SIGTERM "
    "[default: terminal when stdout is one, else jsonl].",
)
@click.option(
    "--window",
    type=click.Choice(["1m", "5m", "15m", "all"]),
    help="What the view counts: the last minute, the current minute and the "
    "4 or 14 before it, or everything since start (keys 1, 5, f, a switch) "
    "[default: 1m on the terminal, all for jsonl].",
)
@click.option(
    "--refresh",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="Read and redraw (or write an object) this often.",
)
@click.option(
    "--top",
    type=click.IntRange(min=1, max=10_000),
    help="Rows per table [default: as many as fit; jsonl: 10].",
)
@route_options
@click.option(
    "--max-keys",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    metavar="N",
    help="Keep at most N clients, paths, ... per table and window; the rest are "
    "folded into `(other)` (memory stays bounded however long top runs).",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Stop after this long, as on SIGTERM (jsonl).",
)
@click.option(
    "--color/--no-color",
    default=None,
    help="Colour the view [default: on a terminal, unless NO_COLOR is set].",
)
def top_cmd(
    paths: tuple[str, ...],
    spec: LogSpec,
    target: str | None,
    window: str | None,
    refresh: float,
    top: int | None,
    by: str,
    routes: tuple[str, ...],
    max_keys: int,
    duration: float | None,
    color: bool | None,
) -> None:
    """Watch logs live as nginx writes them: rates, statuses, top clients,
    paths and errors, latency, balancer checks.

    Starts at the end of the files (--since 10m: that far back, reading rotated
    files as needed) and follows them by name and by identity: after a rotation
    the old file is read to its end before the new one, a copytruncate is
    started again from the beginning, and a glob picks up new files. Every
    line is counted once.

    \b
    Keys: 1, 5, f (15m) and a (all) switch the window, w cycles, q quits.

    \b
    Examples:
      pplog top /var/log/nginx/access.log
      pplog top '/var/log/nginx/*.log' --since 10m --window 15m
      pplog top access.log --format elb_log --set-real-ip-from 10.0.0.0/8
      pplog top access.log --to jsonl --window 1m > live.jsonl   # one object a second
      pplog top access.log --to jsonl --duration 60 | tail -n 1   # a minute's summary
    """
    from pplog.outputs.live import SHOWN, run_screen, write_jsonl
    from pplog.run.live import Live

    if color is None and os.environ.get("NO_COLOR"):
        color = False
    screen = target == "terminal" or (target is None and sys.stdout.isatty())
    if screen and not sys.stdout.isatty():
        msg = "the terminal view needs a terminal: pass --to jsonl to write JSON lines"
        raise click.UsageError(msg)
    with (
        errors_as_click(),
        Live(
            list(paths),
            spec=spec,
            top=top or (50 if screen else 10),
            by="route" if routes else by,
            routes=list(routes),
            max_keys=max_keys,
            tables=SHOWN if screen else None,
            # the screen shows warnings; stderr would write over it
            on_warning=None if screen else _warn,
        ) as live,
    ):
        if screen:
            run_screen(live, window=window or "1m", refresh=refresh, color=color)
            for message in live.warnings:  # still there once the screen is gone
                _warn(message)
        else:
            write_jsonl(
                live,
                sys.stdout,
                window=window or "all",
                refresh=refresh,
                duration=duration,
            )


@cli.command("doctor", context_settings=CONTEXT)
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option(
    "--error-log",
    "error_logs",
    multiple=True,
    metavar="FILE",
    help="nginx error log to read too (repeatable): `broken header` lines live there.",
)
@log_spec_options()
@click.option(
    "--to",
    "target",
    type=click.Choice(["terminal", "json"]),
    default="terminal",
    show_default=True,
    help="Where the findings go.",
)
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning", "never"]),
    default="error",
    show_default=True,
    help=(
        f"Exit {EXIT_FOUND_PROBLEMS} when a finding is at least this severe "
        "(`warning` includes errors; `never`: exit 0)."
    ),
)
def doctor_cmd(
    paths: tuple[str, ...],
    error_logs: tuple[str, ...],
    spec: LogSpec,
    target: str,
    fail_on: str,
) -> None:
    """Diagnose load-balancer and PROXY-protocol setups from nginx logs.

    Finds PROXY headers reaching a plain listener, plain requests (health
    checks) reaching a proxy_protocol listener, TLS sent to a plain port,
    requests without a client address, traffic credited to balancer
    addresses, and X-Forwarded-For sent by untrusted peers. Each finding has
    an exact count, an explanation, the fix, and example lines. Error logs
    among the PATHs (a directory such as /var/log/nginx/) are read as error
    logs, as --error-log reads them. PATH may also be a dataset written by
    `pplog ingest`.

    \b
    Examples:
      pplog doctor /var/log/nginx/access.log --error-log /var/log/nginx/error.log
      pplog doctor /var/log/nginx/        # access and error logs, each as what it is
      pplog doctor access.log --format elb_log --to json
      pplog doctor --error-log /var/log/nginx/error.log
      pplog doctor access.log --fail-on warning --to json > findings.json

    \b
    Exit status (for cron and CI):
      0  no finding as severe as --fail-on
      1  could not run (`Error: ...` on stderr), or no input could be read
      2  bad usage
      3  found problems: a finding at least as severe as --fail-on
      141  stdout closed early by its reader (`| head`): nothing said
    """
    if not paths and not error_logs:
        msg = "give access logs (PATH...) and/or --error-log FILE"
        raise click.UsageError(msg)
    from pplog.outputs.doctor import write_findings, write_findings_json
    from pplog.reports.doctor import reaches

    with errors_as_click():
        findings = pplog.diagnose(
            list(paths) or None,
            list(error_logs) or None,
            spec=spec,
            on_problem=_problem,
        )
    (write_findings_json if target == "json" else write_findings)(findings)
    if fail_on != "never" and reaches(findings, fail_on):
        raise click.exceptions.Exit(EXIT_FOUND_PROBLEMS)


def _load_config(
    ctx: click.Context, _param: click.Parameter, path: Path | None
) -> None:
    """`--config FILE`: its keys become the options' defaults (`default_map`)."""
    if path is not None:
        with errors_as_click():
            ctx.default_map = {**(ctx.default_map or {}), **read_config(path)}


@cli.command("ingest", context_settings=CONTEXT)
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option(
    "--dataset",
    type=click.Path(file_okay=False),  # text: Path("") would be "."
    help="The dataset directory (created on first use).",
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    is_eager=True,
    expose_value=False,
    callback=_load_config,
    help="TOML file with paths, dataset, format and attribution settings "
    "(relative paths in it are relative to the file; options given here win).",
)
@log_spec_options(geoip="rows")
@click.option(
    "--final-grace",
    type=click.FloatRange(min=0),
    help="Seconds a rotated file must be idle before a last line without newline "
    "counts [default: 900].",
)
@click.option(
    "--final",
    is_flag=True,
    help="Every file is finished (downloaded, archived, nothing writes to it): "
    "take a last line without newline now, even in a file named like the live "
    "log. Never for a file nginx still writes to.",
)
@click.option(
    "--compact-threshold",
    type=click.IntRange(min=0),
    help="Compact a date partition once it holds this many files; 0 never "
    "[default: 32].",
)
@click.option("-v", "--verbose", is_flag=True, help="Print one summary line.")
def ingest_cmd(
    paths: tuple[str, ...],
    dataset: str | None,
    spec: LogSpec,
    final_grace: float | None,
    final: bool,
    compact_threshold: int | None,
    verbose: bool,
) -> None:
    """Append new log lines to a Parquet dataset, exactly once (for cron).

    Reads every complete line written since the last run, across logrotate's
    create and copytruncate modes and compressed rotations, and appends it to
    DIR/requests/date=YYYY-MM-DD/ (rejected lines to DIR/rejects/). A crash,
    a full disk or an overlapping run never loses or doubles a line (what
    copytruncate itself drops between its copy and its truncate is gone before
    pplog can see it). Quiet on success; exit 0 when done (or when another run
    holds the lock), 1 on an error (nothing committed, unless it says `commit N
    of DIR is made`: the next run finishes that one), 2 on bad usage.

    A last line without newline is held back (-v and `pplog verify` say how
    many bytes) until its file is finished: rotated and idle for --final-grace,
    or compressed. For a file that is not being written any more (a log you
    downloaded), pass --final to take it now, exactly once.

    \b
    Examples:
      pplog ingest '/var/log/nginx/access.log*' --dataset /var/lib/pplog/access
      pplog ingest --config /etc/pplog.toml -v
      pplog ingest ./downloaded/*.log --dataset ./ds --final
      */5 * * * * pplog ingest --config /etc/pplog.toml     # crontab
    """
    from pplog.batch import Busy, ingest
    from pplog.outputs.ingest import STUCK_AFTER, run_lines, run_warnings

    if not paths:
        msg = (
            "give the log files (PATH..., e.g. '/var/log/nginx/access.log*') "
            "or `paths` in --config"
        )
        raise click.UsageError(msg)
    if dataset is None or not str(dataset).strip():
        msg = "give --dataset DIR (or `dataset` in --config)"
        raise click.UsageError(msg)
    tuning: dict[str, Any] = {  # None: the library's defaults
        "final_grace": final_grace,
        "compact_threshold": compact_threshold,
    }
    with errors_as_click():
        try:
            result = ingest(
                list(paths),
                dataset,
                spec=spec,
                final=final,
                on_problem=_warn,
                **{k: v for k, v in tuning.items() if v is not None},
            )
        except Busy as exc:
            held = exc.held or 0.0
            if held > STUCK_AFTER:  # cron would otherwise skip quietly forever
                _warn(f"{exc} for {held / 60:.0f} minutes; is it stuck?")
            elif verbose:
                click.echo(f"ingest: skipped: {safe_text(exc)}", err=True)
            return
    for warning in run_warnings(result):
        _warn(warning)
    if verbose:
        click.echo("\n".join(run_lines(result)), err=True)


@cli.command("verify", context_settings=CONTEXT)
@click.argument("dataset", type=click.Path(file_okay=False, path_type=Path))
def verify_cmd(dataset: Path) -> None:
    """Prove a dataset has every line read exactly once; report rejects.

    For each file stream, the rows and rejects must cover the bytes read
    with no gap and no line twice, and no stream may hold the lines of
    another of its log's rotation set (a copy read again). Exit 0 when that
    holds, 1 when not. Files outside one set that hold the same lines (a
    `.bak` copy, one log written to two files) are named, and bytes held
    back at the last run (a last line without newline, taken once its file
    is finished or with `ingest --final`) are listed.

    \b
    Examples:
      pplog verify /var/lib/pplog/access
    """
    from pplog.batch import verify

    with errors_as_click():
        found = verify(dataset)
    for line in found.lines():
        click.echo(safe_text(line))
    if not found.ok:
        raise click.exceptions.Exit(1)


@cli.command("compact", context_settings=CONTEXT)
@click.argument("dataset", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--min-files",
    type=click.IntRange(min=2),
    default=2,
    show_default=True,
    help="Compact a date partition holding at least this many files.",
)
def compact_cmd(dataset: Path, min_files: int) -> None:
    """Merge the small files of each date partition, keeping exactly-once.

    \b
    Examples:
      pplog compact /var/lib/pplog/access
    """
    from pplog.batch import Busy, compact_dataset, is_dataset

    if not is_dataset(dataset):  # not bad usage: exit 1, as `verify` does
        msg = f"`{dataset}` is not a dataset written by `pplog ingest`"
        raise click.ClickException(msg)
    with errors_as_click():
        try:
            done = compact_dataset(dataset, min_files=min_files)
        except Busy as exc:
            click.echo(f"compact: skipped: {safe_text(exc)}", err=True)
            return
    click.echo(f"compacted {done} partition(s)")


@cli.command("formats", context_settings=CONTEXT)
@click.argument("name", required=False)
@click.option(
    "--log-format", metavar="'STRING'", help="Show what this log_format compiles to."
)
def formats_cmd(name: str | None, log_format: str | None) -> None:
    """List the format presets, or show what one compiles to.

    \b
    Examples:
      pplog formats
      pplog formats elb_log
      pplog formats --log-format '$remote_addr "$request" $status $request_time'
    """
    with errors_as_click():
        # a format pasted from a configuration is shown as every message
        # shows text it did not write: escaped, line by line
        if log_format is not None:
            click.echo(_lines_safe(LogFormat.from_string(log_format).describe()))
            return
        if name is not None:
            click.echo(_lines_safe(get_format(name).describe()))
            return
    width = max(len(n) for n in PRESETS)
    for preset in PRESETS.values():
        click.echo(f"{preset.name:<{width}}  {preset.description}")
    click.echo("\nShow one with `pplog formats NAME`; pass your own with --log-format.")


def _stdout_to_devnull() -> None:
    """Point stdout at /dev/null once its reader is gone.

    What Python's "Note on SIGPIPE" recommends: the interpreter flushes
    stdout again at exit, and that write would print "Exception ignored ...
    BrokenPipeError" on stderr.
    """
    with contextlib.suppress(AttributeError, OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _lines_safe(text: str) -> str:
    """`text` with each of its lines made safe (`safe_text`)."""
    return "\n".join(safe_text(line) for line in text.split("\n"))


def _stderr(text: str) -> None:
    if sys.stderr is not None:
        click.echo(text, err=True)


def _more_files() -> None:
    """The soft limit on open files raised to the hard one (at most 2**20),
    as Go programs do at start: `pplog top` keeps each file it follows open,
    and a directory of thousands of vhost logs is past the usual 1,024."""
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 1 << 20 if hard == resource.RLIM_INFINITY else min(hard, 1 << 20)
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _quiet_dask() -> None:
    """Leave Dask's client loggers only what is critical: a scheduler lost
    mid-run is one `Error:` line, not its reconnection tracebacks."""
    import logging

    with contextlib.suppress(ImportError):
        import distributed  # noqa: F401 - sets its loggers' levels on import
    names = logging.root.manager.loggerDict
    for name in ["distributed", *(n for n in names if n.startswith("distributed."))]:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI; turn anything unexpected into one `Error:` line."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    _more_files()
    # What the imports made (polars, click, pplog: some 40k objects) lives
    # until exit: set aside, the collector does not walk it again, and the
    # interpreter's exit after a 2M-line summary took 30-35 ms instead of
    # 50-83 (1.42 -> 1.37 s in eight alternating runs)
    gc.freeze()
    for stream in (
        sys.stdout,
        sys.stderr,
    ):  # log text may not fit the terminal's encoding
        if stream is not None and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        if sys.stdout is None:
            msg = "standard output is closed; pass -o FILE or open it"
            raise click.ClickException(msg)
        code = cli.main(args=argv, prog_name="pplog", standalone_mode=False)
        if sys.stdout is not None:  # what is buffered fails here, not at exit
            sys.stdout.flush()
        if isinstance(code, int) and code:  # a command's `Exit(n)` comes back as n
            sys.exit(code)
    except click.exceptions.Abort:
        _stderr("Aborted!")
        sys.exit(130)
    except click.ClickException as exc:
        if isinstance(exc, click.UsageError):
            # its message may quote an argument: shown inert, as log text is
            safe = safe_text(exc.format_message())
            click.UsageError(safe, ctx=exc.ctx).show()
        else:  # messages can quote file names and log text: keep them inert
            _stderr(f"Error: {safe_text(exc.format_message())}")
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except (BrokenPipeError, ClosedPipe):  # `pplog ... | head`: the reader is done
        _stdout_to_devnull()
        sys.exit(EXIT_CLOSED_PIPE)
    except KeyboardInterrupt:
        _stderr("Aborted!")
        sys.exit(130)
    except OSError as exc:  # writing the report failed: a full disk, a closed pipe
        if debug:
            raise
        where = f" (`{exc.filename}`)" if getattr(exc, "filename", None) else ""
        _stderr(f"Error: {safe_text(exc.strerror or exc)}{safe_text(where)}")
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - the one place nothing may escape
        if debug:
            raise
        text = str(exc)
        line = safe_text(text.splitlines()[0] if text else type(exc).__name__)
        _stderr(
            f"Error: unexpected failure ({type(exc).__name__}): {line}; "
            "rerun as `pplog --debug ...` and report it"
        )
        sys.exit(1)
