"""record --off-cpu / report --off-cpu, --wall: blocked time against the programs' own clocks, bpftrace and perf.

Ground truth comes from the workloads themselves (CLOCK_MONOTONIC around each blocking call, and each thread's
lifetime), and a bpftrace script over sched_switch watching the same run is the second oracle. Tolerances are the
issue's 5%: both sides measure the same intervals (runqueue waits after a wakeup included), so machine load moves
them together.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from record_helpers import need_perf, run_hwprof

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="off-CPU stacks need root (sched tracepoints)")

TOLERANCE = 0.05


def facts(stdout: str) -> dict[str, int]:
    """The workloads' "key value" lines."""
    out = {}
    for line in stdout.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def record(tmp_path: Path, binary: Path, *args: str, extra: tuple[str, ...] = ()) -> tuple[Path, dict[str, int]]:
    data = tmp_path / "off.data"
    proc = run_hwprof("record", "--off-cpu", *extra, "-o", str(data), "--", str(binary), *args, timeout=180)
    # The summary says how many switches the target made, and how fast.
    assert re.search(r"off-CPU: [\d,]+ context switches of the target \([\d,]+/s\)", proc.stderr), proc.stderr
    return data, facts(proc.stdout)


def folded(data: Path, *args: str) -> list[tuple[list[str], int]]:
    out = run_hwprof("report", "-i", str(data), "--folded", *args, timeout=180).stdout
    rows = []
    for line in out.splitlines():
        stack, _, weight = line.rpartition(" ")
        rows.append((stack.split(";"), int(weight)))
    return rows


def blocked_us(rows: list[tuple[list[str], int]], frame: str) -> int:
    return sum(w for frames, w in rows if any(frame in f for f in frames))


def close(measured_ns: float, expected_ns: float, tolerance: float = TOLERANCE) -> bool:
    return abs(measured_ns - expected_ns) <= tolerance * expected_ns


def test_off_cpu_time_per_caller_matches_the_programs_own_measurement(workloads, tmp_path):
    data, truth = record(tmp_path, workloads["offcpu_split"], "10")
    rows = folded(data, "--off-cpu")
    long_us, short_us = blocked_us(rows, "caller_long"), blocked_us(rows, "caller_short")
    assert close(long_us * 1000, truth["long_ns"]), (long_us, truth)
    assert close(short_us * 1000, truth["short_ns"]), (short_us, truth)
    # The 3:1 split as the program saw it (on a loaded machine every sleep overshoots, the short ones relatively more).
    assert close(long_us / short_us, truth["long_ns"] / truth["short_ns"])
    # Blocked in nanosleep: sleeping (S) at switch-out, under the kernel's nanosleep path.
    sleeping = [frames for frames, _ in rows if "caller_long" in ";".join(frames)]
    assert all(frames[-1] in ("[off-cpu: sleeping (S)]", "[off-cpu: runnable (R, preempted)]") for frames in sleeping)
    assert any("do_nanosleep" in frames for frames in sleeping)


def test_wall_time_per_thread_matches_each_threads_lifetime(workloads, tmp_path):
    data, truth = record(tmp_path, workloads["offcpu_split"], "10")
    report = json.loads(run_hwprof("report", "-i", str(data), "--wall", "--json", timeout=180).stdout)
    threads = {t["tid"]: t for t in report["off_cpu"]["threads"]}
    main, helper = threads[truth["tid_main"]], threads[truth["tid_helper"]]
    # main: its lifetime is measured from main() to the end of its rounds; exec, the dynamic loader, the join
    # and exit add a few ms at most.
    assert close(main["wall_ns"], truth["main_life_ns"]), (main, truth)
    assert close(helper["wall_ns"], truth["helper_life_ns"]), (helper, truth)
    # Wall = on-CPU + off-CPU. The helper's spins last 8 x 20 ms of wall time each way: on a shared machine a
    # spin is partly preempted, so those 160 ms show as on-CPU plus runnable (preempted) time.
    assert abs(sum(helper["off_cpu_ns"].values()) + helper["on_cpu_ns"] - helper["wall_ns"]) < 1e3
    spinning = helper["on_cpu_ns"] + helper["off_cpu_ns"].get("runnable (R, preempted)", 0.0)
    assert 0.9 * 160e6 < spinning < helper["wall_ns"] - 150e6, helper  # and the 8 x 20 ms sleeps are not in it


def test_the_waiting_threads_futex_stack_carries_the_contended_time(workloads, tmp_path):
    data, truth = record(tmp_path, workloads["offcpu_lock"], "15")
    rows = folded(data, "--off-cpu", "--tid", str(truth["tid_waiter"]))
    futex_us = blocked_us(rows, "futex_wait")
    assert close(futex_us * 1000, truth["wait_ns"]), (futex_us, truth)


def test_min_block_leaves_out_blocks_shorter_than_it(workloads, tmp_path):
    data, truth = record(tmp_path, workloads["offcpu_split"], "6")
    every = folded(data, "--off-cpu")
    kept = folded(data, "--off-cpu", "--min-block", "20000")  # 20 ms: the 10 ms sleeps go, the 30 ms ones stay
    from hwprof.offcpu.stage import stages_for
    from hwprof.pipeline import decode_file

    profile = decode_file(data, None, stages=stages_for(data))
    blocks = profile.sample_period[profile.sample_state > 0]
    assert abs(sum(w for _, w in kept) - blocks[blocks >= 20e6].sum() / 1000) <= len(kept)  # rounding, per line
    # A loaded machine may stretch a 10 ms sleep past 20 ms, but not all six.
    assert blocked_us(kept, "caller_short") < blocked_us(every, "caller_short")
    assert close(blocked_us(kept, "caller_long") * 1000, truth["long_ns"])


def test_wakeups_put_the_wakers_stack_above_the_blocked_one(workloads, tmp_path):
    data, truth = record(tmp_path, workloads["offcpu_lock"], "8", extra=("--wakeups",))
    rows = folded(data, "--off-cpu", "--tid", str(truth["tid_waiter"]))
    woken = [(frames, w) for frames, w in rows if "futex_wait" in ";".join(frames) and "--" in frames]
    assert woken, rows
    # The holder wakes the waiter when it unlocks: the waker part (after "--", leaf first) is the kernel's futex
    # wake path then the holder's user stack from libc's lock-wake (frame pointers skip the frameless libc
    # callers), and the chain ends in the waker's name.
    waker_part = [";".join(frames[frames.index("--") + 1:]) for frames, _ in woken]
    assert any(part.startswith("try_to_wake_up") and "futex_wake" in part and "lock_wake" in part
               for part in waker_part), waker_part
    assert all(part.endswith("]") and "[waker: offcpu_lock" in part for part in waker_part)
    assert close(sum(w for _, w in woken) * 1000, truth["wait_ns"], 0.10)


# Every blocked interval of the workload's threads from sched_switch, one line each: "B tid start duration infutex"
# (start in CLOCK_MONOTONIC ns, the clock of hwprof's off-CPU captures). A new thread waits to run from its first
# wakeup, as hwprof counts it from its FORK.
BPFTRACE = """
BEGIN { printf("ready\\n"); }
tracepoint:syscalls:sys_enter_futex /comm == "offcpu_lock"/ { @infutex[tid] = 1; }
tracepoint:syscalls:sys_exit_futex /comm == "offcpu_lock"/ { delete(@infutex[tid]); }
tracepoint:sched:sched_wakeup_new /args->comm == "offcpu_lock"/ { @start[args->pid] = nsecs; }
tracepoint:sched:sched_switch {
  if (comm == "offcpu_lock") { @start[tid] = nsecs; @fut[tid] = @infutex[tid]; }
  $n = args->next_pid;
  if (@start[$n]) {
    printf("B %d %llu %llu %d\\n", $n, @start[$n], nsecs - @start[$n], @fut[$n]);
    delete(@start[$n]); delete(@fut[$n]);
  }
}
END { clear(@start); clear(@fut); clear(@infutex); }
"""


def hwprof_blocks(data: Path, tid: int) -> list[tuple[int, float, bool]]:
    """(start ns, duration ns, futex in the blocked stack) of each off-CPU block of one thread."""
    from hwprof.symbolize import Symbolizer

    from hwprof.offcpu.stage import stages_for
    from hwprof.pipeline import decode_file

    profile = decode_file(data, Symbolizer(), stages=stages_for(data))
    out = []
    for i in np.nonzero((profile.sample_tid == tid) & (profile.sample_state > 0))[0].tolist():
        names = [profile.frame_label(f) for f in profile.stack_frames(int(profile.sample_stack[i]))]
        out.append((int(profile.sample_time[i]), float(profile.sample_period[i]),
                    any("futex_wait" in n for n in names)))
    return out


def test_bpftrace_over_sched_switch_sees_the_same_blocks(workloads, tmp_path):
    """Block by block: a BPF program can be skipped when another one runs on the same CPU (other tracers on a shared
    machine), so the oracle may miss a few blocks; every block it saw must be one of hwprof's, of the same length."""
    if not shutil.which("bpftrace"):
        pytest.skip("bpftrace is not installed (make apt-test installs it)")
    script = tmp_path / "offcpu.bt"
    script.write_text(BPFTRACE)
    out = (tmp_path / "bt.out").open("w+")
    tracer = subprocess.Popen(["bpftrace", "-B", "line", str(script)], stdout=out, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while "ready" not in Path(out.name).read_text():
            if tracer.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"bpftrace did not start: {Path(out.name).read_text()[-2000:]}")
            time.sleep(0.2)
        data, truth = record(tmp_path, workloads["offcpu_lock"], "15")
    finally:
        if tracer.poll() is None:
            tracer.send_signal(signal.SIGINT)
        tracer.wait(timeout=60)
    oracle: dict[int, list[tuple[int, int, bool]]] = {}
    for line in Path(out.name).read_text().splitlines():
        if line.startswith("B "):
            _, tid, start, duration, futex = line.split()
            oracle.setdefault(int(tid), []).append((int(start), int(duration), futex != "0"))
    for tid in (truth["tid_waiter"], truth["tid_holder"]):
        ours = hwprof_blocks(data, tid)
        starts = np.array([b[0] for b in ours], dtype=np.int64)
        seen = oracle[tid]
        matched = []
        for start, duration, futex in seen:
            j = int(np.argmin(np.abs(starts - start)))
            if abs(int(starts[j]) - start) < 200_000:  # the same switch-out, seen from two probes
                matched.append((duration, ours[j][1], futex, ours[j][2]))
        assert len(matched) >= len(seen) - 1, (tid, len(matched), len(seen))
        assert len(matched) >= 0.95 * len(ours), (tid, len(matched), len(ours))
        # Length by length, not summed: with both CPUs saturated a few of bpftrace's blocks end early by up to 2 ms
        # (its program skipped), which moves a sum by 10-15%; `perf record -a -e sched:sched_switch` run beside
        # them agreed with hwprof on those blocks (2 of 6,082 blocks over 50 us apart). A switch-in's own cost
        # (below) reached 54 us once on a quiet machine.
        same = [m for m in matched if abs(m[1] - m[0]) <= max(100_000, 0.02 * m[0])]
        assert len(same) >= 0.9 * len(matched), (tid, len(same), len(matched))
        # The blocks bpftrace saw inside futex(2) are those whose stack hwprof shows in futex_wait.
        assert all(m[2] == m[3] for m in matched if m[0] > 1_000_000), tid
        if tid == truth["tid_waiter"]:
            futex = [m for m in same if m[2]]
            assert futex and all(m[3] for m in futex), tid
            # bpftrace ends a block at the scheduler's decision (sched_switch), hwprof where the thread runs again
            # (PERF_RECORD_SWITCH in, after its perf events are switched in): up to tens of us per block (15-35 us
            # with both CPUs saturated), over thousands of short futex waits 9% of their sum. Less that cost, equal.
            offset = float(np.median([m[1] - m[0] for m in futex]))
            assert 0 <= offset <= 100_000, offset
            assert close(sum(m[1] for m in futex) - offset * len(futex), sum(m[0] for m in futex)), (offset, futex)


def test_perf_script_reads_the_capture(workloads, tmp_path):
    perf = need_perf()
    data, truth = record(tmp_path, workloads["offcpu_lock"], "3")
    proc = subprocess.run([perf, "script", "-i", str(data), "--show-switch-events", "-F", "tid,event,trace"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    switches = [line for line in proc.stdout.splitlines() if "sched:sched_switch" in line]
    assert any(f"prev_pid={truth['tid_waiter']} " in line and "prev_state=S" in line for line in switches)
    assert any("PERF_RECORD_SWITCH" in line for line in proc.stdout.splitlines())


def test_attaching_to_a_running_process_pairs_its_blocks(workloads, tmp_path):
    proc = subprocess.Popen([str(workloads["offcpu_split"]), "400"], stdout=subprocess.DEVNULL)  # ~16 s
    try:
        time.sleep(0.5)
        data = tmp_path / "attach.data"
        run_hwprof("record", "--off-cpu", "-p", str(proc.pid), "-d", "1.5", "-o", str(data), timeout=180)
    finally:
        proc.kill()
        proc.wait(timeout=120)
    rows = folded(data, "--off-cpu")
    long_us, short_us = blocked_us(rows, "caller_long"), blocked_us(rows, "caller_short")
    # 30 ms against 10 ms sleeps: 3:1 on an idle machine, less where load stretches every sleep.
    assert 1.5 < long_us / short_us < 3.5, (long_us, short_us)
    # Nothing blocked longer than the capture lasted, per thread.
    report = json.loads(run_hwprof("report", "-i", str(data), "--wall", "--json", timeout=180).stdout)
    for thread in report["off_cpu"]["threads"]:
        assert thread["wall_ns"] < 1.5e9 * 1.2 + 5e8, thread


def test_an_unprivileged_user_gets_switch_records_and_a_clear_notice(workloads, tmp_path, run_unprivileged):
    os.chmod(tmp_path, 0o777)
    data = tmp_path / "user.data"
    proc = run_unprivileged([sys.executable, "-m", "hwprof", "record", "--off-cpu", "-o", str(data), "--",
                             str(workloads["offcpu_split"]), "10"])  # main outlives the helper: no join wait
    assert proc.returncode == 0, proc.stderr
    assert "tracepoints need root or CAP_PERFMON" in proc.stderr
    report = json.loads(run_hwprof("report", "-i", str(data), "--wall", "--json", timeout=180).stdout)
    truth = facts(proc.stdout)
    threads = {t["tid"]: t for t in report["off_cpu"]["threads"]}
    main = threads[truth["tid_main"]]
    assert set(main["off_cpu_ns"]) <= {"blocked (S or D)", "runnable (R, preempted)"}
    assert close(main["off_cpu_ns"]["blocked (S or D)"], truth["long_ns"] + truth["short_ns"], 0.10)
    assert "no stacks" in run_hwprof("report", "-i", str(data), "--off-cpu", timeout=180).stdout


def test_system_wide_capture_pairs_the_blocks_of_every_thread(workloads, tmp_path):
    proc = subprocess.Popen([str(workloads["offcpu_split"]), "400"], stdout=subprocess.DEVNULL)  # ~16 s
    try:
        time.sleep(0.5)
        data = tmp_path / "all.data"
        run_hwprof("record", "--off-cpu", "-a", "-d", "1.5", "-o", str(data), timeout=180)
    finally:
        proc.kill()
        proc.wait(timeout=120)
    rows = folded(data, "--off-cpu", "--pid", str(proc.pid))
    long_us, short_us = blocked_us(rows, "caller_long"), blocked_us(rows, "caller_short")
    # 30 ms against 10 ms sleeps: 3:1 on an idle machine, less where load stretches every sleep.
    assert 1.5 < long_us / short_us < 3.5, (long_us, short_us)
    assert 0.4 * 1.5e6 < long_us + short_us < 1.5e6  # most of the 1.5 s window is spent in those sleeps
