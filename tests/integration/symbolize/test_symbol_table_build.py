"""The numpy build of a binary's symbol table gives exactly the table the per-symbol rules give (symtab_reference,
the plain-Python build it replaced), on real binaries of this machine that between them have every case: C++
aliases (node), stripped binaries whose unnamed functions only .eh_frame knows (cc1, chromium), libc's ifunc PLT
slots and symbol versions, source files from STT_FILE symbols (debug files), and binaries built here. readelf is the
oracle for the names themselves.
"""

from __future__ import annotations

import glob
import subprocess
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from hwprof.symbolize.elf import ElfImage, SymbolTable
from symbolize_helpers import need
from symtab_reference import reference_table

NUMPY_CORE = sorted(glob.glob(str(Path(np.__file__).parent / "_core" / "_multiarray_umath*.so")))
LIBC_DEBUG = sorted(glob.glob("/usr/lib/debug/.build-id/*/*.debug"))
BINARIES = [
    "/usr/bin/bash",
    "/usr/bin/node",
    "/usr/lib/gcc/x86_64-linux-gnu/12/cc1",
    "/usr/lib/chromium/chromium",
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
    "/usr/lib/x86_64-linux-gnu/libm.so.6",
    "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
    str(Path(sysconfig.get_config_var("LIBDIR") or "/usr/lib") / "libpython3.11.so.1.0"),
    *NUMPY_CORE[:1],
]


def _columns(table: SymbolTable) -> dict[str, object]:
    return {"starts": list(table.starts), "ends": list(table.ends), "reach": list(table.reach),
            "names": list(table.names), "files": list(table.files), "aliases": table.aliases,
            "unnamed": table.unnamed}


def _assert_same_table(path: str) -> SymbolTable:
    built = SymbolTable.from_image(ElfImage(path))
    reference = reference_table(ElfImage(path))
    got, want = _columns(built), _columns(reference)
    for column in want:
        assert got[column] == want[column], f"{path}: {column} differs from the per-symbol rules"
    return built


@pytest.mark.parametrize("path", BINARIES, ids=lambda p: Path(p).name)
def test_the_built_table_equals_the_per_symbol_rules(path: str) -> None:
    if not Path(path).exists():
        pytest.skip(f"{path} is not installed here")
    _assert_same_table(path)


def test_debug_files_and_binaries_built_here_give_the_same_table(programs) -> None:
    paths = [str(p) for p in (programs.inline, programs.templates, programs.stripped_buildid,
                              programs.stripped_debuglink, programs.debuglink_target)]
    paths += LIBC_DEBUG[:40]  # libc6-dbg's files: .symtab with STT_FILE symbols, no code
    tables = [_assert_same_table(p) for p in paths]
    assert any(t.files and any(t.files) for t in tables), "no table with source files: the file rule went untested"


def test_the_binaries_cover_every_rule() -> None:
    """The comparison above means something only if these binaries exercise each rule."""
    tables = {Path(p).name: SymbolTable.from_image(ElfImage(p)) for p in BINARIES if Path(p).exists()}
    if "node" not in tables or "libc.so.6" not in tables or "cc1" not in tables:
        pytest.skip("needs node, libc and cc1 (make test installs them)")
    node, libc, cc1 = tables["node"], tables["libc.so.6"], tables["cc1"]
    assert any("C1E" in n or "D1E" in n for group in node.aliases.values() for n in group)  # C1/C2 aliases
    assert {"malloc", "__libc_malloc"} <= set(libc.aliases[int(libc.starts[list(libc.names).index("malloc")])])
    assert any(n.endswith("@plt") and not n.startswith("*ABS*") for n in libc.names)  # ifunc slots named
    assert len(cc1.unnamed) > 1000 and all(cc1.names[i].startswith("sub_") for i in range(len(cc1.starts))
                                           if cc1.starts[i] in cc1.unnamed)


def test_every_function_readelf_lists_is_a_row_or_an_alias() -> None:
    node = "/usr/bin/node"
    if not Path(node).exists():
        pytest.skip("node is not installed here")
    out = subprocess.run([need("readelf"), "-sW", node], capture_output=True, text=True, check=True).stdout
    table = SymbolTable.from_image(ElfImage(node))
    row_of = {int(start): i for i, start in enumerate(table.starts)}
    names = table.names
    checked = 0
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 8 or fields[3] != "FUNC" or fields[6] == "UND" or int(fields[1], 16) == 0:
            continue
        addr, name = int(fields[1], 16), fields[7].partition("@")[0]
        at = row_of.get(addr)
        assert at is not None, f"readelf's {name} at {addr:#x} is no row"
        assert name == names[at] or name in table.aliases.get(addr, ()), f"{name} at {addr:#x}"
        checked += 1
    assert checked > 50_000
