"""Unwind tables against binutils: every row readelf computes (CFA rule, return address and rbp rules) must be the
row hwprof's table gives at that address; corrupt or missing CFI gives a note, never an exception."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hwprof.symbolize.cfi import build_table, load_or_build_table
from hwprof.symbolize.debugfile import DebugSearch
from hwprof.symbolize.elf import read_build_id
from readelf_frames import readelf_rows

from hwprof.unwind.table import RA_UNDEFINED, RBP_SAME, CfaRule

SYSTEM_BINARIES = ["/usr/bin/xz", "/usr/bin/sqlite3", "/usr/bin/python3.11", "/usr/lib/x86_64-linux-gnu/libc.so.6",
                   "/usr/lib/x86_64-linux-gnu/liblzma.so.5"]


def _need_readelf() -> None:
    if not shutil.which("readelf"):
        pytest.skip("readelf is not installed (binutils)")


def _mismatches(path: str, search=None) -> tuple[int, list[str]]:
    rows = readelf_rows(path)
    table = build_table(path, search=search)
    index = table.lookup(np.array([r.address for r in rows], np.uint64))
    checked, bad = 0, []
    for r, i in zip(rows, index.tolist(), strict=True):
        if r.cfa == "exp" or i < 0:
            continue  # expressions: the PLT and signal-frame rows, checked on their own below
        checked += 1
        rule, off = CfaRule(int(table.cfa_rule[i])), int(table.cfa_offset[i])
        cfa = {CfaRule.RSP: f"rsp+{off}", CfaRule.RBP: f"rbp+{off}"}.get(rule, rule.name)
        if not r.cfa.startswith(("rsp", "rbp")):
            if rule != CfaRule.UNSUPPORTED:
                bad.append(f"{r.address:#x}: readelf {r.cfa}, table {cfa}")
            continue
        ra_off = int(table.ra_offset[i])
        ra = "u" if ra_off == RA_UNDEFINED else f"c{ra_off:+d}"
        rbp_off = int(table.rbp_offset[i])
        rbp = "u" if rbp_off == RBP_SAME else f"c{rbp_off:+d}"
        if cfa != r.cfa or ra != r.ra or (r.rbp != "u" and rbp != r.rbp):
            bad.append(f"{r.address:#x}: readelf {r.cfa} ra={r.ra} rbp={r.rbp}, table {cfa} ra={ra} rbp={rbp}")
    return checked, bad


@pytest.mark.parametrize("path", SYSTEM_BINARIES)
def test_every_row_matches_readelf_on_system_binaries(path):
    _need_readelf()
    if not Path(path).exists():
        pytest.skip(f"{path} is not installed")
    checked, bad = _mismatches(path)
    assert checked > 100
    assert not bad, f"{len(bad)} of {checked} rows differ: {bad[:10]}"


def test_a_start_that_marks_the_return_address_undefined_after_its_first_instruction_is_the_bottom():
    """Node's binary (older crt1.o): _start's FDE says `ra: u` only from _start+4, a row symbolic's breakpad form
    drops; the table makes the whole of _start the outermost frame, as readelf's rows end it."""
    _need_readelf()
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    path = str(Path(node).resolve())
    entry = int(subprocess.run(["readelf", "-h", path], capture_output=True, text=True, check=True).stdout
                .split("Entry point address:")[1].split()[0], 16)
    rows = readelf_rows(path)
    covering = max((r for r in rows if r.address <= entry < r.fde_end), key=lambda r: r.address)
    start_rows = [r for r in rows if r.fde_end == covering.fde_end]
    assert start_rows[0].address == entry and start_rows[0].ra == "c-8" and start_rows[-1].ra == "u"
    table = build_table(path)
    for address in range(entry, covering.fde_end):
        i = int(table.lookup([address])[0])
        assert table.ra_offset[i] == RA_UNDEFINED and CfaRule(int(table.cfa_rule[i])) == CfaRule.RSP, hex(address)


def test_eh_frame_and_debug_frame_of_a_built_program(nofp_workloads, tmp_path):
    _need_readelf()
    source = Path(__file__).parent / "workloads" / "split31.c"
    binary = tmp_path / "dbgframe"
    subprocess.run(["gcc", "-O2", "-g", "-fno-asynchronous-unwind-tables", "-fomit-frame-pointer", "-o", str(binary),
                    str(source)], check=True)
    checked, bad = _mismatches(str(binary))
    assert "debug_frame" in build_table(str(binary)).source
    assert checked >= 5 and not bad, bad


def test_plt_rows_follow_the_entry_offset():
    table = build_table("/usr/bin/xz")
    rows = readelf_rows("/usr/bin/xz")
    plt_rows = [r for r in rows if r.cfa == "exp"]
    assert plt_rows, "xz's .plt has the expression row"
    i = int(table.lookup(np.array([plt_rows[0].address + 0x10], np.uint64))[0])
    assert table.cfa_rule[i] == CfaRule.PLT and table.cfa_offset[i] == 11


def test_signal_return_trampoline_is_found_in_libc():
    libc = "/usr/lib/x86_64-linux-gnu/libc.so.6"
    out = subprocess.run(["objdump", "-d", libc], capture_output=True, text=True).stdout if shutil.which(
        "objdump") else ""
    table = build_table(libc)
    sig = table.start[table.cfa_rule == CfaRule.SIGRETURN]
    assert len(sig) == 1
    if out:  # the row starts at the nop before `mov $0xf,%rax; syscall`
        assert f"{int(sig[0]) + 1:x}:\t48 c7 c0 0f 00 00 00" in out


def test_debug_frame_from_a_separate_debug_file_found_by_build_id(tmp_path):
    if not shutil.which("objcopy"):
        pytest.skip("objcopy is not installed (binutils)")
    source = Path(__file__).parent / "workloads" / "split31.c"
    binary = tmp_path / "prog"
    subprocess.run(["gcc", "-O2", "-g", "-fno-asynchronous-unwind-tables", "-Wl,--build-id", "-o", str(binary),
                    str(source)], check=True)
    bid = read_build_id(str(binary)).hex()
    debug = tmp_path / "dbg" / ".build-id" / bid[:2] / f"{bid[2:]}.debug"
    debug.parent.mkdir(parents=True)
    subprocess.run(["objcopy", "--only-keep-debug", str(binary), str(debug)], check=True)
    subprocess.run(["objcopy", "--strip-debug", "-R", ".eh_frame", "-R", ".eh_frame_hdr", str(binary)], check=True)
    alone = build_table(str(binary), search=DebugSearch(debuginfod=False))
    assert len(alone) == 0 and any("no CFI" in n for n in alone.notes)
    found = build_table(str(binary), search=DebugSearch((str(tmp_path / "dbg"),), debuginfod=False))
    assert str(debug) in found.source
    main = int(subprocess.run(["nm", str(debug)], capture_output=True, text=True).stdout.split(" T main")[0]
               .splitlines()[-1].split()[0], 16)
    i = int(found.lookup(np.array([main], np.uint64))[0])
    assert found.cfa_rule[i] == CfaRule.RSP


@pytest.mark.parametrize("content", [b"", b"\x7fELF" + b"\x02\x01\x01" + b"\0" * 9 + b"\xff" * 100,
                                     b"not an elf at all"])
def test_corrupt_files_give_a_note_not_an_exception(tmp_path, content):
    bad = tmp_path / "bad.so"
    bad.write_bytes(content)
    table = build_table(str(bad))
    assert len(table) == 0 and table.notes


def test_corrupt_eh_frame_gives_a_note_or_rows_never_an_exception(tmp_path):
    binary = tmp_path / "xz"
    data = bytearray(Path("/usr/bin/xz").read_bytes())
    out = subprocess.run(["readelf", "-SW", "/usr/bin/xz"], capture_output=True, text=True).stdout
    line = next(ln for ln in out.splitlines() if " .eh_frame " in ln)
    offset = int(line.split()[4] if line.split()[1] == ".eh_frame" else line.split()[5], 16)
    rng = np.random.default_rng(7)
    for pos in rng.integers(offset, offset + 4000, 400).tolist():
        data[pos] = int(rng.integers(0, 256))
    binary.write_bytes(bytes(data))
    table = build_table(str(binary))  # must not raise
    assert len(table) > 0 or table.notes


def test_tables_are_cached_by_build_id(tmp_path):
    first = load_or_build_table("/usr/bin/xz", None, str(tmp_path))
    cached = list((tmp_path / "symbolize").glob("*.cfi"))
    assert len(cached) == 1 and cached[0].name.startswith(read_build_id("/usr/bin/xz").hex())
    again = load_or_build_table("/usr/bin/xz", None, str(tmp_path))
    assert again.start.tolist() == first.start.tolist()
