"""How every benchmark here measures one run of a command: wall time, the CPU of its process tree and its peak
resident set, all from the child's own wait4() (not RUSAGE_CHILDREN deltas, whose ru_maxrss is the largest child the
benchmark ever reaped, so a later, smaller tool would inherit an earlier one's peak).

wait4 counts the child and every descendant it waited for: a profiler's workload, its worker processes. Output is
drained by threads while the child runs, so a chatty tool never blocks on a full pipe.
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass


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


def run(argv: list[str], *, env: Mapping[str, str] | None = None, stdin: bytes | None = None,
        limit_as_gib: float | None = None, check: bool = True, keep_output: bool = True) -> Run:
    """Run argv to completion. `check`: a failure ends the benchmark with the command's last words (a ratio over a
    failed run would be meaningless). `limit_as_gib`: an address-space cap, so a runaway tool fails instead of
    swapping the machine. `keep_output=False` sends output to /dev/null (large reports)."""

    def cap() -> None:
        if limit_as_gib:
            size = int(limit_as_gib * (1 << 30))
            resource.setrlimit(resource.RLIMIT_AS, (size, size))

    out_target = subprocess.PIPE if keep_output else subprocess.DEVNULL
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            stdout=out_target, stderr=subprocess.PIPE, env=dict(env) if env is not None else None,
                            preexec_fn=cap if limit_as_gib else None)
    chunks: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def drain(name: str, stream) -> None:
        chunks[name] = stream.read()

    readers = [threading.Thread(target=drain, args=(name, getattr(proc, name)), daemon=True)
               for name in ("stdout", "stderr") if getattr(proc, name) is not None]
    for reader in readers:
        reader.start()
    if stdin is not None:
        try:
            proc.stdin.write(stdin)
        except BrokenPipeError:
            pass  # the command ended without reading everything: its exit status says why
        proc.stdin.close()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    for reader in readers:
        reader.join()
    result = Run(tuple(argv), wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, proc.returncode,
                 chunks["stdout"].decode(errors="replace"), chunks["stderr"].decode(errors="replace"))
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

