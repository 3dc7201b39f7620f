"""A real ClickHouse server for the fleet tests: Debian's clickhouse-server in a temporary directory, one per run."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path

import pytest

from hwprof.fleet.localserver import LocalClickHouse, server_binary

_databases = itertools.count()
DEMO_SOURCE = Path(__file__).resolve().parents[3] / "demo" / "workload.c"


@pytest.fixture(scope="session")
def clickhouse(tmp_path_factory) -> LocalClickHouse:
    if server_binary() is None:
        pytest.skip("clickhouse-server is not installed (make apt-test installs it)")
    server = LocalClickHouse(tmp_path_factory.mktemp("clickhouse")).start()
    yield server
    server.stop()


@pytest.fixture
def store_url(clickhouse: LocalClickHouse) -> str:
    """A fresh database on the shared server for each test."""
    return clickhouse.url(f"t{next(_databases)}")


@pytest.fixture(scope="session")
def demo_workload(tmp_path_factory) -> Path:
    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        pytest.skip("no C compiler")
    out = tmp_path_factory.mktemp("demo") / "fleet-demo"
    subprocess.run([cc, "-O2", "-g", "-fno-omit-frame-pointer", "-fno-optimize-sibling-calls", "-fno-shrink-wrap",
                    "-o", str(out), str(DEMO_SOURCE)], check=True)
    return out
