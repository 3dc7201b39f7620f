"""C workloads built without frame pointers, once per session."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

WORKLOADS = Path(__file__).parent / "workloads"


@pytest.fixture(scope="session")
def nofp_workloads(tmp_path_factory) -> dict[str, Path]:
    if not shutil.which("gcc"):
        pytest.skip("gcc is not installed (make apt-test installs it)")
    out = tmp_path_factory.mktemp("unwind-workloads")
    os.chmod(out, 0o755)
    built = {}
    for source in sorted(WORKLOADS.glob("*.c")):
        binary = out / source.stem
        subprocess.run(["gcc", "-O2", "-g", "-fomit-frame-pointer", "-o", str(binary), str(source)], check=True)
        built[source.stem] = binary
    return built
