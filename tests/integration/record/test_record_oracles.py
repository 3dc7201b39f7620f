"""hwprof record/report against the kernel and against perf, on workloads with known answers."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from record_helpers import need_perf, run_hwprof

from hwprof.perf.syscall import has_cpu_pmu


def _report_json(*args: str, env=None) -> dict:
    return json.loads(run_hwprof("report", "--json", "--limit", "0", *args, env=env).stdout)


def _rows(report: dict) -> dict[str, dict]:
    return {row["keys"][-1]: row for row in report["rows"]}


def _perf_children(perf: str, path, *extra: str) -> dict[str, tuple[float, float]]:
    """symbol -> (children %, self %) from perf report --stdio --children."""
    out = subprocess.run([perf, "report", "-i", str(path), "--stdio", "--children", "--sort", "symbol", "-g", "none",
                          *extra], capture_output=True, text=True, check=True).stdout
    result = {}
    for line in out.splitlines():
        m = re.match(r"\s+([\d.]+)%\s+([\d.]+)%\s+\[[.k]\]\s+(\S+)", line)
        if m:
            result[m.group(3)] = (float(m.group(1)), float(m.group(2)))
    return result


def _split_share(rows: dict[str, float]) -> float:
    a, b = rows["caller_a"], rows["caller_b"]
    return 100.0 * a / (a + b)


def test_three_to_one_split_and_perf_agrees(workloads, tmp_path):
    perf = need_perf()
    data = tmp_path / "split.data"
    proc = run_hwprof("record", "-g", "-F", "4000", "-o", str(data), "--", str(workloads["split"]))
    assert "split done" in proc.stdout
    report = _report_json("-i", str(data))
    rows = _rows(report)
    ours = {name: rows[name]["total_percent"] for name in ("caller_a", "caller_b", "hot")}
    assert report["samples"] > 1000
    assert abs(_split_share(ours) - 75.0) <= 3.0, ours
    # Nearly all time is in hot(): so the callers' absolute shares are 75% and 25% of it too.
    assert abs(ours["caller_a"] - 0.75 * ours["hot"]) <= 3.0 and abs(ours["caller_b"] - 0.25 * ours["hot"]) <= 3.0
    assert rows["hot"]["self_percent"] > 90.0
    theirs = _perf_children(perf, data)
    for name in ("caller_a", "caller_b", "hot"):
        assert abs(theirs[name][0] - ours[name]) <= 1.0, (name, theirs[name], ours[name])
    assert abs(theirs["hot"][1] - rows["hot"]["self_percent"]) <= 1.0


def test_perf_script_reads_our_file_sample_for_sample(workloads, tmp_path):
    perf = need_perf()
    data = tmp_path / "split.data"
    run_hwprof("record", "-g", "-o", str(data), "--", str(workloads["split"]), "150")
    out = subprocess.run([perf, "script", "-i", str(data), "-F", "tid,time,event"], capture_output=True, text=True,
                         check=True).stdout
    perf_samples = sum(1 for line in out.splitlines() if line.strip())
    report = _report_json("-i", str(data))
    assert perf_samples == report["samples"] > 100
    header = subprocess.run([perf, "report", "-i", str(data), "--header-only"], capture_output=True, text=True,
                            check=True).stdout
    for field in ("hostname", "os release", "nrcpus online", "cmdline", "event : name = "):
        assert field in header
    tree = run_hwprof("report", "-i", str(data), "--call-graph").stdout
    caller_a = next(line for line in tree.splitlines() if line.endswith(" caller_a"))
    assert abs(float(caller_a.split("%")[0].split()[-1]) - 75.0) <= 4.0
    html = tmp_path / "out.html"
    run_hwprof("report", "-i", str(data), "--html", str(html))
    assert html.read_text().lstrip().lower().startswith("<!doctype html") and "hot" in html.read_text()


def test_reads_perf_record_callgraph_file(workloads, tmp_path):
    perf = need_perf()
    data = tmp_path / "perf.data"
    subprocess.run([perf, "record", "-q", "-g", "-F", "4000", "-e", "cpu-clock", "-o", str(data), "--",
                    str(workloads["split"])], check=True, capture_output=True)
    report = _report_json("-i", str(data))
    rows = {name: row["total_percent"] for name, row in _rows(report).items()}
    assert abs(_split_share(rows) - 75.0) <= 3.0
    theirs = _perf_children(perf, data)
    for name in ("caller_a", "caller_b", "hot"):
        assert abs(theirs[name][0] - rows[name]) <= 1.0, (name, theirs[name], rows[name])
    assert report["meta"]["source"] == "perf record"


def test_reads_perf_record_several_events_and_groups(workloads, tmp_path):
    perf = need_perf()
    several = tmp_path / "several.data"
    subprocess.run([perf, "record", "-q", "-e", "cpu-clock,page-faults", "-o", str(several), "--",
                    str(workloads["faults"]), "32"], check=True, capture_output=True)
    report = _report_json("-i", str(several), "--event", "page-faults")
    assert report["event"] == "page-faults" and "cpu-clock" in report["other_events"]
    assert report["samples"] > 0
    group = tmp_path / "group.data"
    subprocess.run([perf, "record", "-q", "-e", "{cpu-clock,page-faults}:S", "-o", str(group), "--",
                    str(workloads["faults"]), "32"], check=True, capture_output=True)
    report = _report_json("-i", str(group))
    assert report["meta"]["weight_names"][:2] == ["cpu-clock", "page-faults"]
    ratio = "page-faults/ms"  # per millisecond of the cpu-clock leader
    assert ratio in report["ratio_names"]
    assert any(ratio in row["ratios"] and row["ratios"][ratio] > 0 for row in report["rows"])


def test_group_read_in_every_sample_gives_per_function_ratios(workloads, tmp_path):
    data = tmp_path / "group.data"
    run_hwprof("record", "-e", "{cpu-clock,page-faults,context-switches}", "-g", "-o", str(data), "--",
               str(workloads["faults"]), "64")
    report = _report_json("-i", str(data), "--no-children")
    assert report["meta"]["weight_names"] == ["cpu-clock", "page-faults", "context-switches"]
    rows = _rows(report)
    # The page-fault handler path is where the faults are counted: its ratio is far above the program's average.
    assert report["ratio_names"] == ["page-faults/ms", "context-switches/ms"]
    faults = sum(r["ratios"].get("page-faults/ms", 0) * r["self_weight"] for r in rows.values())
    assert faults > 0
    folded = run_hwprof("report", "-i", str(data), "--folded", "--weight", "page-faults").stdout.splitlines()
    total = sum(int(line.rsplit(" ", 1)[1]) for line in folded)
    # 4 rounds x 64 MiB of fresh 4 KiB pages = 65536 faults, plus the program's own start-up faults.
    assert 60000 <= total <= 80000, total


def test_kernel_frames_for_a_syscall_heavy_workload(workloads, tmp_path):
    data = tmp_path / "sys.data"
    run_hwprof("record", "-g", "-o", str(data), "--", str(workloads["syscalls"]))
    report = _report_json("-i", str(data), "--sort", "dso", "--no-children")
    dsos = {row["keys"][0]: row["self_percent"] for row in report["rows"]}
    assert dsos.get("[kernel.kallsyms]", 0) > 40.0, dsos
    rows = _rows(_report_json("-i", str(data)))
    # Kernel frames sit under the user frames of the same sample (libc's write has no frame pointer, so
    # write_loop itself may be skipped by the unwinder; main is always there).
    assert rows["main"]["total_percent"] > 80.0
    assert rows["ksys_write"]["total_percent"] > 20.0 and rows["entry_SYSCALL_64_after_hwframe"]["self_percent"] < 5


def test_follows_a_forking_command(workloads, tmp_path):
    data = tmp_path / "fork.data"
    proc = run_hwprof("record", "-g", "-o", str(data), "--", str(workloads["forker"]))
    assert "forker done 0" in proc.stdout
    report = _report_json("-i", str(data), "--sort", "pid,symbol", "--no-children")
    child = [r for r in report["rows"] if r["keys"][1] == "child_work"]
    assert child and child[0]["self_percent"] > 80.0
    by_pid = _report_json("-i", str(data), "--sort", "pid")
    assert len(by_pid["rows"]) >= 2  # the parent (before fork and waiting) and the child


def test_attach_to_a_running_two_thread_process(workloads, tmp_path):
    data = tmp_path / "attach.data"
    # 8 s: hwprof's start (Python, numpy) took over 3 s on the loaded 2-CPU machine, and a target that had already
    # ended gave "no such process"
    target = subprocess.Popen([str(workloads["threads"]), "8"], stdout=subprocess.PIPE, text=True)
    try:
        assert target.stdout.readline().strip() == "threads started"
        run_hwprof("record", "-g", "-p", str(target.pid), "-d", "1", "-o", str(data))
        out, _ = target.communicate(timeout=30)
    finally:
        if target.poll() is None:
            target.kill()
    assert target.returncode == 0 and "threads done 1" in out
    report = _report_json("-i", str(data), "--sort", "tid")
    tids = {int(row["keys"][0]) for row in report["rows"] if row["samples"] > 100}
    assert len(tids) == 2 and target.pid in tids
    rows = _rows(_report_json("-i", str(data)))
    assert rows["spin_worker"]["total_percent"] > 90.0  # resolved through the /proc-synthesized mappings


def test_tiny_ring_buffer_loses_samples_and_says_so(workloads, store_env):
    proc = run_hwprof("record", "-m", "1", "-e", "page-faults", "-c", "1", "-g", "--", str(workloads["faults"]),
                      env=store_env)
    assert "LOST" in proc.stderr
    entry = json.loads(run_hwprof("ls", "--json", env=store_env).stdout)[0]
    assert entry["lost"] > 0 and entry["samples"] > 0
    report = _report_json(env=store_env)
    assert report["lost"] == entry["lost"]
    text = run_hwprof("report", env=store_env).stdout
    assert f"# lost samples: {entry['lost']:,}" in text
    assert entry["stack_quality"] is None  # known once decoded, then kept in the index
    decoded = json.loads(run_hwprof("ls", "--json", env=store_env).stdout)[0]
    assert 0.0 <= decoded["stack_quality"] <= 1.0


def test_system_wide_and_cpu_list(tmp_path):
    data = tmp_path / "all.data"
    run_hwprof("record", "-a", "-d", "0.5", "-e", "cpu-clock", "-F", "999", "-o", str(data))
    report = _report_json("-i", str(data), "--sort", "pid", "--raw")
    # 0.5 s x 999 Hz per CPU; an idle CPU in tickless idle may take fewer: at least one busy CPU's worth, and
    # more than one process (system-wide sees at least the idle task and hwprof itself).
    assert report["samples"] >= 350 and len(report["rows"]) >= 2
    one = tmp_path / "cpu0.data"
    run_hwprof("record", "-C", "0", "-d", "0.3", "-e", "cpu-clock", "-o", str(one))
    from hwprof.pipeline import decode_file

    profile = decode_file(one)
    assert set(profile.sample_cpu.tolist()) == {0}


@pytest.mark.skipif(has_cpu_pmu(), reason="this machine has a CPU PMU: cycles opens, nothing to fall back from")
def test_hardware_fallback_only_when_the_event_was_not_named(tmp_path):
    data = tmp_path / "fb.data"
    proc = run_hwprof("record", "-o", str(data), "--", "true")
    assert "falling back to 'cpu-clock'" in proc.stderr
    proc = run_hwprof("record", "-e", "cycles", "-o", str(data), "--", "true", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "no CPU PMU" in proc.stderr


def test_reads_perf_pipe_mode_output(workloads, tmp_path):
    perf = need_perf()
    data = tmp_path / "pipe.data"
    with open(data, "wb") as out:
        subprocess.run([perf, "record", "-q", "-g", "-e", "cpu-clock", "-o", "-", "--", "sh", "-c",
                        f"{workloads['split']} 100 > /dev/null"], stdout=out, check=True, stderr=subprocess.DEVNULL)
    report = _report_json("-i", str(data))
    rows = {name: row["total_percent"] for name, row in _rows(report).items()}
    assert report["samples"] > 200 and abs(_split_share(rows) - 75.0) <= 5.0


def test_tracepoint_as_sampling_event_and_max_stack(workloads, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("tracepoints system-wide need root here")
    data = tmp_path / "tp.data"
    # An idle machine may switch fewer than 10 times in half a second: a sleeper makes sure it switches.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time\nfor _ in range(400): time.sleep(0.002)"])
    try:
        run_hwprof("record", "-e", "sched:sched_switch", "-a", "-g", "-d", "0.5", "-o", str(data))
    finally:
        sleeper.wait(timeout=30)
    report = _report_json("-i", str(data), "--raw", "--sort", "comm")
    assert report["event"] == "sched:sched_switch" and report["samples"] > 10
    capped = tmp_path / "capped.data"
    run_hwprof("record", "-g", "--max-stack", "4", "-e", "cpu-clock", "-o", str(capped), "--",
               str(workloads["split"]), "50")
    quality = _report_json("-i", str(capped), "--raw")["quality"]
    assert quality["truncated"] > 0.9 * quality["samples"]  # main, caller, hot + libc start: 4 frames is short


def test_jit_code_named_from_a_perf_map_the_process_deleted(workloads, tmp_path):
    data = tmp_path / "jit.data"
    proc = run_hwprof("record", "-g", "-e", "cpu-clock", "-o", str(data), "--", str(workloads["jit"]))
    assert "jit done" in proc.stdout
    copies = list((tmp_path / "jit.data.jit").glob("perf-*.map"))
    assert len(copies) == 1 and "jitted_loop" in copies[0].read_text()
    assert not Path(f"/tmp/{copies[0].name}").exists()  # the workload removed its map: only our copy is left
    report = _report_json("-i", str(data), "--sort", "dso,symbol", "--no-children")
    top = report["rows"][0]
    assert top["keys"] == ["[jit]", "jitted_loop"] and top["self_percent"] > 90.0


def test_system_wide_group_deltas_add_up(workloads, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("system-wide capture needs root here")
    data = tmp_path / "swg.data"
    started = time.monotonic()
    machine_faults = _vmstat_pgfault()
    recorder = subprocess.Popen([sys.executable, "-m", "hwprof", "record", "-q", "-a", "-e",
                                 "{cpu-clock,page-faults}", "-d", "120", "-o", str(data)])
    # On a loaded machine start-up takes a while: the workload runs once the capture is flushing (0.5 s ticks).
    deadline = time.monotonic() + 60
    while not (data.exists() and data.stat().st_size > 8192):
        assert recorder.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(0.6)
    subprocess.run([str(workloads["faults"]), "64"], check=True, stdout=subprocess.DEVNULL)
    recorder.send_signal(signal.SIGINT)
    assert recorder.wait(timeout=60) == 0
    machine_faults = _vmstat_pgfault() - machine_faults  # everyone's, over the whole capture
    elapsed = time.monotonic() - started
    from hwprof.pipeline import decode_file

    profile = decode_file(data)
    clock_ns, faults = profile.counters.sum(axis=0)
    # Deltas per counter instance (stream id): per-CPU counters summed over the capture, never counted twice.
    assert clock_ns <= elapsed * 1e9 * os.cpu_count() * 1.1
    # Per-sample deltas cover each counter up to its CPU's last sample: faults after it belong to no sample (up to
    # one sample period's worth per CPU: idle-machine runs lost 153 and 786 of 65,536 that way), so the floor
    # allows 5%.
    # Above: no more than the whole machine faulted over the capture (/proc/vmstat; it also counts a retried fault
    # twice, the event once): other processes fault too on a busy machine, but nothing is counted twice.
    assert 65536 * 0.95 <= faults <= machine_faults * 1.02 + 1000


def _vmstat_pgfault() -> int:
    """Page faults of the whole machine since boot."""
    with open("/proc/vmstat") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("pgfault "))


def test_a_stale_perf_map_from_an_earlier_process_with_the_same_pid_is_not_copied(tmp_path):
    target = subprocess.Popen(["sleep", "30"])
    stale = Path(f"/tmp/perf-{target.pid}.map")
    try:
        stale.write_text("7f0000000000 100 from_an_earlier_process\n")
        hour_ago = time.time() - 3600
        os.utime(stale, (hour_ago, hour_ago))  # written before the target started: pid reuse
        data = tmp_path / "attach.data"
        run_hwprof("record", "-g", "-e", "cpu-clock", "-p", str(target.pid), "-d", "0.5", "-o", str(data))
        assert not (tmp_path / "attach.data.jit" / stale.name).exists()
        os.utime(stale)  # now it is the target's own
        run_hwprof("record", "-g", "-e", "cpu-clock", "-p", str(target.pid), "-d", "0.5", "-o", str(data))
        assert (tmp_path / "attach.data.jit" / stale.name).read_text() == stale.read_text()
    finally:
        target.kill()
        target.wait()
        stale.unlink(missing_ok=True)
