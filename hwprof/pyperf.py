"""CPython's perf support seen from hwprof's core: the stack-copy size Python needs, and turning the support on in
the running interpreter (the Python API, `hwprof.python_perf()`). Core: no numpy, no collectors, so it also works
from an interpreter where only the hwprof package directory is importable."""

from __future__ import annotations

import os

# Python's native stack is deep: about 650 bytes per nested Python call on 3.12/3.13 (the evaluator's frame, the
# trampoline, the vectorcall glue); 32 KiB holds about 50 nested calls.
PYTHON_STACK_DUMP = 32768
BYTES_PER_PY_FRAME = 650


def activate_in_this_process(enable: bool = True) -> str:
    """sys.activate_stack_trampoline('perf') (3.12+): every Python call of this process from now on runs through a
    trampoline named in /tmp/perf-PID.map, which hwprof's dwarf unwinding walks through."""
    import sys

    from hwprof.errors import HwprofError

    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if not enable:
        if hasattr(sys, "deactivate_stack_trampoline"):
            sys.deactivate_stack_trampoline()
        return "CPython perf support is off"
    activate = getattr(sys, "activate_stack_trampoline", None)
    if activate is None:
        raise HwprofError(f"Python {version} has no perf support (it came in CPython 3.12, on Linux): profiles of "
                          "this process show the interpreter's C functions, no Python functions")
    try:
        activate("perf")
    except (ValueError, OSError) as exc:
        raise HwprofError(f"cannot turn on CPython's perf support: {exc}") from None
    return (f"CPython {version} perf support is on for pid {os.getpid()}: record it with hwprof record --call-graph "
            f"dwarf,{PYTHON_STACK_DUMP} -p {os.getpid()}")
