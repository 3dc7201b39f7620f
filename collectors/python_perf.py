"""`hwprof record --python`: CPython's perf support turned on for the profiled command.

CPython 3.12+ can route every Python call through a small trampoline copied per Python function and named
`py::func:file.py` (`-X perf`: a /tmp/perf-PID.map; 3.13+ `-X perf_jit`: a jitdump with the code bytes). With
--call-graph dwarf, hwprof unwinds through those trampolines (hwprof.symbolize.jit_unwind), so Python functions
appear in order among the native and kernel frames. The switch is passed by environment (PYTHONPERFSUPPORT /
PYTHON_PERF_JIT_SUPPORT, the documented equivalents of the -X options), so it reaches Python processes the command
starts too, however they are started.

Python's native stack is deep (about 650 bytes per nested Python call on 3.12/3.13: the evaluator's frame, the
trampoline, the vectorcall glue), so the stack copy grows to hwprof.pyperf.PYTHON_STACK_DUMP unless the user chose a
size.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field

from hwprof.pyperf import BYTES_PER_PY_FRAME as _BYTES_PER_PY_FRAME

_VERSION = re.compile(r"^(\d+)\.(\d+)$")


@dataclass
class PythonPerf:
    env: dict[str, str] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    version: tuple[int, int] | None = None


def interpreter_version(argv0: str, timeout: float = 10.0) -> tuple[int, int] | None:
    """(major, minor) of the Python interpreter `argv0`, or None when it is not one (or does not answer)."""
    try:
        out = subprocess.run([argv0, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION.match(out.stdout.strip()) if out.returncode == 0 else None
    return (int(match.group(1)), int(match.group(2))) if match else None


def python_perf_setup(command: list[str], stack_dump: int) -> PythonPerf:
    """The environment that turns on perf support for `command`'s Python, and what to tell the user."""
    out = PythonPerf()
    if not command:
        out.notices.append("--python needs a command (a running process must turn perf support on itself: "
                           "python -X perf, or sys.activate_stack_trampoline('perf'))")
        return out
    name = os.path.basename(command[0])
    version = interpreter_version(command[0]) if name.startswith("python") or name.startswith("pypy") else None
    out.version = version
    depth = stack_dump // _BYTES_PER_PY_FRAME
    copy = f"copying {stack_dump} bytes of stack per sample (about {depth} nested Python calls)"
    if version is None:
        # Not an interpreter we can ask (a script, a launcher): turn on the support every 3.12+ Python honours.
        out.env["PYTHONPERFSUPPORT"] = "1"
        out.notices.append(f"--python: {command[0]} is not a Python interpreter hwprof can ask for its version; "
                           f"set PYTHONPERFSUPPORT=1 for any Python 3.12+ it starts; {copy}")
    elif version >= (3, 13):
        out.env["PYTHON_PERF_JIT_SUPPORT"] = "1"
        out.notices.append(f"--python: Python {version[0]}.{version[1]} with -X perf_jit (jitdump, read directly); "
                           f"{copy}")
    elif version >= (3, 12):
        out.env["PYTHONPERFSUPPORT"] = "1"
        out.notices.append(f"--python: Python {version[0]}.{version[1]} with -X perf (perf map); {copy}")
    else:
        out.notices.append(f"--python: Python {version[0]}.{version[1]} has no perf support (it came in 3.12), so "
                           "Python functions will not show: the native stack (the interpreter's C functions) is "
                           "still unwound completely")
    return out

