"""JIT code unwound by the CFI its JIT wrote (jitdump CODE_UNWINDING_INFO), end to end: workloads/jit31.c copies a
function with a frame but no frame pointer into anonymous executable memory, describes it in a jitdump with (or
without) its unwinding info, and calls through it from two callers (3:1). perf (record -k 1, inject --jit, script)
is the oracle for the callers; readelf and llvm-dwarfdump for the rows read from the JIT's bytes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hwprof.symbolize.jit_cfi import wrap_in_elf
from hwprof.symbolize.jit_unwind import CFI_SOURCE, JitEntry, jit_table
from hwprof.symbolize.jitdump import parse_jitdump
from perf_oracle import hwprof_stacks, perf_stacks
from readelf_frames import readelf_rows

from hwprof.unwind.table import CfaRule

MAINS = ("main", "__libc_start_call_main")
GOLDEN = Path(__file__).parents[2] / "unit" / "unwind" / "golden" / "python3.13-perf_jit.dump"


def hwprof(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "hwprof", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return proc


def jit_stacks(data: Path) -> Counter:
    """Folded stacks (root first) of the samples in or below the JIT code."""
    stacks: Counter = Counter()
    for line in hwprof("report", "-i", str(data), "--folded").stdout.splitlines():
        stack, _, count = line.rpartition(" ")
        if "jitted_loop" in stack.split(";"):
            stacks[stack] += int(count)
    return stacks


def caller_share(stacks: Counter) -> tuple[float, int]:
    a = sum(c for s, c in stacks.items() if "caller_a;jitted_loop" in s)
    b = sum(c for s, c in stacks.items() if "caller_b;jitted_loop" in s)
    return 100.0 * a / max(a + b, 1), a + b


def record(workload: Path, tmp_path: Path, mode: str) -> tuple[Path, Counter, dict]:
    """hwprof record --call-graph dwarf of the JIT writing its jitdump into its working directory (as Node does):
    the capture finds it through the MMAP record of its executable mapping."""
    data = tmp_path / f"{mode}.data"
    hwprof("record", "-q", "--call-graph", "dwarf", "-F", "999", "-o", str(data), "--", str(workload), "25", mode,
           str(tmp_path), cwd=tmp_path)
    assert list((tmp_path / f"{mode}.data.jit").glob("jit-*.dump")), "the jitdump is copied into the capture"
    report = json.loads(hwprof("report", "-i", str(data), "--json", "--limit", "0").stdout)
    return data, jit_stacks(data), report


def test_jit_cfi_takes_stacks_through_the_jit_code_to_main(nofp_workloads, tmp_path):
    _data, stacks, report = record(nofp_workloads["jit31"], tmp_path, "unwind")
    total = sum(stacks.values())
    assert total >= 0.8 * report["samples"] and total > 300, (total, report["samples"])
    reach = sum(c for s, c in stacks.items() if set(s.split(";")) & set(MAINS))
    assert reach >= 0.90 * total, stacks.most_common(5)
    share, n = caller_share(stacks)
    assert n >= 0.90 * total and abs(share - 75.0) <= 5.0, (share, stacks.most_common(5))
    # the native callback below the JIT frame is unwound through it too
    assert sum(c for s, c in stacks.items() if s.endswith("caller_a;jitted_loop;hot_native")) > 0.1 * total
    assert any("JIT code unwound" in n and CFI_SOURCE in n for n in report["notes"]), report["notes"]


def test_without_the_unwinding_record_stacks_stop_at_the_jit_frame(nofp_workloads, tmp_path):
    _data, stacks, report = record(nofp_workloads["jit31"], tmp_path, "nounwind")
    total = sum(stacks.values())
    assert total > 300
    reach = sum(c for s, c in stacks.items() if set(s.split(";")) & set(MAINS))
    assert reach <= 0.05 * total, stacks.most_common(5)
    rooted = sum(c for s, c in stacks.items() if s.split(";")[0] == "jitted_loop")
    assert rooted >= 0.90 * total, stacks.most_common(5)
    reasons = dict(report["quality"]["reasons"])
    assert reasons.get("JIT code without unwind info", 0) >= 0.90 * total, reasons
    assert not any(CFI_SOURCE in n for n in report["notes"])


def _callers(names: list[str]) -> tuple[str, ...] | None:
    """The frames from the JIT function down to main (leaf first), or None when the stack has no JIT frame."""
    names = [n.removesuffix(" (inlined)") for n in names]
    if "jitted_loop" not in names:
        return None
    start = names.index("jitted_loop")
    end = names.index("main", start) + 1 if "main" in names[start:] else len(names)
    return tuple(names[start:end])


def test_perf_inject_jit_agrees_on_the_callers_of_the_jit_code(nofp_workloads, tmp_path):
    perf = shutil.which("perf")
    if perf is None:
        pytest.skip("perf is not installed (make apt-test installs linux-perf)")
    data = tmp_path / "perf.data"
    injected = tmp_path / "perf.jit.data"
    # the JIT writes its jitdump into tmp_path (perf inject writes its jitted-PID-N.so files next to it)
    subprocess.run([perf, "record", "-q", "-N", "-k", "1", "--call-graph", "dwarf", "-F", "999", "-o", str(data), "--",
                    str(nofp_workloads["jit31"]), "25", "unwind", str(tmp_path)], capture_output=True, text=True,
                   timeout=300, check=True)
    subprocess.run([perf, "inject", "--jit", "-i", str(data), "-o", str(injected)], check=True, capture_output=True,
                   timeout=300)
    # hwprof reads perf's own file, finding the jitdump where the JIT mapped it; perf reads its injected copy
    ours = hwprof_stacks(data)
    theirs = perf_stacks(perf, injected)
    common = [k for k in set(ours) & set(theirs) if _callers(theirs[k].names)]
    assert len(common) > 300
    agree = sum(_callers(ours[k].names) == _callers(theirs[k].names) for k in common)
    assert agree >= 0.95 * len(common), Counter((_callers(ours[k].names), _callers(theirs[k].names))
                                                for k in common).most_common(4)
    perf_a = sum(_callers(theirs[k].names)[1:2] == ("caller_a",) for k in common)
    assert abs(100.0 * perf_a / len(common) - 75.0) <= 5.0


@pytest.mark.parametrize("source", ["python3.13", "jit31"])
def test_rows_read_from_a_jits_bytes_agree_with_readelf_and_llvm_dwarfdump(source, nofp_workloads, tmp_path):
    """The same .eh_frame bytes, wrapped in the ELF image hwprof hands to symbolic: binutils' and LLVM's row
    tables at every offset of the code equal the unwind table's."""
    if source == "jit31":
        out = subprocess.run([str(nofp_workloads["jit31"]), "0", "unwind", str(tmp_path)], capture_output=True,
                             text=True, check=True).stdout
        data = Path(out.split()[0]).read_bytes()
    else:
        data = GOLDEN.read_bytes()
    entry = parse_jitdump(data).entries[0]
    elf_bytes, (code_at,) = wrap_in_elf([(entry.size, entry.unwinding.eh_frame)])
    elf = tmp_path / "wrapped.elf"
    elf.write_bytes(elf_bytes)
    jit = jit_table([JitEntry(entry.start, entry.size, entry.name, entry.code, entry.unwinding.eh_frame)], [])
    table, base = jit.table, jit.base

    def ours(offset: int) -> str:
        i = int(table.lookup([entry.start + offset - base])[0])
        assert CfaRule(int(table.cfa_rule[i])) == CfaRule.RSP
        return f"rsp+{int(table.cfa_offset[i])}"

    rows = [r for r in readelf_rows(str(elf)) if r.address >= code_at]
    assert rows and rows[0].address == code_at and rows[0].fde_end == code_at + entry.size
    for offset in range(entry.size):
        expected = [r for r in rows if r.address <= code_at + offset][-1]
        assert ours(offset) == expected.cfa and expected.ra == "c-8", offset
    if shutil.which("llvm-dwarfdump"):
        text = subprocess.run(["llvm-dwarfdump", "--eh-frame", str(elf)], capture_output=True, text=True).stdout
        llvm = [(int(m.group(1), 16), int(m.group(2))) for m in re.finditer(r"0x([0-9a-f]+): CFA=RSP\+(\d+)", text)]
        assert llvm == [(r.address, int(r.cfa.removeprefix("rsp+"))) for r in rows], text
