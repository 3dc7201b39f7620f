"""hwprof.python_perf(): CPython's perf support turned on inside a running interpreter, then that process profiled
from outside with `record -p` shows its Python functions."""

from __future__ import annotations

import subprocess
import sys
import time

from test_python import folded, interpreter

HWPROF_ROOT = str(__import__("pathlib").Path(__file__).resolve().parents[3])
CHILD = """
import sys, time
sys.path.insert(0, {root!r})
import hwprof
print(hwprof.python_perf(), flush=True)
def busy_python_function():
    end = time.time() + 6
    n = 0
    while time.time() < end:
        n += sum(i * i for i in range(200))
    return n
busy_python_function()
"""


def test_python_perf_turns_on_the_trampoline_in_a_running_interpreter(tmp_path):
    python = interpreter("3.12")
    child = subprocess.Popen([python, "-c", CHILD.format(root=HWPROF_ROOT)], stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert "perf support is on" in line, line
        time.sleep(0.3)
        data = tmp_path / "attach.data"
        subprocess.run([sys.executable, "-m", "hwprof", "record", "-q", "--call-graph", "dwarf,32768", "-F", "999",
                        "-p", str(child.pid), "-d", "2", "-o", str(data)], check=True, timeout=120)
    finally:
        child.kill()
        child.wait()
    stacks = folded(data)
    py = sum(c for s, c in stacks.items() if "py::busy_python_function:" in s)
    assert py > 0.8 * sum(stacks.values())


def test_python_perf_explains_older_pythons():
    out = subprocess.run([interpreter("3.11"), "-c", f"import sys; sys.path.insert(0, {HWPROF_ROOT!r}); import hwprof\n"
                          "from hwprof.errors import HwprofError\n"
                          "try:\n    hwprof.python_perf()\nexcept HwprofError as e:\n    print(e)"],
                         capture_output=True, text=True, check=True).stdout
    assert "has no perf support" in out and "3.12" in out
