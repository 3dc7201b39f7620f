"""The Python API other parts of hwprof use: offsets, build-ids, uprobe offsets, kernel, JIT, vdso, --pid."""

from __future__ import annotations

import ctypes
import logging
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from hwprof.symbolize import SymbolizedFrame, Symbolizer
from hwprof.symbolize.elf import file_offset_to_vaddr, read_build_id, symbol_file_offset, vaddr_to_file_offset
from hwprof.symbolize.kernel import KernelSymbols
from symbolize_helpers import need, text_instruction_addresses

from hwprof.errors import HwprofError


def _nm(binary) -> dict[str, int]:
    out = subprocess.run([need("nm"), str(binary)], capture_output=True, text=True, check=True).stdout
    return {parts[2]: int(parts[0], 16) for parts in (line.split() for line in out.splitlines()) if len(parts) == 3}


def _load_segments(binary) -> list[tuple[int, int, int]]:
    out = subprocess.run([need("readelf"), "-lW", str(binary)], capture_output=True, text=True, check=True).stdout
    segs = []
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] == "LOAD":
            segs.append((int(parts[1], 16), int(parts[2], 16), int(parts[5], 16)))  # offset, vaddr, memsz
    return segs


def test_symbolize_offsets_uses_file_offsets_and_inline_chains(programs, tmp_path):
    sym = Symbolizer(cache_dir=str(tmp_path))
    checksum = _nm(programs.inline)["checksum"]
    offset = vaddr_to_file_offset(str(programs.inline), checksum)
    assert file_offset_to_vaddr(str(programs.inline), offset) == checksum
    addrs = [a for a in text_instruction_addresses(programs.inline) if checksum <= a < checksum + 0x80]
    offsets = np.array([vaddr_to_file_offset(str(programs.inline), a) for a in addrs], dtype=np.uint64)
    chains = sym.symbolize_offsets(str(programs.inline), offsets)
    assert len(chains) == len(addrs)
    for chain, off in zip(chains, offsets.tolist(), strict=True):
        assert isinstance(chain[-1], SymbolizedFrame)
        assert chain[-1].function == "checksum" and chain[-1].inlined is False
        assert all(f.inlined for f in chain[:-1])
        assert all(f.module == str(programs.inline) and f.module_offset == off for f in chain)
        assert chain[-1].file.endswith("inline.c") and chain[-1].line > 0
    assert max(len(c) for c in chains) >= 3  # mix <- mix_twice <- fold_block <- checksum
    assert chains[0][-1].symbol_offset == offsets[0] - offset


def test_duplicate_offsets_are_answered_once_each(programs, tmp_path):
    sym = Symbolizer(cache_dir=str(tmp_path))
    main = vaddr_to_file_offset(str(programs.inline), _nm(programs.inline)["main"])
    chains = sym.symbolize_offsets(str(programs.inline), np.array([main, main, main + 4, main], dtype=np.uint64))
    assert chains[0] == chains[1] == chains[3] and chains[0][-1].function == "main"


def test_index_is_cached_and_rebuilt_when_the_file_changes(programs, tmp_path):
    binary = tmp_path / "copy"
    binary.write_bytes(programs.inline.read_bytes())
    off = np.array([vaddr_to_file_offset(str(binary), _nm(binary)["checksum"])], dtype=np.uint64)
    first = Symbolizer(cache_dir=str(tmp_path / "c"))
    first.symbolize_offsets(str(binary), off)
    assert (first.index_builds, first.index_cache_hits) == (1, 0)
    second = Symbolizer(cache_dir=str(tmp_path / "c"))
    assert second.symbolize_offsets(str(binary), off) == first.symbolize_offsets(str(binary), off)
    assert (second.index_builds, second.index_cache_hits) == (0, 1)
    os.utime(binary, ns=(1, 1))  # touched, same build-id and size: the same binary, as a copy elsewhere would be
    assert Symbolizer(cache_dir=str(tmp_path / "c")).symbolize_offsets(str(binary), off) == first.symbolize_offsets(
        str(binary), off)
    binary.write_bytes(programs.inline.read_bytes() + b"\0" * 64)  # one build-id, another file: rebuilt
    third = Symbolizer(cache_dir=str(tmp_path / "c"))
    third.symbolize_offsets(str(binary), off)
    assert third.index_builds == 1
    # Without a build-id, the path, size and mtime are the identity: touched means rebuilt.
    no_id = tmp_path / "no-build-id"
    no_id.write_bytes(programs.debuglink_target.read_bytes())
    main = np.array([vaddr_to_file_offset(str(no_id), _nm(no_id)["main"])], dtype=np.uint64)
    fourth = Symbolizer(cache_dir=str(tmp_path / "c"))
    fourth.symbolize_offsets(str(no_id), main)
    os.utime(no_id, ns=(1, 1))
    fifth = Symbolizer(cache_dir=str(tmp_path / "c"))
    fifth.symbolize_offsets(str(no_id), main)
    assert (fourth.index_builds, fifth.index_builds) == (1, 1)


def test_read_build_id_matches_readelf(programs):
    out = subprocess.run([need("readelf"), "-n", str(programs.inline)], capture_output=True, text=True).stdout
    expected = re.search(r"Build ID: ([0-9a-f]+)", out).group(1)
    assert read_build_id(str(programs.inline)) == bytes.fromhex(expected)
    assert read_build_id(str(programs.debuglink_target)) is None
    assert read_build_id("/nonexistent/file") is None


def test_symbol_file_offset_follows_the_pt_load_rule(programs):
    for name, vaddr in _nm(programs.inline).items():
        if name in ("checksum", "sort_values", "main"):
            offset, seg_vaddr, _ = next(s for s in _load_segments(programs.inline) if s[1] <= vaddr < s[1] + s[2])
            assert symbol_file_offset(str(programs.inline), name) == vaddr - seg_vaddr + offset


def test_symbol_file_offset_finds_aliases(programs, tmp_path):
    """Several names at one address (a weak alias of a global): every one of them can be probed."""
    src = tmp_path / "alias.c"
    src.write_text("int impl(int x) { return x + 1; }\n"
                   "int alias(int x) __attribute__((weak, alias(\"impl\")));\n"
                   "int main(void) { return alias(1) - 2; }\n")
    binary = tmp_path / "alias"
    subprocess.run([need("gcc"), "-O1", "-o", str(binary), str(src)], check=True)
    assert symbol_file_offset(str(binary), "alias") == symbol_file_offset(str(binary), "impl")


def test_symbol_file_offset_accepts_demangled_names(programs):
    nm = _nm(programs.templates)
    mangled = next(n for n in nm if n.startswith("_ZN4text9histogram"))
    expected = symbol_file_offset(str(programs.templates), mangled)
    assert symbol_file_offset(str(programs.templates), "text::histogram") == expected
    assert symbol_file_offset(str(programs.templates), "text::score(int)") != symbol_file_offset(
        str(programs.templates), "text::score(double)")
    with pytest.raises(HwprofError, match="ambiguous"):
        symbol_file_offset(str(programs.templates), "text::score")
    with pytest.raises(HwprofError, match="close matches: .*text::histogram"):
        symbol_file_offset(str(programs.templates), "text::histogran")
    with pytest.raises(HwprofError, match="(?i)no such file"):
        symbol_file_offset("/nonexistent", "main")


def test_kernel_symbols_from_kallsyms():
    ksyms = KernelSymbols.load()
    if ksyms.hidden:
        pytest.skip("kernel addresses are hidden here (kptr_restrict); the unprivileged test covers that")
    text = open("/proc/kallsyms").read()
    addr = int(re.search(r"^([0-9a-f]+) [tT] schedule$", text, re.M).group(1), 16)
    chain = Symbolizer().symbolize_kernel(np.array([addr + 5], dtype=np.uint64))[0]
    assert chain == (SymbolizedFrame("schedule", None, None, False, "[kernel.kallsyms]", addr + 5, 5),)
    module_line = re.search(r"^([0-9a-f]+) [tT] (\S+)\s+\[(\w+)\]$", text, re.M)
    if module_line:
        maddr = int(module_line.group(1), 16)
        frame = Symbolizer().symbolize_kernel(np.array([maddr], dtype=np.uint64))[0][0]
        assert frame.module == f"[{module_line.group(3)}]" and frame.function is not None


def test_kernel_addresses_hidden_for_unprivileged_users(run_unprivileged):
    code = (
        "from hwprof.symbolize.kernel import KernelSymbols as K; k = K.load(); "
        "print(k.hidden, len(k.names)); print(k.hidden_note)"
    )
    proc = run_unprivileged([sys.executable, "-c", code])
    assert proc.returncode == 0, proc.stderr
    hidden, count = proc.stdout.splitlines()[0].split()
    assert (hidden, count) == ("True", "0"), proc.stdout
    assert "kptr_restrict" in proc.stdout


def test_jit_map_names_are_data(tmp_path, caplog):
    weird = ["js:~foo bar [baz] (x) <y>", 'LazyCompile:*"quoted" name', "emoji \u2603 and \\backslash", "  lead"]
    lines = [f"{0x1000 + i * 0x100:x} 80 {name}" for i, name in enumerate(weird)] + ["garbage line", ""]
    path = tmp_path / "perf-4242.map"
    path.write_text("\n".join(lines))
    addrs = np.array([0x1000 + i * 0x100 + 0x10 for i in range(len(weird))] + [0x5000], dtype=np.uint64)
    chains = Symbolizer().symbolize_jit(4242, addrs, perf_map_path=str(path))
    assert [c[0].function for c in chains] == [*weird, None]
    assert all(c[0].module == "[jit]" and c[0].module_offset == a for c, a in zip(chains, addrs.tolist(), strict=True))
    assert chains[0][0].symbol_offset == 0x10
    with caplog.at_level(logging.WARNING, logger="hwprof.symbolize"):
        missing = Symbolizer().symbolize_jit(999999, addrs[:1])
    assert missing[0][0].function is None and "perf-999999.map" in caplog.text


def test_vdso_frames_are_named(tmp_path):
    """[vdso] has no file: the kernel's image is copied out of our own mapping and symbolized."""
    maps = open("/proc/self/maps").read()
    line = next((ln for ln in maps.splitlines() if ln.endswith("[vdso]")), None)
    if line is None:
        pytest.skip("no vdso mapped")
    low, high = (int(x, 16) for x in line.split()[0].split("-"))
    sym = Symbolizer(cache_dir=str(tmp_path))
    chains = sym.symbolize_offsets("[vdso]", np.arange(0, high - low, 0x10, dtype=np.uint64))
    names = {c[-1].function for c in chains if c[-1].function}
    assert any("clock_gettime" in n for n in names), names
    assert all(c[-1].module == "[vdso]" for c in chains)


def test_pid_mode_symbolizes_a_live_process(tmp_path):
    libc = ctypes.CDLL("libc.so.6")
    addr = ctypes.cast(libc.getpid, ctypes.c_void_p).value
    proc = subprocess.run(
        [sys.executable, "-m", "hwprof", "addr2line", "--cache-dir", str(tmp_path), "--pid", str(os.getpid()),
         "-f", hex(addr)], capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    # getpid, __getpid or glibc's internal alias __GI___getpid, depending on which symbols are installed.
    assert "getpid" in proc.stdout.splitlines()[0]


def test_vmlinux_with_dwarf_gives_lines_under_kaslr(programs, tmp_path):
    """A vmlinux stand-in: a -O2 -g ELF with an _stext symbol; /proc/kallsyms stand-in says the
    kernel runs shifted (KASLR). Kernel addresses must come back with the vmlinux's file:line."""
    src = tmp_path / "kern.c"
    src.write_text(
        "void _stext(void) {}\n"
        "static inline __attribute__((always_inline)) int twice(int x) { return x * 2; }\n"
        "__attribute__((noinline)) int do_work(int x) { return twice(x) + 1; }\n"
        "int main(int argc, char **argv) { (void)argv; _stext(); return do_work(argc); }\n"
    )
    vmlinux = tmp_path / "vmlinux"
    subprocess.run([need("gcc"), "-O2", "-g", "-o", str(vmlinux), str(src)], check=True)
    syms = _nm(vmlinux)
    shift = 0xFFFFFFFF80000000
    kallsyms = tmp_path / "kallsyms"
    kallsyms.write_text(
        f"{syms['_stext'] + shift:016x} T _stext\n{syms['do_work'] + shift:016x} T do_work\n"
        f"{syms['main'] + shift:016x} T main\n"
    )
    sym = Symbolizer(vmlinux=str(vmlinux), kallsyms=str(kallsyms), cache_dir=str(tmp_path / "c"))
    chain = sym.symbolize_kernel(np.array([syms["do_work"] + shift], dtype=np.uint64))[0]
    assert chain[-1].function == "do_work" and chain[-1].file == str(src) and chain[-1].line == 3
    assert chain[-1].module == "[kernel.kallsyms]" and chain[-1].module_offset == syms["do_work"] + shift
    # Without the vmlinux: the name from kallsyms alone.
    plain = Symbolizer(kallsyms=str(kallsyms)).symbolize_kernel(np.array([syms["do_work"] + shift + 1],
                                                                          dtype=np.uint64))[0]
    assert plain == (SymbolizedFrame("do_work", None, None, False, "[kernel.kallsyms]",
                                     syms["do_work"] + shift + 1, 1),)


def test_deleted_binary_symbolized_from_its_debug_file_by_recorded_build_id(programs, tmp_path):
    """The binary is gone after the capture; its build-id (from the MMAP2 record) still finds the
    debug file, whose program headers map the recorded file offsets."""
    build_id = read_build_id(str(programs.inline))
    offset = vaddr_to_file_offset(str(programs.inline), _nm(programs.inline)["checksum"])
    sym = Symbolizer(debug_dirs=[str(programs.debug_dir)], cache_dir=str(tmp_path), debuginfod=False)
    chain = sym.symbolize_offsets("/gone/inline", np.array([offset], dtype=np.uint64), build_id=build_id)[0]
    assert chain[-1].function == "checksum" and chain[-1].file.endswith("inline.c")
    assert chain[-1].module == "/gone/inline" and chain[-1].module_offset == offset


def test_the_dwarf_index_built_after_the_symbol_table_gives_the_same_frames(programs, tmp_path):
    """hwprof agent builds the two one after the other (a lower peak); the frames are the same as built side by side."""
    off = np.array([vaddr_to_file_offset(str(programs.inline), _nm(programs.inline)["checksum"])], dtype=np.uint64)
    beside = Symbolizer(cache_dir=str(tmp_path / "beside"))
    after = Symbolizer(cache_dir=str(tmp_path / "after"), overlap_index_builds=False)
    assert after.symbolize_offsets(str(programs.inline), off) == beside.symbolize_offsets(str(programs.inline), off)
    assert after.index_builds == beside.index_builds == 1
