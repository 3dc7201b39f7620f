"""How every benchmark here measures one run of a command: wall time, the CPU of its process tree and its peak
resident set.

CPU and peak RSS come from wait4() in a small C launcher (workloads/rusage_exec.c, built once into
~/.cache/hwprof-benchmarks): the kernel starts a child's ru_maxrss at the RSS of the process that forked it, so a
command started straight from this (often large) Python process would "peak" at this process's size at least, and
RUSAGE_CHILDREN deltas are worse still (their ru_maxrss is the largest child ever reaped). wait4 counts the command
and every descendant it waited for: a profiler's workload, its worker processes. Output is drained by threads while
the command runs, so a chatty tool never blocks on a full pipe.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

LAUNCHER_SOURCE = Path(__file__).resolve().parent / "workloads" / "rusage_exec.c"


@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]
    wall: float         # seconds
    cpu: float          # user + system seconds of the process tree
    peak_rss_kib: int   # the largest single process of the tree
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def peak_rss_mib(self) -> float:
        return self.peak_rss_kib / 1024


def launcher() -> str:
    """The compiled rusage_exec, keyed by its source's hash (rebuilt when the source changes)."""
    source = LAUNCHER_SOURCE.read_bytes()
    binary = Path.home() / ".cache" / "hwprof-benchmarks" / f"rusage_exec-{hashlib.sha256(source).hexdigest()[:12]}"
    if not binary.exists():
        compiler = shutil.which("gcc") or shutil.which("cc")
        if compiler is None:
            raise SystemExit(f"a C compiler (gcc) is needed to build {LAUNCHER_SOURCE}")
        binary.parent.mkdir(parents=True, exist_ok=True)
        partial = binary.with_suffix(f".{os.getpid()}")
        subprocess.run([compiler, "-O2", "-o", str(partial), str(LAUNCHER_SOURCE)], check=True)
        os.replace(partial, binary)
    return str(binary)


def run(argv: list[str], *, env: Mapping[str, str] | None = None, stdin: bytes | None = None,
        limit_as_gib: float | None = None, check: bool = True, keep_output: bool = True) -> Run:
    """Run argv to completion. `check`: a failure ends the benchmark with the command's last words (a ratio over a
    failed run would be meaningless). `limit_as_gib`: an address-space cap, so a runaway tool fails instead of
    swapping the machine. `keep_output=False` sends output to /dev/null (large reports)."""

    def cap() -> None:
        if limit_as_gib:
            size = int(limit_as_gib * (1 << 30))
            resource.setrlimit(resource.RLIMIT_AS, (size, size))

    report_read, report_write = os.pipe()
    out_target = subprocess.PIPE if keep_output else subprocess.DEVNULL
    start = time.perf_counter()
    try:
        proc = subprocess.Popen([launcher(), str(report_write), *argv],
                                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                stdout=out_target, stderr=subprocess.PIPE,
                                env=dict(env) if env is not None else None, pass_fds=(report_write,),
                                preexec_fn=cap if limit_as_gib else None)
    finally:
        os.close(report_write)
    chunks: dict[str, bytes] = {"stdout": b"", "stderr": b"", "report": b""}

    def drain(name: str, stream) -> None:
        chunks[name] = stream.read()

    streams = [(name, getattr(proc, name)) for name in ("stdout", "stderr") if getattr(proc, name) is not None]
    streams.append(("report", os.fdopen(report_read, "rb")))
    readers = [threading.Thread(target=drain, args=stream, daemon=True) for stream in streams]
    for reader in readers:
        reader.start()
    if stdin is not None:
        try:
            proc.stdin.write(stdin)
        except BrokenPipeError:
            pass  # the command ended without reading everything: its exit status says why
        proc.stdin.close()
    launcher_status = proc.wait()
    wall = time.perf_counter() - start
    for reader in readers:
        reader.join()
    streams[-1][1].close()
    stderr = chunks["stderr"].decode(errors="replace")
    try:
        user_us, sys_us, rss_kib, status = (int(x) for x in chunks["report"].split())
    except ValueError:
        raise SystemExit(f"rusage_exec could not run {' '.join(argv[:4])} ({launcher_status}): "
                         f"{stderr[-300:]}") from None
    result = Run(tuple(argv), wall, (user_us + sys_us) / 1e6, rss_kib, status,
                 chunks["stdout"].decode(errors="replace"), stderr)
    if check and not result.ok:
        raise SystemExit(f"{' '.join(argv[:4])} failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    return result


def timing_line(stdout: str) -> dict[str, float]:
    """The `elapsed=... cpu=...` line the workloads in benchmarks/workloads print about themselves, so a tool's
    start-up and its own CPU are not in the workload's time."""
    line = next((x for x in stdout.splitlines() if x.startswith("elapsed=")), None)
    if line is None:
        raise SystemExit(f"no timing line from the workload: {stdout[-300:]!r}")
    return {key: float(value) for key, value in (part.split("=") for part in line.split())}


@dataclass(frozen=True)
class WorkloadRun:
    """One run of a workload under a tool (or alone): the tool's tree and the workload's own account of itself."""

    run: Run
    workload: dict[str, float]  # the workload's timing line: elapsed, cpu, and what else it prints

    @property
    def own_cpu(self) -> float:
        """The tool's own CPU: its tree's minus the workload's (sampling interrupts are charged to the workload)."""
        return max(self.run.cpu - self.workload["cpu"], 0.0)


def interleaved(work: list[str], tools: Mapping[str, list[str]], reps: int) -> dict[str, list[WorkloadRun]]:
    """Run `work` under each tool in turn (`[*prefix, *work]`; an empty prefix is the workload alone), `reps` times
    round-robin: on a shared machine a busy neighbour then slows every tool alike instead of one of them."""
    runs: dict[str, list[WorkloadRun]] = {name: [] for name in tools}
    for _ in range(reps):
        for name, prefix in tools.items():
            result = run([*prefix, *work])
            runs[name].append(WorkloadRun(result, timing_line(result.stdout)))
    return runs

