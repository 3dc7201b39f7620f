"""hwprof addr2line against binutils addr2line and llvm-symbolizer on real binaries.

Every difference is printed (run pytest with -s or look at the failure message); the bar is 99%
agreement per binary. addr2line's '(discriminator N)' annotations are dropped before comparing:
hwprof's index does not keep discriminators.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest
from symbolize_helpers import (
    compare,
    function_names,
    hwprof_addr2line,
    oracle_addr2line,
    oracle_llvm,
    text_instruction_addresses,
)

BAR = 0.99


def _report(label: str, agreement) -> None:
    total = max(agreement.total, 1)
    print(f"\n{label}: {agreement.strict}/{agreement.total} identical ({100 * agreement.strict / total:.2f}%), "
          f"{agreement.accepted}/{agreement.total} accepted ({100 * agreement.accepted / total:.2f}%)")
    for line in agreement.differences:
        print("  " + line)
    assert agreement.total > 0
    assert agreement.accepted >= BAR * agreement.total, (
        f"{label}: only {agreement.accepted}/{agreement.total} agree:\n" + "\n".join(agreement.differences[:40])
    )


def _check(binary: Path, oracle_binary: Path, flags: list[str], tmp_path: Path, label: str,
           extra: list[str] = (), addrs: list[int] | None = None) -> None:
    addrs = addrs or text_instruction_addresses(oracle_binary)
    ours = hwprof_addr2line(binary, addrs, flags, tmp_path / "cache", extra)
    binutils = oracle_addr2line(oracle_binary, addrs, flags)
    llvm = oracle_llvm(oracle_binary, addrs, flags)
    _report(f"{label} vs addr2line {' '.join(flags)}", compare(ours, binutils, llvm, label))
    # Function names alone, llvm-symbolizer first: where it knows no name ('??', e.g. code that only
    # the ELF symbol table describes) addr2line's name is the reference.
    _report(f"{label} function names vs llvm-symbolizer",
            compare(function_names(ours), function_names(llvm), function_names(binutils), label))


def test_inline_c_program(programs, tmp_path):
    _check(programs.inline, programs.inline, ["-f", "-i"], tmp_path, "inline.c -O2 -g")


def test_inline_chains_are_reported_innermost_first(programs, tmp_path):
    # checksum() inlines fold_block -> mix_twice -> mix: some address must show all four levels.
    ours = hwprof_addr2line(programs.inline, text_instruction_addresses(programs.inline), ["-f", "-i"],
                            tmp_path / "cache")
    chains = [lines[0::2] for lines in ours.values()]
    assert ["mix", "mix_twice", "fold_block", "checksum"] in chains


@pytest.mark.parametrize("flags", [["-f", "-i", "-C"], ["-f", "-i"]], ids=["demangled", "mangled"])
def test_cxx_templates(programs, tmp_path, flags):
    _check(programs.templates, programs.templates, flags, tmp_path, "templates.cpp -O2 -g")


def test_stripped_binary_debug_file_by_build_id(programs, tmp_path):
    _check(programs.stripped_buildid, programs.inline, ["-f", "-i"], tmp_path, "stripped+build-id",
           extra=["--debug-dir", str(programs.debug_dir)])


def test_stripped_binary_debug_file_by_debuglink(programs, tmp_path):
    _check(programs.stripped_debuglink, programs.debuglink_target, ["-f", "-i", "-C"], tmp_path,
           "stripped+debuglink")


def _libpython() -> Path:
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    candidate = Path(libdir) / "libpython3.11.so.1.0"
    if not candidate.exists():
        pytest.skip(f"no libpython3.11.so.1.0 in {libdir}")
    import subprocess

    sections = subprocess.run(["readelf", "-S", "-W", str(candidate)], capture_output=True, text=True).stdout
    if ".debug_info" not in sections:
        pytest.skip(f"{candidate} has no DWARF")
    return candidate


def test_large_library_with_dwarf(tmp_path):
    lib = _libpython()
    addrs = text_instruction_addresses(lib, limit=2000)
    _check(lib, lib, ["-f", "-i"], tmp_path, "libpython3.11", addrs=addrs)


@pytest.mark.parametrize(
    ("variant", "build"),
    [
        ("dwarf4", ["gcc", "-O2", "-gdwarf-4"]),
        ("non-pie", ["gcc", "-O2", "-g", "-no-pie"]),
        ("zlib-compressed", ["objcopy", "--compress-debug-sections=zlib"]),
        ("zdebug-gnu", ["objcopy", "--compress-debug-sections=zlib-gnu"]),
    ],
)
def test_dwarf_variants(programs, tmp_path, variant, build):
    """DWARF 4, a non-PIE executable (loaded at 0x400000) and compressed debug sections
    (SHF_COMPRESSED and the old .zdebug_*) read the same;
    the oracle reads the plain -O2 -g build (addr2line itself fails on .zdebug + DWARF 5)."""
    import subprocess

    from symbolize_helpers import PROGS

    binary = tmp_path / variant
    if build[0] == "gcc":
        subprocess.run([*build, "-o", str(binary), str(PROGS / "inline.c")], check=True)
        oracle = binary
    else:
        subprocess.run([*build, str(programs.inline), str(binary)], check=True)
        oracle = programs.inline
    _check(binary, oracle, ["-f", "-i"], tmp_path, f"inline.c {variant}")


def test_symfs_root(programs, tmp_path):
    """--symfs: the binary and its /usr/lib/debug live under a container-style root."""
    import shutil

    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    shutil.copy(programs.stripped_buildid, root / "usr/bin/app")
    debug = next(programs.debug_dir.rglob("*.debug"))
    target = root / "usr/lib/debug" / debug.relative_to(programs.debug_dir)
    target.parent.mkdir(parents=True)
    shutil.copy(debug, target)
    addrs = text_instruction_addresses(programs.inline)
    ours = hwprof_addr2line(Path("/usr/bin/app"), addrs, ["-f", "-i"], tmp_path / "cache", ["--symfs", str(root)])
    theirs = oracle_addr2line(programs.inline, addrs, ["-f", "-i"])
    same = sum(ours.get(a) == v for a, v in theirs.items())
    assert same >= BAR * len(theirs), [(hex(a), ours.get(a), v) for a, v in theirs.items() if ours.get(a) != v][:20]
