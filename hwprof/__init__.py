"""hwprof: hardware counters, stack sampling, probes and flame graphs for Linux, on perf_event_open."""

__version__ = "0.1.0"


def count(events=None, pid=None, no_scale=False):
    """Count events on this process (or `pid`) as a context manager or decorator; see hwprof.api.

    Imported on first use so that `import hwprof` stays light.
    """
    from hwprof.api import count as _count

    return _count(events, pid=pid, no_scale=no_scale)
