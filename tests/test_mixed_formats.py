"""A format per input: directories, globs and path lists of mixed nginx and AWS logs.

Each rotation set is detected on its own (as lnav does per file), `--format`
and friends force one format, `--nginx-conf` maps each file to the format of
the `access_log` that writes it, and `doctor` reads each file with its own
format. The balancers table is the same on every road (file, frame, dataset).
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections import Counter
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from polars.testing import assert_frame_equal

import pplog
from helpers import run_pplog
from pplog.cli import cli
from test_doctor import Lab, _need_haproxy, lab  # noqa: F401 - the real-nginx fixture

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_logs"
CORPORA = ROOT.parent / "shared" / "corpora"
ALB = CORPORA / "vrl" / "vrl_aws_alb_inputs.log"
CLB = CORPORA / "logstash-patterns" / "elb_access_log_cases.log"


def _common(src: Path, n: int) -> str:
    """`common` lines: combined without referer and user agent."""
    lines = src.read_text().splitlines()[:n]
    return "".join(line.rsplit(' "', 2)[0] + "\n" for line in lines)


def _mixed_dir(root: Path) -> Path:
    """combined, common, main, elb_log (plain and gzip'd rotation), alb, clb."""
    d = root / "nginx"
    d.mkdir()
    shutil.copy(SAMPLES / "combined-access.log", d / "combined.log")
    (d / "common.log").write_text(_common(SAMPLES / "combined-access.log", 400))
    # X-Forwarded-For decisions over a set read partly by polars, partly in Python
    main = (SAMPLES / "main-access.log").read_bytes().splitlines(keepends=True)
    (d / "main.log").write_bytes(b"".join(main[1400:]))
    (d / "main.log.1").write_bytes(b"".join(main[700:1400]))
    (d / "main.log.2.gz").write_bytes(gzip.compress(b"".join(main[:700])))
    lines = (SAMPLES / "elb-access.log").read_bytes().splitlines(keepends=True)
    (d / "elb.log").write_bytes(b"".join(lines[:1000]))
    (d / "elb.log.1").write_bytes(b"".join(lines[1000:2000]))
    (d / "elb.log.2.gz").write_bytes(gzip.compress(b"".join(lines[2000:])))
    if ALB.exists():
        shutil.copy(ALB, d / "alb.log")
    if CLB.exists():
        shutil.copy(CLB, d / "clb.log")
    return d


def _json(*args: str) -> dict[str, object]:
    result = CliRunner().invoke(cli, ["summarize", *args, "--to", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _counts(table: list[dict[str, object]], key: str) -> Counter[object]:
    out: Counter[object] = Counter()
    for row in table:
        out[row[key]] += row["requests"]  # type: ignore[operator]
    return out


def test_each_file_gets_its_own_format(tmp_path: Path) -> None:
    d = _mixed_dir(tmp_path)
    data = _json(str(d), "--top", "0")
    ov = data["overview"]
    assert isinstance(ov, dict)
    formats = {Path(f["source"]).name: f["format"] for f in ov["formats"]}
    expected = {
        "combined.log": "combined",
        "common.log": "common",
        "main.log": "main",
        "main.log.1": "main",
        "main.log.2.gz": "main",
        "elb.log": "elb_log",
        "elb.log.1": "elb_log",
        "elb.log.2.gz": "elb_log",
    }
    if ALB.exists():
        expected["alb.log"] = "alb"
    if CLB.exists():
        expected["clb.log"] = "clb"
    assert formats == expected
    assert ov["format"] == "mixed"
    # the same as each file summarized alone, added up
    alone = [_json(str(p), "--top", "0") for p in sorted(d.iterdir())]
    for key in ("lines", "requests", "rejected", "bytes", "status_4xx", "status_5xx"):
        assert ov[key] == sum(a["overview"][key] for a in alone), key  # type: ignore[index]
    for table, key in (("clients", "client_ip"), ("paths", "path")):
        together = _counts(data[table], key)  # type: ignore[arg-type]
        summed: Counter[object] = Counter()
        for a in alone:
            summed.update(_counts(a[table], key))  # type: ignore[arg-type]
        assert together == summed, table
    # before, the first file decided: most lines of the others were rejects
    assert ov["rejected"] < 20


def test_rotation_set_shares_one_detection(tmp_path: Path) -> None:
    d = tmp_path / "logs"
    shutil.copytree(SAMPLES / "rotated", d)
    (d / "access.log").write_text("")  # just rotated: nothing to detect from
    data = _json(str(d))
    ov = data["overview"]
    assert isinstance(ov, dict)
    formats = ov["formats"]
    assert [Path(f["source"]).name for f in formats] == [
        "access.log.2.gz",
        "access.log.1",
        "access.log",
    ]
    assert len({(f["format"], f["detection"]) for f in formats}) == 1
    assert ov["format"] != "mixed"


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_set_no_preset_fits_is_told_of_once_per_member_with_lines(
    tmp_path: Path, jobs: str
) -> None:
    """An `escape=json` log's rotation set after quiet days: the member with
    lines is told of, with advice that reads it (a preset forced reads no
    more of it); its empty members (a 0-byte live log, empty `.gz` files),
    which count no reject, are not (each had its own warning)."""
    d = tmp_path / "logs"
    d.mkdir()
    shutil.copy(SAMPLES / "combined-access.log", d / "access.log")
    line = '{{"time":"2026-12-08T02:36:06+00:00","request":"GET /{i} HTTP/1.1"}}\n'
    text = "".join(line.format(i=i) for i in range(63))
    (d / "json-access.log.3.gz").write_bytes(gzip.compress(text.encode()))
    (d / "json-access.log.2.gz").write_bytes(gzip.compress(b""))
    (d / "json-access.log.1").write_text("")
    (d / "json-access.log").write_text("")
    result = run_pplog("summarize", str(d), "--to", "json", "--jobs", jobs)
    assert result.returncode == 0, result.stderr
    told = [x for x in result.stderr.splitlines() if "json-access" in x]
    assert len(told) == 1, result.stderr
    assert told[0].startswith(
        f"pplog: warning: {d}/json-access.log.3.gz: no preset fits"
    )
    assert told[0].endswith(
        "pass --nginx-conf /etc/nginx/nginx.conf or --log-format 'ITS log_format' "
        "to read them"
    )
    ov = json.loads(result.stdout)["overview"]
    assert ov["rejected_by_reason"]["unknown_format"] == 63


def test_a_file_no_preset_fits_is_counted_and_named(tmp_path: Path) -> None:
    d = tmp_path / "logs"
    d.mkdir()
    shutil.copy(SAMPLES / "combined-access.log", d / "access.log")
    (d / "notes.txt").write_text("hello world\nthis is not a log\n\nthird\n")
    result = CliRunner().invoke(cli, ["summarize", str(d), "--to", "json"])
    assert result.exit_code == 0, result.output
    warnings = [x for x in result.stderr.splitlines() if "notes.txt" in x]
    assert len(warnings) == 1, result.stderr
    assert "no preset fits" in warnings[0]
    assert "counted as rejects" in warnings[0]
    ov = json.loads(result.stdout)["overview"]
    assert ov["rejected_by_reason"]["unknown_format"] == 4
    lines = len((SAMPLES / "combined-access.log").read_text().splitlines())
    assert ov["lines"] == lines + 4
    (notes,) = [f for f in ov["formats"] if f["source"].endswith("notes.txt")]
    assert notes["format"] is None
    # the rejects file keeps every one of its lines
    out = tmp_path / "rejects.jsonl"
    CliRunner().invoke(cli, ["summarize", str(d), "--rejects", str(out)])
    kept = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["raw"] for r in kept if r["source"].endswith("notes.txt")] == [
        "hello world",
        "this is not a log",
        "",
        "third",
    ]


def test_detection_error_names_the_closest_preset(tmp_path: Path) -> None:
    log = tmp_path / "odd.log"
    good = (SAMPLES / "combined-access.log").read_text().splitlines()[:3]
    log.write_text("\n".join(good + ["junk line"] * 7) + "\n")
    result = CliRunner().invoke(cli, ["summarize", str(log)])
    assert result.exit_code == 1
    message = result.output.strip()
    assert message.count("\n") == 0
    assert message.startswith("Error: no preset fits")
    assert "fits 3 of 10 sample lines" in message
    assert "--format combined" in message


def test_an_error_log_is_named_as_one(tmp_path: Path) -> None:
    log = tmp_path / "error.log"
    log.write_text(
        '2026/11/20 00:00:01 [error] 123#0: *5 broken header: "GET / HTTP/1.1" '
        "while reading PROXY protocol, client: 10.0.0.1, server: 0.0.0.0:80\n"
        "2026/11/20 00:00:02 [notice] 123#0: signal process started\n"
    )
    result = CliRunner().invoke(cli, ["summarize", str(log)])
    assert result.exit_code == 1
    assert "is an nginx error log, not an access log" in result.output
    assert "--error-log" in result.output


def test_an_error_log_on_stdin_is_told_the_command_that_reads_stdin() -> None:
    """It said `pplog doctor --error-log '<stdin>'`, which reads no file:
    stdin is `-`, and the command given reads it."""
    entry = (
        '2026/11/20 00:00:01 [error] 123#0: *5 broken header: "GET / HTTP/1.1" '
        "while reading PROXY protocol, client: 10.0.0.1, server: 0.0.0.0:80\n"
    )

    result = run_pplog("summarize", "-", input=entry)
    assert result.returncode == 1
    assert result.stderr.rstrip().endswith("read it with `pplog doctor --error-log -`")
    told = run_pplog("doctor", "--error-log", "-", input=entry)
    assert "plain-request-on-proxy-listener" in told.stdout


def test_format_option_forces_one_format(tmp_path: Path) -> None:
    d = _mixed_dir(tmp_path)
    data = _json(str(d), "--format", "combined")
    ov = data["overview"]
    assert isinstance(ov, dict)
    assert {f["format"] for f in ov["formats"]} == {"combined"}
    assert ov["format"] == "combined"
    # common lines lack the referer and agent: rejected under a forced combined
    assert ov["rejected"] >= 400


def test_nginx_conf_maps_each_file_to_its_access_log(tmp_path: Path) -> None:
    d = tmp_path / "logs"
    d.mkdir()
    shutil.copy(SAMPLES / "elb-access.log", d / "lb.log")
    shutil.copy(SAMPLES / "main-access.log", d / "app.log")
    gz = d / "app.log.1.gz"
    head = (SAMPLES / "main-access.log").read_bytes().splitlines(keepends=True)[:100]
    gz.write_bytes(gzip.compress(b"".join(head)))
    # a rotation named by logrotate's `dateext` belongs to the same access_log
    (d / "app.log-20261204.gz").write_bytes(gzip.compress(b"".join(head[:50])))
    shutil.copy(SAMPLES / "combined-access.log", d / "other.log")
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        "http {\n"
        "  log_format elb_log '$proxy_protocol_addr - $remote_user [$time_local] "
        '"$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"\';\n'
        '  log_format main \'$remote_addr - $remote_user [$time_local] "$request" '
        '$status $body_bytes_sent "$http_referer" "$http_user_agent" '
        '"$http_x_forwarded_for"\';\n'
        f"  server {{ listen 80 proxy_protocol; access_log {d}/lb.log elb_log; }}\n"
        f"  server {{ listen 81; access_log {d}/app.log main buffer=32k; }}\n"
        f"  server {{ listen 82; access_log {d}/other.log; }}\n"
        "}\n"
    )
    data = _json(
        str(d / "lb.log"),
        str(d / "app.log*"),
        str(d / "other.log"),
        "--nginx-conf",
        str(conf),
    )
    ov = data["overview"]
    assert isinstance(ov, dict)
    got = {Path(f["source"]).name: f["format"] for f in ov["formats"]}
    assert got == {
        "lb.log": "elb_log",
        "app.log-20261204.gz": "main",
        "app.log.1.gz": "main",
        "app.log": "main",
        "other.log": "combined",
    }
    how = {Path(f["source"]).name: f["detection"] for f in ov["formats"]}
    assert how["app.log-20261204.gz"] == how["app.log"]
    assert "of its access_log in" in how["app.log"]
    assert ov["rejected"] == 0
    # --log-format-name forces that one format on every file
    forced = _json(
        str(d / "lb.log"), "--nginx-conf", str(conf), "--log-format-name", "main"
    )
    assert {f["format"] for f in forced["overview"]["formats"]} == {"main"}  # type: ignore[index]


def test_scan_log_reads_each_file_with_its_format(tmp_path: Path) -> None:
    d = _mixed_dir(tmp_path)
    per_file = pl.concat(
        [pplog.read_log(p, include_rejects=True) for p in sorted(d.iterdir())],
        how="diagonal_relaxed",
    )
    key = ["source", "line"]
    cols = ["client_ip", "client_ip_source", "status", "path", "reject_reason"]
    expected = per_file.select(*key, *cols).sort(key)
    # the same answer every time, and with only the columns asked for: before,
    # a set read partly in Python numbered its (peer, header) pairs twice, in
    # two orders, and rows took another row's client
    for _ in range(3):
        rows = pplog.scan_log(d, include_rejects=True).select(*key, *cols).collect()
        assert_frame_equal(rows.sort(key), expected)


def _every_table(summary: pplog.Summary) -> dict[str, pl.DataFrame]:
    return {
        "overview": summary.overview,
        **summary.tables(),
        "rejects": summary.rejects,
        "reject_samples": summary.reject_samples.drop("source"),
    }


@pytest.mark.parametrize(
    "name", ["main-access.log", "elb-access.log", "combined-access.log"]
)
def test_every_table_is_the_same_on_every_road(tmp_path: Path, name: str) -> None:
    """File, frame from `scan_log` and ingested dataset give the same tables.

    Before, the balancers table of a frame or dataset had `via_proxy_protocol`,
    `via_header` and `direct` all 0, and ties between escaped texts (a user
    agent with `\\x22`) came out in another order.
    """
    log = SAMPLES / name
    from_file = _every_table(pplog.summarize(log, top=0))
    frame = pplog.scan_log(log, include_rejects=True)
    from_frame = _every_table(pplog.summarize(frame, top=0))
    ds = tmp_path / "ds"
    pplog.ingest([str(log)], ds, final_grace=0)
    from_dataset = _every_table(pplog.summarize(ds, top=0))
    if name != "combined-access.log":  # no header and no PROXY: no balancers
        lb = from_file["lb"]
        assert lb["via_proxy_protocol"].sum() + lb["via_header"].sum() > 0
    for road in (from_frame, from_dataset):
        assert road.keys() == from_file.keys()
        for table, df in from_file.items():
            assert_frame_equal(road[table], df, check_dtypes=False), table


@pytest.mark.nginx
def test_doctor_reads_each_file_with_its_format(lab: Lab) -> None:  # noqa: F811
    """A PROXY-protocol listener's elb_log and a plain listener's combined log
    (where HAProxy's `send-proxy` headers landed as `"PROXY TCP4 ..." 400`),
    both written by real nginx, diagnosed together in either order."""
    _need_haproxy(lab)
    pp, plain = str(lab.root / "pp.log"), str(lab.root / "hv1.log")
    runs = []
    for paths in ([pp, plain], [plain, pp]):
        result = CliRunner().invoke(
            cli,
            ["doctor", *paths, "--set-real-ip-from", "127.0.0.1/32", "--to", "json"],
        )
        assert result.exit_code in (0, 3), result.output
        runs.append(json.loads(result.stdout)["findings"])
    assert runs[0] == runs[1]
    counts = {f["code"]: f["count"] for f in runs[0]}
    # before, the first file's elb_log read the plain log's PROXY lines as a
    # second header behind a proxy_protocol listener (or rejected them)
    assert counts == {
        "proxy-header-on-plain-listener": 5,
        "double-proxy-header": 2,
        "missing-client-address": 3,
    }


@pytest.mark.nginx
def test_a_rotation_set_named_newest_first_is_detected_from_all_of_it(
    lab: Lab,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Just after a rotation the live log holds one line, named first as in
    `pplog summarize access.log access.log.1`: its one line decided the set,
    and `combined` and `elb_log` tie on a line with a client address, so
    the rotated file's PROXY-protocol lines (real nginx's, with `-` where a
    health check sent none) were read as `combined`. The sample is topped
    up from the members after it."""
    _need_haproxy(lab)
    lines = (lab.root / "pp.log").read_text().splitlines(keepends=True)
    assert any(line.startswith("- ") for line in lines)
    live = next(line for line in lines if not line.startswith("- "))
    (tmp_path / "elb.log.1").write_text("".join(lines))
    (tmp_path / "elb.log").write_text(live)
    for order in (["elb.log", "elb.log.1"], ["elb.log.1", "elb.log"]):
        data = _json(*(str(tmp_path / name) for name in order))
        ov = data["overview"]
        assert isinstance(ov, dict)
        assert {f["format"] for f in ov["formats"]} == {"elb_log"}, order
        assert ov["rejected"] == 0


@pytest.mark.nginx
def test_each_rotated_error_log_is_told_how_to_read_it(
    lab: Lab,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A directory as nginx leaves it: its access log and a rotated error log
    (`error.log`, `.1`, `.2.gz`), both written by real nginx. The set is
    detected once, from one member; each member's warning and detection note
    name the `doctor` command for that member, and none suggests a preset."""
    d = tmp_path / "nginx"
    d.mkdir()
    shutil.copy(lab.root / "plain.log", d / "access.log")
    errors = (lab.root / "error.log").read_bytes()
    assert b"broken header" in errors
    (d / "error.log").write_bytes(errors)
    (d / "error.log.1").write_bytes(errors)
    (d / "error.log.2.gz").write_bytes(gzip.compress(errors))
    result = CliRunner().invoke(cli, ["summarize", str(d), "--to", "json"])
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if "nginx error log" in line]
    names = ["error.log", "error.log.1", "error.log.2.gz"]
    assert len(warned) == len(names), result.stderr
    for name in names:
        path = str(d / name)
        (line,) = [w for w in warned if w.startswith(f"pplog: warning: {path}: ")]
        assert f"read it with `pplog doctor --error-log {path}`" in line
        assert line.count("--error-log") == 1
        assert "--format" not in line
    overview = json.loads(result.stdout)["overview"]
    assert overview["format"] == "mixed"
    detection = {f["source"]: f["detection"] for f in overview["formats"]}
    assert detection[str(d / "access.log")].startswith("auto-detected")
    for name in names:
        path = str(d / name)
        assert detection[path].endswith(f"`pplog doctor --error-log {path}`")
    assert overview["rejected_by_reason"] == {"unknown_format": 3 * errors.count(b"\n")}


@pytest.mark.nginx
def test_with_nginx_conf_an_error_log_is_not_read_with_its_format(
    lab: Lab,  # noqa: F811
    tmp_path: Path,
) -> None:
    """`--nginx-conf` gives inputs no `access_log` names the configuration's
    one format: an error log among them (written by real nginx) was read
    as `combined`, every line a silent `no_match` reject, and `doctor` missed
    its entries. It is named as an error log, as detection names it."""
    d = tmp_path / "nginx"
    d.mkdir()
    shutil.copy(lab.root / "plain.log", d / "access.log")
    shutil.copy(lab.root / "error.log", d / "error.log")
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"http {{\n  access_log {d}/access.log;\n  error_log {d}/error.log;\n}}\n"
    )
    logs = [str(d / "access.log"), str(d / "error.log")]
    result = CliRunner().invoke(
        cli, ["summarize", *logs, "--nginx-conf", str(conf), "--to", "json"]
    )
    assert result.exit_code == 0, result.output
    assert f"{d / 'error.log'}: an nginx error log, not an access log" in result.stderr
    formats = json.loads(result.stdout)["overview"]["formats"]
    assert [f["format"] for f in formats] == ["combined", None]
    doctor = ["doctor", *logs, "--nginx-conf", str(conf), "--to", "json"]
    result = CliRunner().invoke(cli, doctor)
    assert result.exit_code == 3, result.output
    codes = {f["code"]: f["count"] for f in json.loads(result.stdout)["findings"]}
    assert codes["plain-request-on-proxy-listener"] == 5  # from the error log


def test_one_format_among_unreadable_inputs_is_said_as_one(tmp_path: Path) -> None:
    d = tmp_path / "logs"
    d.mkdir()
    shutil.copy(SAMPLES / "combined-access.log", d / "access.log")
    (d / "notes.txt").write_text("this is not an access log\n" * 30)
    result = CliRunner().invoke(cli, ["summarize", str(d), "--top", "1"])
    assert result.exit_code == 0, result.output
    assert "(1 format: combined; some inputs fit no preset)" in result.stdout
    assert "1 formats" not in result.stdout


@pytest.mark.slow
def test_a_real_directory_of_mixed_and_damaged_logs(tmp_path: Path) -> None:
    """Larger generated logs of every format, gzip'd and plain, one damaged
    (a NUL hole mid-file, a 3 MiB line, a cut-off gzip member): the directory
    summarized at once equals each file summarized alone, added up."""
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import genlog

    d = tmp_path / "nginx"
    d.mkdir()

    def generate(fmt: str, lines: int, seed: int) -> bytes:
        out = tmp_path / f"gen-{fmt}-{seed}.log"
        with out.open("wb") as f:
            genlog.generate(fmt, lines, out=f, seed=seed)
        return out.read_bytes()

    combined = generate("combined", 60_000, 1)
    (d / "access.log").write_bytes(combined[: len(combined) // 2])
    (d / "access.log.1.gz").write_bytes(gzip.compress(combined[len(combined) // 2 :]))
    (d / "app.log").write_bytes(generate("main", 60_000, 2))
    elb = generate("elb_log", 60_000, 3)
    (d / "lb.log").write_bytes(elb)
    (d / "common.log").write_text(_common(SAMPLES / "combined-access.log", 3000))
    if ALB.exists():
        shutil.copy(ALB, d / "alb.log")
    if CLB.exists():
        shutil.copy(CLB, d / "clb.log")
    # damaged: a NUL hole, a line far past the 1 MiB cap, a truncated gzip
    good = generate("combined", 20_000, 4).splitlines(keepends=True)
    damaged = (
        b"".join(good[:5000])
        + b"\x00" * 4096
        + b"".join(good[5000:10000])
        + b'1.2.3.4 - - [20/Nov/2026:00:00:00 +0000] "GET /'
        + b"a" * (3 << 20)
        + b' HTTP/1.1" 200 1 "-" "-"\n'
        + b"".join(good[10000:])
    )
    (d / "old.log").write_bytes(damaged)
    cut = gzip.compress(b"".join(good[:8000]))
    (d / "old.log.1.gz").write_bytes(cut[: len(cut) * 3 // 4])

    together = _json(str(d), "--top", "0")
    alone = [_json(str(p), "--top", "0") for p in sorted(d.iterdir())]
    ov = together["overview"]
    assert isinstance(ov, dict)
    for key in ("lines", "requests", "rejected", "bytes", "status_4xx", "status_5xx"):
        assert ov[key] == sum(a["overview"][key] for a in alone), key  # type: ignore[index]
    for table, key in (("clients", "client_ip"), ("paths", "path")):
        summed: Counter[object] = Counter()
        for a in alone:
            summed.update(_counts(a[table], key))  # type: ignore[arg-type]
        assert _counts(together[table], key) == summed, table  # type: ignore[arg-type]
    # every good line of the damaged file was read; the NUL hole is no value
    # and the long line one `too_long` reject
    old = _json(str(d / "old.log"), "--top", "0")
    assert old["overview"]["requests"] == 20_000  # type: ignore[index]
    assert old["overview"]["rejected_by_reason"] == {"too_long": 1}  # type: ignore[index]
    assert not any("\x00" in str(c["client_ip"]) for c in old["clients"])  # type: ignore[union-attr]


def test_report_header_says_which_file_got_which_format(tmp_path: Path) -> None:
    d = _mixed_dir(tmp_path)
    (d / "notes.txt").write_text("hello world\n")
    result = CliRunner().invoke(cli, ["summarize", str(d), "--width", "1000"])
    assert result.exit_code == 0, result.output
    head = result.stdout.split("\n\n")[0]
    assert head.startswith("pplog mixed  (")
    assert f"elb_log: {d}/elb.log.2.gz, {d}/elb.log.1, {d}/elb.log" in head
    assert f"main: {d}/main.log" in head
    assert f"(none: no preset fits; lines rejected): {d}/notes.txt" in head
    html = tmp_path / "report.html"
    result = CliRunner().invoke(
        cli, ["summarize", str(d), "--to", "html", "-o", str(html)]
    )
    assert result.exit_code == 0, result.output
    assert f"<li>{d}/main.log: <b>main</b></li>" in html.read_text()


def test_doctor_examples_do_not_depend_on_the_order_of_paths(tmp_path: Path) -> None:
    lines = [
        f'10.0.1.5 - - [20/Nov/2026:00:00:0{i} +0000] "PROXY TCP4 198.51.100.{i} '
        f'10.0.0.7 3564{i} 80" 400 157 "-" "-"\n'
        for i in range(6)
    ]
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_text("".join(lines[:3]))
    b.write_text("".join(lines[3:]))
    runs = []
    for paths in ([a, b], [b, a]):
        result = CliRunner().invoke(cli, ["doctor", *map(str, paths), "--to", "json"])
        assert result.exit_code == 3, result.output
        runs.append(json.loads(result.stdout)["findings"])
    assert runs[0] == runs[1]
    (finding,) = runs[0]
    assert finding["count"] == 6
    assert [e.split(": ")[0] for e in finding["examples"]] == [
        f"{a}:1",
        f"{a}:2",
        f"{a}:3",
    ]


def test_ingest_refuses_inputs_of_different_formats(tmp_path: Path) -> None:
    """A dataset holds one format. Before, `ingest 'dir/*'` took the first
    file's format for all: 13 rows and 7,504 `no_match` rejects, exit 0."""
    d = _mixed_dir(tmp_path)
    ds = tmp_path / "ds"
    result = CliRunner().invoke(cli, ["ingest", f"{d}/*", "--dataset", str(ds)])
    assert result.exit_code == 1
    message = result.output.strip()
    assert message.count("\n") == 0
    assert message.startswith("Error: the inputs have different log formats (")
    assert "combined" in message and "main" in message
    assert not (ds / "requests").exists()
    # an empty file takes the format of the first set detected: the message
    # names the sets detected as each format (it named "zzz.log: combined")
    for name in ("aaa.log", "zzz.log"):
        (d / name).touch()
    result = CliRunner().invoke(cli, ["ingest", f"{d}/*", "--dataset", str(ds)])
    assert result.exit_code == 1
    assert result.output.strip() == message, result.output
    # one format, named as a directory (before: "nothing new ... 0 file(s)")
    one = tmp_path / "one"
    one.mkdir()
    for name in ("main.log", "main.log.1", "main.log.2.gz"):
        shutil.copy(d / name, one / name)
    result = CliRunner().invoke(cli, ["ingest", str(one), "--dataset", str(ds), "-v"])
    assert result.exit_code == 0, result.output
    assert "2,000 rows, 0 rejects" in result.output


def test_detection_parses_once_per_preset_however_many_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, each rotation set was parsed with every preset on its own: 500
    small files took 3,000 parses (18.8 s against 5.3 s before per-file
    detection)."""
    from pplog.pipeline import detect

    calls = []
    real = detect.parse

    def counting(*args: object, **kwargs: object) -> pl.LazyFrame:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(detect, "parse", counting)
    d = tmp_path / "many"
    d.mkdir()
    lines = (SAMPLES / "combined-access.log").read_text().splitlines(keepends=True)
    main = (SAMPLES / "main-access.log").read_text().splitlines(keepends=True)
    for i in range(60):
        source = main if i % 2 else lines
        (d / f"site{i:02d}.log").write_text("".join(source[i * 3 : i * 3 + 3]))
    groups = detect.resolve_groups(pplog.sources.expand([d]))
    assert len(calls) == len(detect.DETECTION_ORDER)
    names = [g.format.name for g in groups if g.format is not None]
    assert names == ["main" if i % 2 else "combined" for i in range(60)]


def test_nginx_conf_paths_are_normalised_and_unnamed_files_detected(
    tmp_path: Path,
) -> None:
    """`logs/../logs/lb.log` is the file an access_log names; a file no
    access_log names (an error log's neighbour) is detected, where before a
    configuration with several formats made the whole run an error."""
    d = tmp_path / "logs"
    d.mkdir()
    shutil.copy(SAMPLES / "combined-access.log", d / "lb.log")  # forced as elb_log
    shutil.copy(SAMPLES / "main-access.log", d / "other.log")  # named by none
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        "http {\n"
        "  log_format elb_log '$proxy_protocol_addr - $remote_user [$time_local] "
        '"$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"\';\n'
        "  log_format xff '$remote_addr $http_x_forwarded_for';\n"
        f"  server {{ access_log {d}/lb.log elb_log; }}\n"
        f"  server {{ access_log {d}/x.log xff; }}\n"
        "}\n"
    )
    data = _json(f"{d}/../logs/lb.log", str(d / "other.log"), "--nginx-conf", str(conf))
    got = {Path(f["source"]).name: f for f in data["overview"]["formats"]}  # type: ignore[index]
    assert got["lb.log"]["format"] == "elb_log"
    assert "of its access_log" in got["lb.log"]["detection"]
    assert got["other.log"]["format"] == "main"
    assert got["other.log"]["detection"].startswith("auto-detected")


def test_a_file_named_twice_is_read_once(tmp_path: Path) -> None:
    """`summarize logs logs/api.log` (or a link to it) counted api.log twice."""
    d = tmp_path / "logs"
    d.mkdir()
    shutil.copy(SAMPLES / "combined-access.log", d / "api.log")
    link = tmp_path / "api-link.log"
    link.symlink_to(d / "api.log")
    lines = len((SAMPLES / "combined-access.log").read_text().splitlines())
    data = _json(str(d), str(d / "api.log"), str(link))
    assert data["overview"]["lines"] == lines  # type: ignore[index]
    assert [f["source"] for f in data["overview"]["formats"]] == [str(d / "api.log")]  # type: ignore[index]


def test_detection_error_suggests_no_preset_that_fits_nothing(tmp_path: Path) -> None:
    log = tmp_path / "notes.txt"
    log.write_text("hello world\nnot a log\n")
    result = CliRunner().invoke(cli, ["summarize", str(log)])
    assert result.exit_code == 1
    assert "none parses any of 2 sample lines" in result.output
    assert "--format" not in result.output


def test_an_input_with_nothing_to_detect_from_reads_like_the_others() -> None:
    """Compressed stdin cannot be peeked into: it is read with the format the
    other inputs were detected with, as when one detection decided for all
    (before this, per-file detection assumed `combined` and rejected it)."""
    log = SAMPLES / "elb-access.log"
    result = CliRunner().invoke(
        cli,
        ["summarize", "-", str(log), "--to", "json"],
        input=gzip.compress(log.read_bytes()),
    )
    assert result.exit_code == 0, result.output
    ov = json.loads(result.stdout)["overview"]
    assert ov["rejected"] == 0
    assert ov["format"] == "elb_log"
    assert [f["format"] for f in ov["formats"]] == ["elb_log", "elb_log"]


def test_inputs_of_one_format_are_read_together_wherever_they_are(
    tmp_path: Path,
) -> None:
    """Vhost logs alternating with other formats are one scan per format (500
    alternating files took 33 s and 1.25 GB as one scan each); the formats
    and the first rejects are still listed in the order of the inputs."""
    combined = (SAMPLES / "combined-access.log").read_text().splitlines(keepends=True)
    main = (SAMPLES / "main-access.log").read_text().splitlines(keepends=True)
    d = tmp_path / "logs"
    d.mkdir()
    for i in range(6):
        source = main if i % 2 else combined
        (d / f"site{i}.log").write_text("".join(source[i * 5 : i * 5 + 5]) + "bad\n")
    scan = pplog.pipeline.open_log(d)
    assert [g.format.name for g in scan.groups if g.format] == ["combined", "main"]
    data = _json(str(d), "--top", "0")
    ov = data["overview"]
    assert [Path(f["source"]).name for f in ov["formats"]] == [  # type: ignore[index]
        f"site{i}.log" for i in range(6)
    ]
    assert [f["format"] for f in ov["formats"]] == ["combined", "main"] * 3  # type: ignore[index]
    samples = [(Path(r["source"]).name, r["line"]) for r in data["reject_samples"]]  # type: ignore[union-attr]
    assert samples == [(f"site{i}.log", 6) for i in range(5)]
    assert ov["requests"] == 30  # type: ignore[index]


def test_diagnose_is_public() -> None:
    findings = pplog.diagnose(
        pplog.scan_log(SAMPLES / "elb-access.log", include_rejects=True)
    )
    assert isinstance(findings[0], pplog.Finding)
    assert {f.code for f in findings} >= {
        "double-proxy-header",
        "tls-on-plain-listener",
    }
