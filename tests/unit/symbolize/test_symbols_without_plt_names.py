"""A binary whose relocations name no PLT or GOT slot (a PIE without libc: only R_X86_64_RELATIVE) still gets its
symbol table; its first sight used to fail the whole window it appeared in."""

from __future__ import annotations

import logging
import shutil
import subprocess

import pytest
from hwprof.symbolize.elf import open_image
from hwprof.symbolize.symbol_build import build_symbol_table

SOURCE = """
static int one(void) { return 1; }
static int two(void) { return 2; }
int (*table[])(void) = { one, two };
void _start(void) {
    volatile int x = table[0]() + table[1]();
    (void)x;
    __asm__ volatile("mov $60, %eax; xor %edi, %edi; syscall");
}
"""


def test_only_relative_relocations(tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the test binary")
    (tmp_path / "nolibc.c").write_text(SOURCE)
    binary = tmp_path / "nolibc"
    subprocess.run(["gcc", "-O1", "-nostdlib", "-fPIE", "-pie", "-o", str(binary), str(tmp_path / "nolibc.c")],
                   check=True)
    relocations = subprocess.run(["readelf", "-rW", str(binary)], capture_output=True, text=True).stdout
    assert "R_X86_64_RELATIVE" in relocations and "JUMP_SLO" not in relocations
    table = build_symbol_table(open_image(str(binary)))
    assert {"_start", "one", "two"} <= set(table.names)


def test_a_symbol_table_that_cannot_be_built_costs_its_names_only(tmp_path, monkeypatch, caplog):
    """The symbolizer never raises for one bad binary: its frames keep their module and offset, with a warning."""
    import numpy as np
    from hwprof.symbolize import Symbolizer

    def broken(*args, **kwargs):
        raise IndexError("a bug in the table builder")

    monkeypatch.setattr("hwprof.symbolize.module.load_or_build_symbols", broken)
    # The report and agent commands quieten this logger for the rest of the process (earlier tests run them).
    caplog.set_level(logging.WARNING, logger="hwprof.symbolize")
    symbolizer = Symbolizer(cache_dir=str(tmp_path / "cache"), debuginfod=False)
    chains = symbolizer.symbolize_offsets("/usr/bin/bash", np.array([0x1000], dtype=np.uint64))
    assert len(chains) == 1 and chains[0][-1].function is None
    assert "could not be read" in caplog.text
