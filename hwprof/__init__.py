"""hwprof: hardware counters, stack sampling, probes and flame graphs for Linux, on perf_event_open."""

__version__ = "0.1.0"


def count(events=None, pid=None, no_scale=False):
    """Count events on this process (or `pid`) as a context manager or decorator; see hwprof.api.

    Imported on first use so that `import hwprof` stays light.
    """
    from hwprof.api import count as _count

    return _count(events, pid=pid, no_scale=no_scale)


def python_perf(enable: bool = True) -> str:
    """Turn CPython's perf support on (or off) in this running interpreter, so `hwprof record --call-graph
    dwarf,32768 -p PID` (or perf) shows this process's Python functions as `py::func:file.py` frames among the native
    ones: what `hwprof record --python` does for a command it starts. Needs CPython 3.12+ on Linux; returns what it
    did, and raises hwprof.errors.HwprofError (with the reason) where the interpreter has no perf support."""
    from hwprof.pyperf import activate_in_this_process

    return activate_in_this_process(enable)
