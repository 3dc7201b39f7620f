"""Every sample the kernel could not write is counted, however the capture ends."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from record_helpers import need_perf, run_hwprof

from hwprof.perf import syscall

WRITES = 200_000


def _writer(sleep_s: float) -> list[str]:
    """WRITES write(2)s as fast as Python goes, then quiet: no record follows the burst until the capture stops."""
    return [sys.executable, "-c", f"import os, time\nfd = os.open('/dev/null', os.O_WRONLY)\n"
            f"for _ in range({WRITES}): os.write(fd, b'x')\ntime.sleep({sleep_s})"]


@pytest.mark.skipif(os.geteuid() != 0, reason="tracepoints at perf_event_paranoid 2 need root")
@pytest.mark.skipif(not syscall.reports_lost_samples(), reason="this kernel has no PERF_FORMAT_LOST (Linux 6.0)")
def test_drops_at_the_stop_are_counted(tmp_path):
    """The kernel reports drops in a LOST record in front of the next record that fits. A one-page ring still full
    when the capture stops has no next record: those drops come from the events' own counts (PERF_FORMAT_LOST), and
    the file says them in a LOST_SAMPLES record as perf record's do."""
    perf = need_perf()
    stat = subprocess.run([perf, "stat", "-x,", "-e", "syscalls:sys_enter_write", *_writer(0)],
                          capture_output=True, text=True, timeout=120)
    expected = int(stat.stderr.strip().splitlines()[-1].split(",")[0])
    assert expected >= WRITES
    data = tmp_path / "lost.data"
    proc = run_hwprof("record", "-m", "1", "-e", "syscalls:sys_enter_write", "-c", "1", "-d", "4", "-o", str(data),
                      "--", *_writer(30), check=False)  # the command's status: -d ended it with SIGTERM
    match = re.search(r"\(([\d,]+) samples, ([\d,]+) LOST\)", proc.stderr)
    assert match, proc.stderr
    samples, lost = (int(g.replace(",", "")) for g in match.groups())
    assert samples + lost == expected
    stats = subprocess.run([perf, "report", "-i", str(data), "--stats"], capture_output=True, text=True,
                           timeout=120).stdout
    assert re.search(rf"SAMPLE events:\s+{samples}\b", stats), stats
