"""`hwprof stat -vv` prints each perf_event_attr before opening it as `perf stat -vv` does.

For each event string, the first attr block of both tools is parsed into fields and compared. Fields compared:
everything the event string and the counting mode decide. Not compared, by design: `size` (perf 6.1 writes
the 128-byte VER7 attr, hwprof the 136-byte VER8 one), `sample_type` (perf asks for IDENTIFIER on counters it
never samples) and `read_format` (each tool's choice of read layout).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.skipif(not shutil.which("perf"), reason="perf is not installed")

EVENTS = ("task-clock", "page-faults:u", "cpu-clock:Hk", "cycles", "instructions:u", "r1a8:k",
          "L1-dcache-load-misses", "{cycles,instructions}:u", "context-switches:k", "cache-misses:ppu")


def first_block(text: str, ignored: frozenset[str] = frozenset({"size", "sample_type", "read_format"})
                ) -> dict[str, str]:
    match = re.search(r"perf_event_attr:\n((?:  .*\n)+)", text)
    assert match, text
    fields = {}
    for line in match.group(1).splitlines():
        label, value = line[2:34].rstrip(), line[35:].strip()
        fields[label] = value
    return {k: v for k, v in fields.items() if k not in ignored}


@pytest.mark.parametrize("event", EVENTS)
def test_attr_block_matches_perf(hwprof_cmd, event):
    env = {**os.environ, "LC_ALL": "C"}
    env.pop("PERF_CPUID", None)
    perf = subprocess.run(["perf", "stat", "-vv", "-e", event, "true"], capture_output=True, text=True, env=env,
                          timeout=60)
    ours = subprocess.run([*hwprof_cmd, "stat", "-vv", "-e", event, "--", "true"], capture_output=True, text=True,
                          env=env, timeout=60)
    assert "perf_event_attr:" in ours.stderr, ours.stderr
    assert first_block(ours.stderr) == first_block(perf.stderr)
    assert re.search(r"^sys_perf_event_open: pid \d+  cpu -1  group_fd -1  flags 0x8( = \d+)?$", ours.stderr,
                     re.M)


def test_named_event_of_another_model_prints_its_attr_and_the_failure(hwprof_cmd):
    """No PMU here: the attr of MEM_LOAD_RETIRED.L3_MISS:pp (Sapphire Rapids) is printed, then the refusal."""
    env = {**os.environ, "PERF_CPUID": "GenuineIntel-6-8F-8"}
    out = subprocess.run([*hwprof_cmd, "stat", "-vv", "-e", "task-clock,MEM_LOAD_RETIRED.L3_MISS:pp", "--", "true"],
                         capture_output=True, text=True, env=env, timeout=60)
    blocks = re.findall(r"perf_event_attr:\n((?:  .*\n)+)", out.stderr)
    assert len(blocks) == 2, out.stderr
    named = dict((line[2:34].rstrip(), line[35:].strip()) for line in blocks[1].splitlines())
    assert (named["type"], named["config"], named["precise_ip"]) == ("4", "0x20d1", "2")
    from hwprof.perf.syscall import has_cpu_pmu

    if not has_cpu_pmu():
        assert "sys_perf_event_open failed, error -2" in out.stderr
        assert out.returncode == 0  # task-clock was counted


def test_record_vv_prints_the_sampling_attrs(hwprof_cmd, tmp_path):
    out = subprocess.run([*hwprof_cmd, "record", "-vv", "-e", "cpu-clock", "-c", "1000", "-o",
                          str(tmp_path / "x.data"), "--", "true"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    block = first_block(out.stderr)
    assert (block["type"], block["{ sample_period, sample_freq }"]) == ("1", "1000")
    assert block["mmap"] == block["comm"] == block["task"] == "1"
    assert re.search(r"^sys_perf_event_open: pid \d+  cpu 0  group_fd -1  flags 0x8 = \d+$", out.stderr, re.M)
