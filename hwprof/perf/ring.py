"""The perf mmap ring buffer: copy out what the kernel wrote, then hand the space back.

Why raw bytes: the capture loop must not do per-record Python work (it would slow down and lose samples at high
rates), so `read_available()` returns the bytes between tail and head as they are; decoding happens afterwards.
The mapping is read-write, so the kernel honours data_tail and never overwrites unread data: when the buffer is
full it drops records and later writes a PERF_RECORD_LOST saying how many.
"""

from __future__ import annotations

import errno
import mmap
import os
import select
import struct

from hwprof.errors import HwprofError
from hwprof.perf.syscall import read_sysctl

# Offsets inside struct perf_event_mmap_page (the first page of the mapping).
_DATA_HEAD = 1024
_DATA_TAIL = 1032
_DATA_OFFSET = 1040
_DATA_SIZE = 1048
_U64 = struct.Struct("<Q")

PAGE_SIZE = mmap.PAGESIZE
DEFAULT_DATA_PAGES = 128  # 512 KiB per CPU, perf record's default for root


def valid_data_pages(pages: int) -> int:
    """The kernel wants a power of two data pages (the mask trick); refuse anything else with a clear message."""
    if pages < 1 or pages & (pages - 1):
        raise HwprofError(f"ring buffer size must be a power of two number of pages, got {pages}")
    return pages


class RingBuffer:
    """One mmap'ed perf ring: page 0 is the control page, then `data_pages` pages of records."""

    def __init__(self, fd: int, data_pages: int = DEFAULT_DATA_PAGES) -> None:
        self.fd = fd
        self.data_pages = valid_data_pages(data_pages)
        length = (1 + data_pages) * PAGE_SIZE
        try:
            self._map = mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError as exc:
            raise HwprofError(_mmap_advice(exc, data_pages)) from None
        self._view = memoryview(self._map)
        offset, size = _U64.unpack_from(self._map, _DATA_OFFSET)[0], _U64.unpack_from(self._map, _DATA_SIZE)[0]
        # Kernels before 4.1 leave data_offset/data_size zero: the data then starts right after page 0.
        self.data_offset = offset or PAGE_SIZE
        self.data_size = size or data_pages * PAGE_SIZE
        self._mask = self.data_size - 1
        self.bytes_read = 0

    # --- the control page ---------------------------------------------------------------------------
    @property
    def head(self) -> int:
        return _U64.unpack_from(self._map, _DATA_HEAD)[0]

    @property
    def tail(self) -> int:
        return _U64.unpack_from(self._map, _DATA_TAIL)[0]

    def pending(self) -> int:
        """Bytes written by the kernel and not yet read."""
        return self.head - self.tail

    # --- reading ------------------------------------------------------------------------------------
    def read_available(self) -> bytes:
        """Copy every whole record between tail and head (unwrapping the end of the buffer), then publish the tail.

        The head is read once before the data (x86 and arm64 user space see the kernel's stores in order
        after that load; mmap slicing is a plain memcpy), and the tail is written only after the copy, so the
        kernel never reuses bytes we are still reading.
        """
        head = self.head
        tail = self.tail
        if head == tail:
            return b""
        start = tail & self._mask
        length = head - tail
        base = self.data_offset
        if start + length <= self.data_size:
            data = bytes(self._view[base + start: base + start + length])
        else:
            first = self.data_size - start
            data = (bytes(self._view[base + start: base + self.data_size])
                    + bytes(self._view[base: base + length - first]))
        _U64.pack_into(self._map, _DATA_TAIL, head)
        self.bytes_read += length
        return data

    def close(self) -> None:
        if self._map.closed:
            return
        self._view.release()
        self._map.close()

    def __enter__(self) -> RingBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def poll_rings(poller: select.poll, timeout_ms: int, keep_fd: int) -> None:
    """Wait in poll(2) for ring data (or `keep_fd`, a stop signal's fd) for at most `timeout_ms`.

    A ring's fd whose task exited (a thread of a -p target) reports POLLHUP from then on, so every later poll
    returns at once: hwprof spun on a CPU and took it from the very server it profiled (a third of perf's samples
    on a thread-per-request server). Such fds leave the poll set; their rings are still drained every round.
    """
    for fd, revents in poller.poll(timeout_ms):
        if fd != keep_fd and revents & (select.POLLHUP | select.POLLERR):
            poller.unregister(fd)


def _mmap_advice(exc: OSError, data_pages: int) -> str:
    kib = data_pages * PAGE_SIZE // 1024
    if exc.errno == errno.EPERM or exc.errno == errno.ENOMEM and os.geteuid() != 0:
        limit = read_sysctl("perf_event_mlock_kb", 516)
        return (f"cannot map a {kib} KiB perf ring buffer: over the locked-memory limit "
                f"(kernel.perf_event_mlock_kb is {limit}); use a smaller -m, or run as root")
    if exc.errno == errno.EINVAL:
        return (f"cannot map a {kib} KiB perf ring buffer: the kernel refused it (the size must be a power of two "
                "pages, and an inherited event must be opened per CPU, not for any CPU, to be mapped)")
    return f"cannot map a {kib} KiB perf ring buffer: {os.strerror(exc.errno or 0)}"
