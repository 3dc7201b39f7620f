"""Giving freed heap memory back to the kernel.

A decode frees large temporaries in a burst (a block's callchain entries, the flat chains once resolved) before it
allocates the stack table. glibc serves allocations below its mmap threshold, which rises to the largest block
freed so far (up to 32 MiB), from the heap, and a free in the middle of the heap stays mapped: the process keeps
the pages of memory it no longer uses, and the next allocation adds new ones. malloc_trim(0) returns every free
heap page to the kernel (what long-running C servers call after a burst); elsewhere (musl, macOS) it is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache


@cache
def _malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_memory() -> None:
    """Hand the heap's free pages back to the kernel (glibc), so a freed burst does not count twice in the peak."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
