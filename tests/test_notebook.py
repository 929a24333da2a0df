"""notebooks/explore.ipynb: committed without outputs, runs top to bottom.

The notebook is executed on a fresh kernel with nbclient, as a reader would run
it: once from `notebooks/` as Jupyter starts it, once from the repository root
with a small GeoIP database, so both branches of its GeoIP cell run.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import nbformat
import netaddr
import pytest
from mmdb_writer import MMDBWriter
from nbclient import NotebookClient

from helpers import REPO, SAMPLES
from pplog.enrich.geo import HOW_TO_GET, default_database_paths

NOTEBOOK = REPO / "notebooks" / "explore.ipynb"
CELL_TIMEOUT = 300  # seconds; the whole notebook takes a few on a laptop
KERNEL = "pplog-test"


def _kernelspec(tmp: Path) -> Path:
    """A Jupyter path whose only kernel runs on this interpreter.

    The notebook asks for `python3`, which a machine may map to another Python
    (a user-installed kernelspec); the tests must run the pplog under test.
    """
    spec = tmp / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": KERNEL, "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    return tmp / "jupyter"


def _run(tmp: Path, cwd: Path, settings: str = "") -> nbformat.NotebookNode:
    """Execute the notebook in `cwd`, `settings` appended to its settings cell."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    if settings:
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        cell.source += "\n" + settings
    client = NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=CELL_TIMEOUT,
        startup_timeout=120,
        resources={"metadata": {"path": str(cwd)}},
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("JUPYTER_PATH", str(_kernelspec(tmp)))
        client.execute()  # raises CellExecutionError on the first failing cell
    return nb


def _text(nb: nbformat.NotebookNode, cell_id: str) -> str:
    """Everything a cell printed or displayed as text."""
    cell = next(c for c in nb.cells if c.get("id") == cell_id)
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("display_data", "execute_result"):
            parts.append(out.data.get("text/plain", ""))
    return "\n".join(parts)


def _images(nb: nbformat.NotebookNode) -> list[str]:
    """Ids of the cells that drew a PNG, once per figure."""
    return [
        c.id
        for c in nb.cells
        if c.cell_type == "code"
        for out in c.outputs
        if "image/png" in out.get("data", {})
    ]


def _geoip_database(path: Path) -> Path:
    """A country database for the documentation ranges the samples use."""
    writer = MMDBWriter(
        ip_version=6,
        database_type="GeoLite2-Country",
        languages=["en"],
        description="pplog notebook test",
        ipv4_compatible=True,
    )
    for cidr, country in {
        "192.0.2.0/24": "NL",
        "198.51.100.0/24": "US",
        "203.0.113.0/24": "AU",
        "2001:db8::/32": "DE",
    }.items():
        writer.insert_network(netaddr.IPSet([cidr]), {"country": {"iso_code": country}})
    writer.to_db_file(str(path))
    return path


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> nbformat.NotebookNode:
    """The notebook run as Jupyter would start it: in `notebooks/`."""
    return _run(tmp_path_factory.mktemp("kernel"), NOTEBOOK.parent)


@pytest.fixture(scope="module")
def executed_with_geoip(
    tmp_path_factory: pytest.TempPathFactory,
) -> nbformat.NotebookNode:
    """The notebook run from the repository root, with a GeoIP database."""
    tmp = tmp_path_factory.mktemp("geoip")
    db = _geoip_database(tmp / "countries.mmdb")
    settings = f"GEOIP = [{str(db)!r}]\nGEOIP_SKIP_SPECIAL = False"
    return _run(tmp, REPO, settings)


def test_committed_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == [], f"cell `{cell.id}` has outputs: strip them"
        assert cell.execution_count is None, f"cell `{cell.id}` has a count"
    assert set(nb.metadata) <= {"kernelspec", "language_info"}


def test_runs_top_to_bottom(executed: nbformat.NotebookNode) -> None:
    errors = [
        c.id
        for c in executed.cells
        if c.cell_type == "code"
        for out in c.outputs
        if out.output_type == "error"
    ]
    assert errors == []
    assert _images(executed) == [
        "naive",
        "networks",
        "timeline",
        "latency-chart",
        "latency-ok",
        "latency-time",
        "agents",
        "dataset-query",
    ]


def test_answers(executed: nbformat.NotebookNode) -> None:
    # distinct "clients": remote_addr sees the ALB nodes and a few scanners,
    # leftmost X-Forwarded-For whatever clients wrote, realip the clients
    assert re.search(r"16\s+┆\s+230\s+┆\s+245", _text(executed, "naive"))
    assert "client_ip" in _text(executed, "sources")
    assert "x_forwarded_for" in _text(executed, "sources")
    assert "IPv6" in _text(executed, "networks")
    assert "124 of 125 5xx responses came between 00:01:27 and 00:01:36 UTC" in _text(
        executed, "burst"
    )
    latency = _text(executed, "latency")
    assert "/search" in latency
    assert "60.003" in latency  # the 504s' p99
    assert "[0.001, 0.002]" in _text(executed, "latency-time")  # a retried 502
    assert "108 requests from bots left out; 1892 remain" in _text(executed, "no-bots")
    # 2,000 requests, 37 of them health checks; 71 more bots are a device
    visitors = _text(executed, "visitors")
    for table in ("browsers", "operating_systems", "devices"):
        assert f"{table}: 1963 requests" in visitors
    assert re.search(r"bot\s+┆\s+71\s+┆", visitors)
    assert "proxy-v2-header-on-plain-listener" in _text(executed, "doctor")
    assert "xff-spoofing" in _text(executed, "doctor-wrong")
    ingest = _text(executed, "ingest")
    assert "ingest: commit 1: 1,050 rows, 0 rejects" in ingest
    assert "ingest: nothing new" in ingest
    # the three files' lines are parsed and staged together: one file, one rollup
    assert ingest.rstrip().endswith("gaps: 0 / rollups: 1 / OK")
    assert "1,050 requests from 142 clients" in _text(executed, "dataset-summary")
    if importlib.util.find_spec("distributed") is not None:
        assert "the same tables on the cluster: True" in _text(executed, "cluster")


def test_without_geoip_says_how_to_get_one(executed: nbformat.NotebookNode) -> None:
    if default_database_paths():
        pytest.skip("a GeoIP database is installed on this machine")
    assert HOW_TO_GET in _text(executed, "geo")


def test_with_geoip_from_repo_root(executed_with_geoip: nbformat.NotebookNode) -> None:
    geo = _text(executed_with_geoip, "geo")
    assert "DE" in geo
    assert "AU" in geo
    assert "geo" in _images(executed_with_geoip)


def _genlog() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "genlog", REPO / "benchmarks" / "genlog.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_timed_sample_matches_its_generator_and_the_notebook() -> None:
    genlog = _genlog()
    # the command in sample_logs/README.md rebuilds the file byte for byte
    assert (
        genlog.generate("timed", 3000, seed=17)
        == (SAMPLES / "timed-access.log").read_bytes()
    )
    # the notebook reads it with the format genlog writes
    nb = nbformat.read(NOTEBOOK, as_version=4)
    settings = next(c for c in nb.cells if c.get("id") == "settings").source
    (value,) = [
        node.value
        for node in ast.parse(settings).body
        if isinstance(node, ast.Assign)
        and [getattr(t, "id", None) for t in node.targets] == ["TIMED_FORMAT"]
    ]
    assert ast.literal_eval(value) == genlog.LOG_FORMATS["timed"]
