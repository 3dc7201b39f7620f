"""Re-create the golden captures (run as root on a Linux machine with perf; not part of the test run).

    .venv/bin/python tests/unit/pipeline/golden/make_fixtures.py

Writes, next to this file: hwprof.perf.data (hwprof record -g), perf.perf.data (perf record -g),
group.perf.data (hwprof record -g -e '{cpu-clock,page-faults}', group reads in every sample),
perf-group.perf.data (perf record -g -e '{cpu-clock,page-faults}:S'), work.syms (the workload's text symbols,
which the test's symbolizer names its frames by) and probe.json (the raw result of
a `hwprof probe --stacks` session: hits with callchains, mappings, names), all of the workload in work.c. After
re-creating them, re-create the expected outputs with `HWPROF_REGEN_GOLDEN=1 pytest tests/unit/pipeline/test_golden.py`
and review the diff: the golden files are the behaviour every change must keep.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN_DIR = "/tmp/hwprof-golden"  # a fixed path: the mappings in the captures name it
BIN = f"{BIN_DIR}/work"
ROUNDS = "1500"  # about 0.1 s: a few hundred samples, a few dozen KB per capture


def _hwprof(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "hwprof", *args], check=True)


def main() -> None:
    os.makedirs(BIN_DIR, exist_ok=True)
    subprocess.run(["gcc", "-O1", "-g", "-fno-omit-frame-pointer", "-o", BIN, str(HERE / "work.c")], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        _hwprof("record", "-F", "4000", "-g", "-o", str(out / "hwprof.perf.data"), "--", BIN, ROUNDS)
        _hwprof("record", "-c", "100000", "-g", "-e", "{cpu-clock,page-faults}", "-o", str(out / "group.perf.data"),
                "--", BIN, ROUNDS)
        subprocess.run(["perf", "record", "-q", "-F", "4000", "-g", "-o", str(out / "perf.perf.data"), "--", BIN,
                        ROUNDS], check=True)
        subprocess.run(["perf", "record", "-q", "-c", "100000", "-g", "-e", "{cpu-clock,page-faults}:S", "-o",
                        str(out / "perf-group.perf.data"), "--", BIN, ROUNDS], check=True)
        for name in ("hwprof.perf.data", "group.perf.data", "perf.perf.data", "perf-group.perf.data"):
            shutil.copyfile(out / name, HERE / name)
    symbols = subprocess.run(["nm", "-n", "--defined-only", BIN], check=True, capture_output=True, text=True).stdout
    (HERE / "work.syms").write_text("".join(line + "\n" for line in symbols.splitlines()
                                            if line.split()[1] in "tT"))
    (HERE / "probe.json").write_text(json.dumps(_probe_session(), indent=None, separators=(",", ":")) + "\n")


def _probe_session() -> dict:
    """Stacks at two probes (a uprobe and a syscall tracepoint) of the workload, as the session collected them."""
    from hwprof.collectors.probe_spec import ProbeKind, parse_spec, resolve
    from hwprof.collectors.probes import Mode, ProbeSession, SessionOptions, Target

    specs = [parse_spec(ProbeKind.UPROBE, f"{BIN}:probed"), parse_spec(ProbeKind.TRACEPOINT,
                                                                        "syscalls:sys_enter_munmap")]
    probes = [resolve(spec, ()) for spec in specs]
    target = Target(command=(BIN, "300"))
    with ProbeSession(probes, target, SessionOptions(mode=Mode.STACKS)) as session:
        session.open()
        result = session.run()
    return {
        "target": list(result.target.command),
        "probes": [{"kind": c.probe.kind.value, "spec": c.probe.spec.text, "label": c.probe.label}
                   for c in result.probes],
        "duration_ns": result.duration_ns,
        "lost": result.lost,
        "comms": {str(k): v for k, v in result.comms.items()},
        "hits": [[h.probe, h.pid, h.tid, h.time, h.cpu, list(h.callchain)] for h in result.hits],
        "maps": [{k: v for k, v in asdict(m).items() if k != "sample_id" and k != "build_id"} for m in result.maps],
        "proc_maps": {str(pid): maps for pid, maps in result.proc_maps.items()},
    }


if __name__ == "__main__":
    main()
