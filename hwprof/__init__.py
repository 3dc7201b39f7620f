"""hwprof: hardware counters, stack sampling, probes and flame graphs for Linux, on perf_event_open."""

__version__ = "0.1.0"
