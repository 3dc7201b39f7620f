"""perf.data: the capture file format shared with Linux perf (reader and writer)."""

from hwprof.perfdata.reader import PerfDataFile
from hwprof.perfdata.writer import FileAttr, PerfDataWriter

__all__ = ["FileAttr", "PerfDataFile", "PerfDataWriter"]
