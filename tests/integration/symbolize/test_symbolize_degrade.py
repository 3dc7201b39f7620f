"""Bad input never crashes: corrupt, truncated, missing and mismatched files degrade to module+offset
with exactly one warning per module; CLI misuse is one clear line and a non-zero exit."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from hwprof.symbolize import Symbolizer
from hwprof.symbolize.elf import vaddr_to_file_offset
from symbolize_helpers import need

OFFSETS = np.array([0x1000, 0x1100, 0x1200, 0x1000], dtype=np.uint64)


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "hwprof.symbolize" and r.levelno == logging.WARNING]


def _assert_degraded(chains, module: str) -> None:
    assert len(chains) == len(OFFSETS)
    for chain, off in zip(chains, OFFSETS.tolist(), strict=True):
        assert len(chain) == 1
        frame = chain[0]
        assert frame.function is None and frame.module == module and frame.module_offset == off
        assert frame.describe() == f"{module}+{off:#x}"


@pytest.mark.parametrize(
    "content",
    [b"", b"\x7fELF", b"\x7fELF" + b"\x02\x01\x01" + b"\xff" * 200, b"#!/bin/sh\necho not elf\n" * 50],
    ids=["empty", "magic-only", "garbage-header", "shell-script"],
)
def test_corrupt_files_degrade(tmp_path, caplog, content):
    bad = tmp_path / "bad.so"
    bad.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="hwprof.symbolize"):
        sym = Symbolizer(cache_dir=str(tmp_path / "c"), debuginfod=False)
        _assert_degraded(sym.symbolize_offsets(str(bad), OFFSETS), str(bad))
        _assert_degraded(sym.symbolize_offsets(str(bad), OFFSETS), str(bad))
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and str(bad) in warnings[0]


def test_truncated_elf_degrades(programs, tmp_path, caplog):
    data = programs.inline.read_bytes()
    for cut in (64, 700, len(data) // 2):
        truncated = tmp_path / f"trunc{cut}"
        truncated.write_bytes(data[:cut])
        with caplog.at_level(logging.WARNING, logger="hwprof.symbolize"):
            chains = Symbolizer(cache_dir=str(tmp_path / "c"), debuginfod=False).symbolize_offsets(
                str(truncated), OFFSETS)
        assert len(chains) == len(OFFSETS)  # whatever survives, nothing raised
    assert _warnings(caplog)


def test_corrupt_dwarf_keeps_elf_names(programs, tmp_path, caplog):
    """Zero out .debug_info and .debug_line: symbol names must survive, lines may not."""
    need("readelf")
    broken = tmp_path / "broken"
    shutil.copy(programs.inline, broken)
    out = subprocess.run(["readelf", "-SW", str(broken)], capture_output=True, text=True, check=True).stdout
    blob = bytearray(broken.read_bytes())
    for line in out.splitlines():
        parts = line.replace("[ ", "[").split()
        if len(parts) > 5 and parts[1] in (".debug_info", ".debug_line", ".debug_abbrev"):
            offset, size = int(parts[4], 16), int(parts[5], 16)
            blob[offset : offset + size] = bytes([0xFF]) * size
    broken.write_bytes(bytes(blob))
    main_off = vaddr_to_file_offset(str(broken), int(subprocess.run(
        ["nm", str(broken)], capture_output=True, text=True).stdout.split(" T main")[0].split()[-1], 16))
    with caplog.at_level(logging.WARNING, logger="hwprof.symbolize"):
        chains = Symbolizer(cache_dir=str(tmp_path / "c"), debuginfod=False).symbolize_offsets(
            str(broken), np.array([main_off], dtype=np.uint64))
    assert chains[0][-1].function == "main"


def test_missing_file_degrades_with_one_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="hwprof.symbolize"):
        sym = Symbolizer(cache_dir=str(tmp_path), debuginfod=False)
        _assert_degraded(sym.symbolize_offsets("/no/such/lib.so", OFFSETS), "/no/such/lib.so")
        sym.symbolize_offsets("/no/such/lib.so", OFFSETS)
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and "/no/such/lib.so" in warnings[0]


def test_mismatched_debug_file_is_rejected(programs, tmp_path, caplog):
    """A debug file at the right build-id path but from another build must not give wrong lines."""
    debug_dir = tmp_path / "debug"
    real = next(programs.debug_dir.rglob("*.debug"))
    impostor = debug_dir / real.relative_to(programs.debug_dir)
    impostor.parent.mkdir(parents=True)
    subprocess.run(["objcopy", "--only-keep-debug", str(programs.templates), str(impostor)], check=True)
    with caplog.at_level(logging.WARNING, logger="hwprof.symbolize"):
        sym = Symbolizer(debug_dirs=[str(debug_dir)], cache_dir=str(tmp_path / "c"), debuginfod=False)
        offsets = np.array([0x1100, 0x1200], dtype=np.uint64)
        chains = sym.symbolize_offsets(str(programs.stripped_buildid), offsets)
    # Nothing from the impostor: at most the stripped binary's own sub_<start> for a function its .eh_frame describes.
    assert all(c[0].file is None and c[0].line is None for c in chains)
    assert all(c[0].function is None or re.fullmatch(r"sub_[0-9a-f]+", c[0].function) for c in chains)
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and "rejecting debug file" in warnings[0] and "does not match" in warnings[0]


def test_debuglink_with_wrong_crc_is_rejected(programs, tmp_path, caplog):
    folder = tmp_path / "dl"
    shutil.copytree(programs.stripped_debuglink.parent, folder)
    with open(folder / "templates.debug", "ab") as debug:
        debug.write(b"\0")  # same contents to an ELF reader, different CRC
    with caplog.at_level(logging.WARNING, logger="hwprof.symbolize"):
        chains = Symbolizer(cache_dir=str(tmp_path / "c"), debuginfod=False).symbolize_offsets(
            str(folder / "templates"), np.array([0x1100], dtype=np.uint64))
    assert chains[0][-1].file is None  # at most an exported name, never DWARF from the wrong file
    assert "CRC" in " ".join(_warnings(caplog))


def test_recorded_build_id_mismatch_is_not_trusted(programs, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="hwprof.symbolize"):
        sym = Symbolizer(cache_dir=str(tmp_path), debuginfod=False)
        chains = sym.symbolize_offsets(str(programs.inline), OFFSETS, build_id=b"\x01" * 20)
    _assert_degraded(chains, str(programs.inline))
    assert "changed since capture" in " ".join(_warnings(caplog))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-e", "/no/such/file", "0x10"], "'/no/such/file': No such file"),
        (["-e", "/", "0x10"], "is a directory"),
        (["-e", sys.executable, "0xzz"], "not a hexadecimal address: '0xzz'"),
        (["--pid", "999999999", "0x10"], "no process with pid 999999999"),
        (["--pid", "1", "-e", "/bin/true", "0x10"], "either -e FILE or --pid PID"),
    ],
)
def test_cli_errors_are_one_line(argv, message, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "hwprof", "addr2line", "--cache-dir", str(tmp_path), *argv],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("hwprof addr2line: error: ") and message in proc.stderr, proc.stderr


def test_cli_refuses_a_file_that_is_not_elf_like_addr2line(tmp_path):
    """binutils: 'addr2line: notelf.txt: file format not recognized' and exit 1; hwprof said '??:0' and exit 0."""
    notelf = tmp_path / "notelf.txt"
    notelf.write_text("just text\n")
    proc = subprocess.run([sys.executable, "-m", "hwprof", "addr2line", "--cache-dir", str(tmp_path), "-e",
                           str(notelf), "0x10"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == f"hwprof addr2line: error: '{notelf}': file format not recognized (not an ELF file)\n"
    if shutil.which("addr2line"):
        oracle = subprocess.run(["addr2line", "-e", str(notelf), "0x10"], capture_output=True, text=True)
        assert oracle.returncode == 1 and "file format not recognized" in oracle.stderr


def test_cli_unknown_addresses_print_like_addr2line(programs, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "hwprof", "addr2line", "--cache-dir", str(tmp_path), "-a", "-f", "-e",
         str(programs.inline), "0x0", "0xffffffffffff"], capture_output=True, text=True, timeout=60)
    oracle = subprocess.run(["addr2line", "-a", "-f", "-e", str(programs.inline), "0x0", "0xffffffffffff"],
                            capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == oracle.stdout


def test_cli_pretty_and_basenames_match_addr2line(programs, tmp_path):
    need("addr2line")
    from symbolize_helpers import text_instruction_addresses

    addrs = [hex(a) for a in text_instruction_addresses(programs.inline)]
    for flags in (["-p", "-a", "-f", "-i"], ["-s", "-f"], ["-p", "-s", "-i"], []):
        ours = subprocess.run([sys.executable, "-m", "hwprof", "addr2line", "--cache-dir", str(tmp_path), *flags,
                               "-e", str(programs.inline), *addrs], capture_output=True, text=True, timeout=60)
        theirs = subprocess.run(["addr2line", *flags, "-e", str(programs.inline), *addrs], capture_output=True,
                                text=True)
        strip = lambda text: [ln.split(" (discriminator")[0] for ln in text.splitlines()]  # noqa: E731
        assert strip(ours.stdout) == strip(theirs.stdout), flags
