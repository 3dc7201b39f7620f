"""Helpers of the probe tests: run `hwprof probe`, read its JSON, look for leftovers in tracefs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

PROGRAMS = Path(__file__).parent / "programs"


def tracefs_events(name: str) -> str:
    for root in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
        path = Path(root, name)
        if path.exists():
            return path.read_text()
    return ""


def hwprof_entries(pid: int | None = None) -> list[str]:
    """Definitions a hwprof (any, or the one with this pid: other test runs may probe at the same time) left in
    uprobe_events/kprobe_events (should always be none)."""
    text = tracefs_events("uprobe_events") + tracefs_events("kprobe_events")
    mark = ":hwprof_" if pid is None else f":hwprof_{pid}/"
    return [line for line in text.splitlines() if mark in line]


def probe_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "hwprof", "probe", *args]


def run_probe(*args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(probe_argv(*args), capture_output=True, text=True, timeout=timeout, **kwargs)


def probe_json(tmp_path: Path, *args: str, timeout: float = 120) -> dict:
    out = tmp_path / "probe.json"
    proc = run_probe("--json", "-o", str(out), *args, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return json.loads(out.read_text())


def build_programs(out: Path) -> dict[str, str]:
    """Compile every programs/*.c[pp] into `out` (frame pointers on: stacks are walked that way)."""
    built = {}
    for source in sorted(PROGRAMS.iterdir()):
        compiler = "g++" if source.suffix == ".cpp" else "gcc"
        binary = out / source.stem
        subprocess.run([compiler, "-O1", "-g", "-fno-omit-frame-pointer", "-pthread", "-o", str(binary),
                        str(source)], check=True)
        built[source.stem] = str(binary)
    stripped = out / "calls-stripped"
    shutil.copy(built["calls"], stripped)
    subprocess.run(["strip", "-s", str(stripped)], check=True)
    built["calls-stripped"] = str(stripped)
    return built
