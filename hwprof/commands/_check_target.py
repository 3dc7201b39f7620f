"""`hwprof check TARGET`: can stacks of this binary or process be unwound and symbolized with lines?

Frame pointers are judged from code, not from flags: the share of functions that set up %rbp as a frame
pointer (`mov %rsp,%rbp`) near their start, which is what -fno-omit-frame-pointer emits and what frame-pointer
unwinding (perf record -g, hwprof record -g) relies on. Measured on gcc 12 -O2: the textbook prologue
`[endbr64] push %rbp; mov %rsp,%rbp` as the first bytes matches only a fifth of the functions of a
-fno-omit-frame-pointer build, because the scheduler moves instructions between the push and the mov and
shrink-wrapping puts an early-exit test before them. So the check looks for the mov in the function's first
64 bytes; code built with -fomit-frame-pointer never copies %rsp into %rbp there.
"""

from __future__ import annotations

import mmap
import os
import shutil

from hwprof.errors import HwprofError
from hwprof.preflight import INFO, NO, OK, WARN, Check

# `mov %rsp,%rbp` in its two x86-64 encodings (89 /r and 8b /r)
_FP_SETUP = (bytes.fromhex("4889e5"), bytes.fromhex("488bec"))
PROLOGUE_WINDOW = 64
_EM_X86_64 = 62
# Start-up and PLT code is hand-written or from crt*.o: never built with the program's flags.
_IGNORED = {"_start", "_init", "_fini", "deregister_tm_clones", "register_tm_clones", "__do_global_dtors_aux",
            "frame_dummy", "__libc_csu_init", "__libc_csu_fini", "_dl_relocate_static_pie"}
FP_YES, FP_PARTLY = 0.6, 0.2
MAX_FUNCTIONS = 50_000


def resolve_target(target: str) -> tuple[str, int | None]:
    """(path of the ELF file to inspect, pid or None). Bad input raises a one-line HwprofError."""
    if target.isdigit():
        pid = int(target)
        if not os.path.exists(f"/proc/{pid}"):
            raise HwprofError(f"no such process: {pid}")
        exe = f"/proc/{pid}/exe"
        try:
            os.stat(exe)
        except PermissionError:
            raise HwprofError(f"cannot inspect process {pid}: it belongs to another user (run as root)") from None
        except OSError as exc:
            raise HwprofError(f"cannot inspect process {pid}: {exc.strerror} (a kernel thread has no binary)") from None
        return exe, pid
    path = target if os.path.exists(target) else shutil.which(target)
    if path is None:
        raise HwprofError(f"no such file or command: {target}")
    if os.path.isdir(path):
        raise HwprofError(f"{path} is a directory, not a binary")
    return path, None


def frame_pointer_share(path: str) -> tuple[int, int]:
    """(functions with a frame-pointer prologue, functions inspected)."""
    import numpy as np

    from hwprof.symbolize.elf import open_image

    image = open_image(path)
    if image.machine != _EM_X86_64:
        return 0, 0
    table = image.symbols
    keep = [i for i, name in enumerate(table.names)
            if "@plt" not in name and name not in _IGNORED and int(table.ends[i] - table.starts[i]) >= 4]
    keep = keep[:MAX_FUNCTIONS]
    if keep:
        index = np.array(keep, dtype=np.int64)
        # The symbol table keeps plain arrays (its CLI path avoids numpy): view them as numpy here.
        starts = np.asarray(table.starts, dtype=np.uint64)[index]
        sizes = np.minimum(np.asarray(table.ends, dtype=np.uint64)[index] - starts, PROLOGUE_WINDOW)
    else:
        # Stripped of every function symbol: the unwind table still lists where each function starts.
        starts = np.array(sorted(image.function_bounds), dtype=np.uint64)
        if not len(starts):
            return 0, 0
        gaps = np.append(np.diff(starts), np.uint64(PROLOGUE_WINDOW))
        sizes = np.minimum(gaps, PROLOGUE_WINDOW)
    offsets, valid = image.vaddr_to_offset(starts)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        with_fp = total = 0
        for offset, size, ok in zip(offsets.tolist(), sizes.tolist(), valid.tolist(), strict=True):
            if not ok or offset + size > len(data):
                continue
            head = data[offset: offset + size]
            total += 1
            with_fp += any(p in head for p in _FP_SETUP)
    return with_fp, total


def check_frame_pointers(path: str, label: str) -> Check:
    from hwprof.symbolize.elf import ElfError

    try:
        with_fp, total = frame_pointer_share(path)
    except ElfError as exc:
        raise HwprofError(str(exc)) from None
    data = {"functions": total, "with_frame_pointer": with_fp, "share": with_fp / total if total else None}
    if total == 0:
        return Check("frame_pointers", f"Frame pointers ({label})", WARN, "unknown: no x86-64 function symbols to "
                     "inspect", "without symbols (stripped) or on another architecture the prologues cannot be "
                     "checked; use --call-graph dwarf to be safe", data)
    share = with_fp / total
    value = f"{share:.0%} of {total} functions set up %rbp"
    fix = ("rebuild with -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer, or record with --call-graph dwarf "
           "(copies the user stack; slower, bigger files)")
    if share >= FP_YES:
        return Check("frame_pointers", f"Frame pointers ({label})", OK, "yes: " + value, data=data)
    if share >= FP_PARTLY:
        return Check("frame_pointers", f"Frame pointers ({label})", WARN, "partly: " + value,
                     "frame-pointer stacks will skip or lose callers of the other functions: " + fix, data)
    return Check("frame_pointers", f"Frame pointers ({label})", NO, "no: " + value,
                 "frame-pointer call graphs will be broken (built with -fomit-frame-pointer, the -O default): "
                 + fix, data)


def check_debug_info(path: str, label: str) -> Check:
    from hwprof.symbolize.debugfile import DebugSearch, find_debug_file
    from hwprof.symbolize.elf import ElfError, open_image

    try:
        image = open_image(path)
    except ElfError as exc:
        raise HwprofError(str(exc)) from None
    build_id = image.build_id.hex() if image.build_id else None
    data = {"build_id": build_id, "symtab": image.has_symtab, "eh_frame": ".eh_frame" in image.sections}
    extras = f"build-id {build_id or 'none'}; .symtab {'yes' if image.has_symtab else 'no (stripped)'}; " \
             f".eh_frame {'yes' if data['eh_frame'] else 'no'}"
    title = f"Debug info ({label})"
    if image.has_dwarf:
        return Check("debug_info", title, OK, f"yes, in the file; {extras}", data={**data, "debug_file": path})
    warnings: list[str] = []
    found = find_debug_file(path, image, image.build_id, DebugSearch(debuginfod=False), warnings.append)
    if found:
        return Check("debug_info", title, OK, f"yes, separate: {found}; {extras}", data={**data, "debug_file": found})
    data["debug_file"] = None
    if os.environ.get("DEBUGINFOD_URLS") and build_id:
        return Check("debug_info", title, WARN, f"not on disk; DEBUGINFOD_URLS is set (not queried); {extras}",
                     "lines come from debuginfod at report time if the server has build-id " + build_id, data)
    fix = "no file:line or inline frames: build with -g, install the distribution's debug package " \
          "(Debian: the -dbgsym package from the debian-debug archive), or set DEBUGINFOD_URLS"
    if not build_id:
        fix += "; without a build-id debug files and debuginfod cannot be matched (link with --build-id)"
    return Check("debug_info", title, NO, f"no; {extras}", fix + ("; " + "; ".join(warnings) if warnings else ""),
                 data)


def check_process(pid: int) -> list[Check]:
    """What a live process adds: its mapped libraries' debug info and a JIT perf map."""
    checks = []
    from hwprof.system.procfs import mapped_files, read_maps

    try:
        libraries = mapped_files(read_maps(pid))
    except HwprofError as exc:
        checks.append(Check("mappings", "Mapped code", WARN, str(exc), "run as root or as the process's owner"))
        return checks
    from hwprof.symbolize.debugfile import DebugSearch, find_debug_file
    from hwprof.symbolize.elf import ElfError, open_image

    with_debug = []
    for path in libraries[1:]:
        try:
            image = open_image(path)
        except (ElfError, OSError):
            continue
        if find_debug_file(path, image, image.build_id, DebugSearch(debuginfod=False), lambda _: None):
            with_debug.append(path)
    others = libraries[1:]
    value = f"{len(others)} mapped libraries, {len(with_debug)} with debug info on disk"
    if others and len(with_debug) < len(others):
        missing = [os.path.basename(p) for p in others if p not in with_debug]
        checks.append(Check("libraries", "Libraries", WARN, value,
                            f"no line info for {', '.join(missing[:6])}{'...' if len(missing) > 6 else ''}: "
                            "install their -dbgsym packages or set DEBUGINFOD_URLS",
                            {"libraries": others, "with_debug_info": with_debug}))
    else:
        checks.append(Check("libraries", "Libraries", OK if others else INFO, value,
                            data={"libraries": others, "with_debug_info": with_debug}))
    perf_map = f"/tmp/perf-{pid}.map"
    if os.path.exists(perf_map):
        checks.append(Check("jit", "JIT symbols", OK, f"{perf_map} exists", data={"perf_map": perf_map}))
    else:
        checks.append(Check("jit", "JIT symbols", INFO, f"no {perf_map}",
                            "a JIT (Java, Node, Python 3.12 -X perf) only gets named frames if it writes a perf map"))
    return checks


def target_checks(target: str) -> list[Check]:
    path, pid = resolve_target(target)
    shown = os.path.realpath(path) if pid is not None else path
    label = os.path.basename(shown) + (f", pid {pid}" if pid is not None else "")
    checks = [Check("target", "Target", INFO, shown + (f" (process {pid})" if pid is not None else ""),
                    data={"path": shown, "pid": pid})]
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise HwprofError(f"cannot read {shown}: {exc.strerror}") from None
    if magic != b"\x7fELF":
        raise HwprofError(f"{shown}: not an ELF binary (scripts: check their interpreter instead)")
    checks.append(check_frame_pointers(path, label))
    checks.append(check_debug_info(path, label))
    if pid is not None:
        checks.extend(check_process(pid))
    return checks
