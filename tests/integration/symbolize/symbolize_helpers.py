"""Fixtures for the symbolizer's oracle tests: real binaries built here, addr2line/llvm-symbolizer runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PROGS = Path(__file__).resolve().parent / "progs"
_DISCRIMINATOR = re.compile(r" \(discriminator \d+\)")


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (make test installs it)")
    return path


@dataclass(frozen=True)
class Programs:
    inline: Path  # -O2 -g C with always-inline chains
    templates: Path  # -O2 -g C++
    stripped_buildid: Path  # `inline` stripped; debug file under debug_dir/.build-id/
    debug_dir: Path
    stripped_debuglink: Path  # `templates` without build-id, stripped, .gnu_debuglink next to it
    debuglink_target: Path


def _run(argv: list[str], **kw) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw).stdout


@pytest.fixture(scope="session")
def programs(tmp_path_factory) -> Programs:
    need("gcc")
    need("g++")
    need("objcopy")
    out = tmp_path_factory.mktemp("symprogs")
    inline = out / "inline"
    templates = out / "templates"
    _run(["gcc", "-O2", "-g", "-o", str(inline), str(PROGS / "inline.c")])
    _run(["g++", "-O2", "-g", "-o", str(templates), str(PROGS / "templates.cpp")])

    # Stripped binary whose debug file is found by build-id under a debug directory.
    stripped = out / "inline.stripped"
    build_id = re.search(r"Build ID: ([0-9a-f]+)", _run(["readelf", "-n", str(inline)])).group(1)
    debug_dir = out / "debug"
    target = debug_dir / ".build-id" / build_id[:2] / f"{build_id[2:]}.debug"
    target.parent.mkdir(parents=True)
    _run(["objcopy", "--only-keep-debug", str(inline), str(target)])
    _run(["objcopy", "--strip-all", str(inline), str(stripped)])

    # Stripped binary without a build-id: only .gnu_debuglink (with its CRC) leads to the debug file.
    nolink_src = out / "templates.nobuildid"
    _run(["g++", "-O2", "-g", "-Wl,--build-id=none", "-o", str(nolink_src), str(PROGS / "templates.cpp")])
    linkdir = out / "debuglink"
    linkdir.mkdir()
    link_debug = linkdir / "templates.debug"
    link_bin = linkdir / "templates"
    _run(["objcopy", "--only-keep-debug", str(nolink_src), str(link_debug)])
    _run(["objcopy", "--strip-all", f"--add-gnu-debuglink={link_debug}", str(nolink_src), str(link_bin)])
    return Programs(inline, templates, stripped, debug_dir, link_bin, nolink_src)


def text_instruction_addresses(binary: Path, limit: int | None = None, seed: int = 7) -> list[int]:
    """Start addresses of instructions in .text: what a sampling profiler would report."""
    need("objdump")
    out = _run(["objdump", "-d", "--no-show-raw-insn", "-j", ".text", str(binary)])
    # Alignment padding (nop, xchg %ax,%ax, int3) between functions is never sampled: leave it out.
    addrs = [
        int(m.group(1), 16)
        for m in re.finditer(r"^\s+([0-9a-f]+):\s+(.*)$", out, re.M)
        if not re.match(r"(cs )?(data16 )*(nop|xchg\s+%ax,%ax|int3)", m.group(2).strip())
    ]
    if limit is not None and len(addrs) > limit:
        import random

        addrs = sorted(random.Random(seed).sample(addrs, limit))
    return addrs


def parse_addr2line_blocks(text: str) -> dict[int, list[str]]:
    """addr2line -a output -> {address: lines}, discriminator annotations dropped."""
    blocks: dict[int, list[str]] = {}
    current = None
    for line in text.splitlines():
        if re.fullmatch(r"0x[0-9a-f]{16}", line):
            current = int(line, 16)
            blocks[current] = []
        elif current is not None:
            blocks[current].append(_DISCRIMINATOR.sub("", line))
    return blocks


def hwprof_addr2line(binary: Path, addrs: list[int], flags: list[str], cache_dir: Path,
                     extra: list[str] = ()) -> dict[int, list[str]]:
    proc = subprocess.run(
        [sys.executable, "-m", "hwprof", "addr2line", "--cache-dir", str(cache_dir), "-a", *flags, *extra,
         "-e", str(binary)],
        input="\n".join(hex(a) for a in addrs) + "\n", capture_output=True, text=True, timeout=300,
        env={**os.environ, "DEBUGINFOD_URLS": ""},
    )
    assert proc.returncode == 0, proc.stderr
    return parse_addr2line_blocks(proc.stdout)


def oracle_addr2line(binary: Path, addrs: list[int], flags: list[str]) -> dict[int, list[str]]:
    need("addr2line")
    proc = subprocess.run(
        ["addr2line", "-a", *flags, "-e", str(binary)], input="\n".join(hex(a) for a in addrs) + "\n",
        capture_output=True, text=True, timeout=300, check=True,
    )
    return parse_addr2line_blocks(proc.stdout)


def oracle_llvm(binary: Path, addrs: list[int], flags: list[str]) -> dict[int, list[str]]:
    """llvm-symbolizer in GNU output style: the same block format as addr2line."""
    tool = shutil.which("llvm-symbolizer") or next(
        (p for p in (f"/usr/bin/llvm-symbolizer-{v}" for v in (19, 18, 17, 16, 15, 14)) if os.path.exists(p)), None
    )
    if tool is None:
        pytest.skip("llvm-symbolizer is not installed (make test installs llvm)")
    # Names come out mangled and go through binutils' c++filt, so both oracles share one demangler
    # style (LLVM's own prints lambdas and clone suffixes differently).
    args = [tool, f"--obj={binary}", "--output-style=GNU", "--print-address", "-f", "--no-demangle"]
    if "-i" in flags:
        args.append("-i")
    proc = subprocess.run(args, input="\n".join(hex(a) for a in addrs) + "\n",
                          capture_output=True, text=True, timeout=300, check=True)
    blocks: dict[int, list[str]] = {}
    current = None
    for line in proc.stdout.splitlines():
        if re.fullmatch(r"0x[0-9a-f]+", line):
            current = int(line, 16)
            blocks[current] = []
        elif current is not None:
            blocks[current].append(_DISCRIMINATOR.sub("", line))
    if "-C" in flags:
        names = [lines[i] for lines in blocks.values() for i in range(0, len(lines), 2)]
        demangled = subprocess.run([need("c++filt")], input="\n".join(names) + "\n", capture_output=True,
                                   text=True, check=True).stdout.splitlines()
        it = iter(demangled)
        for lines in blocks.values():
            for i in range(0, len(lines), 2):
                lines[i] = next(it)
    return blocks


@dataclass
class Agreement:
    total: int = 0
    strict: int = 0  # identical to addr2line
    accepted: int = 0  # identical to addr2line, or to llvm-symbolizer where the two oracles disagree
    differences: list[str] = None


def compare(ours: dict[int, list[str]], binutils: dict[int, list[str]], llvm: dict[int, list[str]],
            label: str) -> Agreement:
    """Per address: agree with addr2line; where addr2line and llvm-symbolizer disagree with each
    other one of them is wrong, and agreeing with llvm-symbolizer is accepted too."""
    result = Agreement(differences=[])
    for addr, expected in binutils.items():
        result.total += 1
        got = ours.get(addr)
        other = llvm.get(addr)
        if got == expected:
            result.strict += 1
            result.accepted += 1
        elif other is not None and other != expected and got == other:
            result.accepted += 1
            result.differences.append(f"{label} {addr:#x}: hwprof=llvm-symbolizer={got} addr2line={expected}")
        else:
            result.differences.append(f"{label} {addr:#x}: hwprof={got} addr2line={expected} llvm={other}")
    return result


def function_names(blocks: dict[int, list[str]]) -> dict[int, list[str]]:
    return {addr: lines[0::2] for addr, lines in blocks.items()}
