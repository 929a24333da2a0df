"""`ingest` over many logs: a run's bookkeeping grows with the files, not their square.

A host with hundreds of virtual hosts keeps thousands of files in
/var/log/nginx/. A run matched every file against every checkpoint, and
listed every file again after each live log it read (the late copytruncate
proof): 34 s for a run with no new data over 400 logs and 3,600 files. The
test counts the work (`stat` calls, head matches) at two sizes instead of
timing it; the listing of one rotation set is checked against the listing
of the patterns it replaces.
"""

from __future__ import annotations

import gzip
import os
from collections import Counter
from pathlib import Path

import pytest

from pplog.batch import identity, ingest, reader
from pplog.sources import pattern_paths, rotation_key


def _line(site: int, n: int) -> str:
    return (
        f"198.51.100.{site % 250} - - [05/Dec/2026:10:{n // 60 % 60:02d}:{n % 60:02d}"
        f' +0000] "GET /site{site}/{n} HTTP/1.1" 200 {n} "-" "curl/8.{site}"\n'
    )


def _write_sets(logs: Path, sites: int) -> list[Path]:
    """`sites` rotation sets (access.log, .1, .2.gz), distinct lines each."""
    logs.mkdir()
    live = []
    for s in range(sites):
        base = logs / f"site{s}.access.log"
        gz = Path(f"{base}.2.gz")
        gz.write_bytes(gzip.compress("".join(_line(s, n) for n in range(3)).encode()))
        Path(f"{base}.1").write_text("".join(_line(s, n) for n in range(3, 6 + s)))
        base.write_text("".join(_line(s, n) for n in range(100, 103)))
        live.append(base)
    return live


def _counted_run(monkeypatch: pytest.MonkeyPatch, logs: Path, ds: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    real_stat, real_matches = os.stat, identity.Candidate.matches

    def stat(*args: object, **kwargs: object) -> os.stat_result:
        counts["stat"] += 1
        return real_stat(*args, **kwargs)  # type: ignore[arg-type]

    def matches(self: identity.Candidate, cp: dict[str, object]) -> bool:
        counts["matches"] += 1
        return real_matches(self, cp)

    with monkeypatch.context() as m:
        m.setattr(os, "stat", stat)
        m.setattr(identity.Candidate, "matches", matches)
        result = ingest([f"{logs}/*"], ds, format="combined")
    assert result.problems == []
    counts["rows"] = result.rows
    return counts


@pytest.mark.parametrize("new_lines", [False, True])
def test_a_run_over_twice_the_logs_does_about_twice_the_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, new_lines: bool
) -> None:
    work = {}
    for sites in (12, 24):
        logs, ds = tmp_path / f"logs{sites}", tmp_path / f"ds{sites}"
        live = _write_sets(logs, sites)
        first = _counted_run(monkeypatch, logs, ds)
        assert first["rows"] == sum(3 + (3 + s) + 3 for s in range(sites))
        if new_lines:
            for s, path in enumerate(live):
                with path.open("a") as f:
                    f.write(_line(s, 200))
        again = _counted_run(monkeypatch, logs, ds)
        assert again["rows"] == (sites if new_lines else 0)
        work[sites] = (first, again)
    for kind in ("stat", "matches"):
        for run in (0, 1):
            small, large = work[12][run][kind], work[24][run][kind]
            # the square of the files would make it 4x; the old code did 3.3-3.9x
            assert large <= 2.5 * max(small, 1), (kind, run, small, large)


def _tree(root: Path) -> list[Path]:
    """Files and directories named to trip a listing: hidden names, brackets,
    nested sets, a symlink to a file and one to a directory."""
    made = []
    for rel in [
        "a/access.log",
        "a/access.log.1",
        "a/access.log.2.gz",
        "a/access.log-20261205",
        "a/access-20261204.log.gz",
        "a/access-api.log",
        "a/.access.log.swp",
        "a/access.log.bak",
        "a/error.log",
        "a/x[1].log",
        "b/access.log",
        "b/access.log.1",
        "b/.hidden/access.log.1",
        "c/d/access.log",
        ".h/access.log",
    ]:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel + "\n")
        made.append(path)
    (root / "a" / "access.log.3").symlink_to(root / "b" / "access.log.1")
    (root / "a" / "sub").symlink_to(root / "c")
    return made


PATTERNS = [
    "{r}/a",
    "{r}/a/",
    "{r}/a/*",
    "{r}/a/access.log*",
    "{r}/a/access*",
    "{r}/a/.access*",
    "{r}/a/access.log",
    "{r}/a/x[1].log",
    "{r}/a/x[[]1].log",
    "{r}/a/access.log.[0-9]",
    "{r}/a/access.log.[!0-9]*",
    "{r}/*/access.log*",
    "{r}/*/*",
    "{r}/?/access.log",
    "{r}/*/d/access.log",
    "{r}/.*/access.log",
    "{r}/**/access.log",
    "{r}/a/*/access.log",
    "{r}/a//access.log*",
    "{r}/a/./access.log*",
    "{r}/b/../a/access.log*",
    "{r}/*/",
    "{r}/nothing*",
]


@pytest.mark.parametrize("relative", [False, True])
def test_named_by_is_the_listing_of_the_patterns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, relative: bool
) -> None:
    made = _tree(tmp_path / "t")
    if relative:
        monkeypatch.chdir(tmp_path)
        root = "t"
        made = [p.relative_to(tmp_path) for p in made]
    else:
        root = str(tmp_path / "t")
    names = [*made, Path(root) / "a" / "access.log.3", Path(root) / "a" / "sub"]
    names += [Path(root) / "a" / "sub" / "d" / "access.log"]
    for template in [*PATTERNS, *(p.replace("{r}", "./{r}") for p in PATTERNS)]:
        pattern = template.format(r=root)
        listed = {Path(name) for name, _ in pattern_paths(pattern)}
        for path in names:
            # every name as `pattern_paths` would write it in that directory
            for shown in {path, *(p for p in listed if p.name == path.name)}:
                want = shown in listed
                got = identity._named_by(shown, [pattern])
                assert got == want, (pattern, str(shown), got, want)


def test_the_files_of_a_set_are_those_the_patterns_list(tmp_path: Path) -> None:
    made = _tree(tmp_path / "t")
    root = str(tmp_path / "t")
    lives = [p for p in made if p.name == "access.log"]
    for template in PATTERNS:
        patterns = [template.format(r=root)]
        for live in lives:
            key = rotation_key(live)[0]
            # a file also named outside the set (a symlink in another set)
            # is in this one too: `_files` keeps only its first name
            want = {
                (st.st_dev, st.st_ino)
                for name, _ in pattern_paths(patterns[0])
                if rotation_key(name)[0] == key
                and Path(name).is_file()
                and (st := Path(name).stat())
            }
            got = {
                (st.st_dev, st.st_ino) for _, st in identity._set_files(live, patterns)
            }
            assert got == want, (patterns, str(live))
    both = [f"{root}/a/access.log", f"{root}/a/access.log.[0-9]"]
    got_names = sorted(p.name for p, _ in identity._set_files(lives[0], both))
    assert got_names == ["access.log", "access.log.1", "access.log.3"]


class _Counted(list):  # type: ignore[type-arg]
    """A list of checkpoints that counts the entries iterated over."""

    looked = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        for cp in super().__iter__():
            _Counted.looked += 1
            yield cp


def test_a_file_no_stream_continues_is_checked_against_its_heads_proofs(
    tmp_path: Path,
) -> None:
    """A first run over thousands of new files looked at every checkpoint for
    each file no stream continues (copy proofs: 6.5M over 3,600 files); the
    proofs are found by the file's head instead, and the copy still is."""
    live = tmp_path / "access.log"
    live.write_text("".join(_line(1, n) for n in range(20)))
    copy = tmp_path / "access.log.1"  # logrotate's copy: a prefix of the log
    copy.write_text("".join(_line(1, n) for n in range(12)))
    other = tmp_path / "other.log"
    other.write_text(_line(2, 0))
    # each file found alone (together, the copy is left out as the log's)
    cands = {p.name: identity.discover([str(p)])[0][0] for p in (live, copy, other)}
    proof = identity.copy_proof(cands["access.log.1"], cands["access.log"])
    assert proof is not None
    streams = [
        {"stream_id": f"s{n}", "offset": 10, "head_len": 10, "head_sha256": str(n)}
        for n in range(300)
    ]
    owner = {**streams[150], "stream_id": "live", "copies": [proof]}
    checkpoints = _Counted([*streams[:150], owner, *streams[150:]])
    heads = identity.HeadIndex(checkpoints)
    proofs = reader._Proofs(checkpoints)
    _Counted.looked = 0
    got = reader._match(cands["access.log.1"], checkpoints, heads, set(), {}, proofs)
    assert got == (owner, True)
    assert reader._match(cands["other.log"], checkpoints, heads, set(), {}, proofs) == (
        None,
        False,
    )
    assert _Counted.looked == 0  # before: 151 and 301
