#!/usr/bin/env python3
"""The VM tier: boot Debian's stock kernel under qemu (TCG) with virtme-ng and run the probe tests inside it.

Why: the development machine's kernel has no kprobes. virtme-ng boots a kernel image with the host filesystem
shared read-only (writes go to a throw-away overlay), so the guest runs this very checkout and venv. Inside,
the kprobe/kretprobe tests run for real, and a selection of the uprobe and tracepoint tests run again, so every
probe type is shown on two kernels.

The kernel comes from `make vm-kernel` (apt-get download linux-image-amd64's image package, dpkg-deb -x into
.cache/vm-kernel/root; never installed on the host). Exit status: pytest's status inside the guest.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KERNEL_GLOB = str(REPO / ".cache" / "vm-kernel" / "root" / "boot" / "vmlinuz-*")

# Everything about kprobes (counts against perf stat and bpftrace, both mechanisms, latency, stacks, args), plus
# uprobes (PMU and tracefs), a tracepoint and the SIGKILL clean-up once more on the second kernel. Under TCG each
# test costs about a minute on a loaded 2-core machine, so the whole probe suite would not fit CI's budget.
GUEST_TESTS = (
    "tests/integration/probes/test_kprobes.py",
    "tests/integration/probes/test_probe_counts.py::test_count_is_exact[pmu]",
    "tests/integration/probes/test_probe_counts.py::test_count_is_exact[tracefs]",
    "tests/integration/probes/test_probe_counts.py::test_write_tracepoint_counts_syscalls",
    "tests/integration/probes/test_probe_cleanup.py::test_sigkill_then_next_start_cleans_up",
    "tests/integration/probes/test_probe_errors.py::test_kernel_function_that_cannot_be_probed",
)
MARKER = "hwprof-vm-exit="


def find_kernel() -> str:
    found = sorted(glob.glob(KERNEL_GLOB))
    if not found:
        sys.exit(f"run_vm_tests: no kernel at {KERNEL_GLOB}: run 'make vm-kernel' first")
    return found[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tests", nargs="*", default=list(GUEST_TESTS), help="pytest node ids to run in the guest")
    parser.add_argument("--timeout", type=float, default=1500, help="seconds before the VM is killed")
    parser.add_argument("--memory", default="2G")
    args = parser.parse_args()

    kernel = find_kernel()
    venv_bin = Path(sys.executable).parent
    vng = shutil.which("vng", path=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}")
    if vng is None:
        sys.exit("run_vm_tests: virtme-ng is not installed (pip install -e '.[test]')")
    if shutil.which("qemu-system-x86_64") is None:
        sys.exit("run_vm_tests: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
    # Target programs are compiled here: gcc under TCG would cost minutes. The guest sees the repo read-only.
    programs = REPO / ".cache" / "vm-programs"
    shutil.rmtree(programs, ignore_errors=True)
    programs.mkdir(parents=True)
    sys.path.insert(0, str(REPO / "tests" / "integration" / "probes"))
    from probe_helpers import build_programs

    build_programs(programs)
    pytest_cmd = [sys.executable, "-u", "-m", "pytest", "-v", "-rs", "--durations=0", "-p", "no:cacheprovider",
                  *args.tests]
    guest = (f"cd {shlex.quote(str(REPO))} && echo \"guest kernel: $(uname -r)\" && "
             f"HWPROF_PROBE_PROGRAMS={shlex.quote(str(programs))} {shlex.join(pytest_cmd)}; echo {MARKER}$?")
    env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"}
    # KVM does not work on the CI machines: TCG, 2 vCPUs.
    argv = [vng, "--run", kernel, "--disable-kvm", "--cpus", "2", "--memory", args.memory, "--exec", guest]
    print("run_vm_tests:", shlex.join(argv), flush=True)
    start = time.monotonic()
    # Stream the guest's output as it comes (a CI log that stays silent for minutes helps nobody).
    # Own session: on timeout or Ctrl-C the whole tree (vng, virtme-run, qemu) goes, not just vng.
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)

    def kill_tree() -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(args.timeout, kill_tree)
    timer.start()
    lines = []
    try:
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            lines.append(line)
        proc.wait()
    except KeyboardInterrupt:
        kill_tree()
        raise
    finally:
        timer.cancel()
    output = "".join(lines)
    if time.monotonic() - start >= args.timeout:
        print(f"run_vm_tests: the VM did not finish within {args.timeout:.0f} s")
        return 1
    match = re.search(rf"{MARKER}(\d+)", output)
    print(f"run_vm_tests: VM tier took {time.monotonic() - start:.0f} s (vng exit {proc.returncode})")
    if match is None:
        print("run_vm_tests: the guest never reported pytest's exit status (boot failure?)")
        return 1
    return int(match.group(1))


if __name__ == "__main__":
    sys.exit(main())
