"""Write perf.data files that `perf report` and `perf script` read.

Layout written: 104-byte file header, then the attr section (each attr followed by its ids' {offset,size}), the
ids themselves, then the data section (raw kernel records as copied from the ring buffers, plus FINISHED_ROUND
records), and finally the feature sections. The header's data.size is rewritten at every flush, so a capture
that dies (SIGKILL, power loss) leaves a file readable up to the last flushed record.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from hwprof.errors import HwprofError
from hwprof.perf.abi import ATTR_SIZE_VER7, ATTR_SIZE_VER8, RecordType
from hwprof.perf.attr import PerfEventAttr
from hwprof.perfdata.features import Feature

MAGIC = b"PERFILE2"
FILE_HEADER_SIZE = 104
FINISHED_ROUND = struct.pack("<IHH", RecordType.FINISHED_ROUND, 0, 8)
_HEADER = struct.Struct("<8sQQQQQQQQ4Q")  # magic, size, attr_size, attrs{o,s}, data{o,s}, event_types{o,s}, features


@dataclass(frozen=True)
class FileAttr:
    """One event of the file: its attr, the sample ids the kernel gave its fds, and its name."""

    attr: PerfEventAttr
    ids: tuple[int, ...]
    name: str = ""


def file_attr_size(attrs: list[FileAttr]) -> int:
    """perf 6.1 refuses attrs larger than it knows (128 bytes); only write 136 when config3 is in use."""
    return ATTR_SIZE_VER8 if any(a.attr.config3 for a in attrs) else ATTR_SIZE_VER7


class PerfDataWriter:
    """Stream a perf.data file: construct with the attrs, write() record bytes, close() with the features."""

    def __init__(self, path: str | os.PathLike, attrs: list[FileAttr]) -> None:
        if not attrs:
            raise ValueError("a perf.data file needs at least one attr")
        self.path = os.fspath(path)
        self.attrs = attrs
        self.attr_size = file_attr_size(attrs)
        try:
            self._f = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise HwprofError(f"cannot write {self.path}: {exc.strerror}") from None
        entry = self.attr_size + 16
        attrs_offset = FILE_HEADER_SIZE
        ids_offset = attrs_offset + entry * len(attrs)
        section = b""
        ids_blob = b""
        for fa in attrs:
            raw = fa.attr.copy()
            raw.size = self.attr_size
            section += raw.to_bytes(self.attr_size)
            section += struct.pack("<QQ", ids_offset + len(ids_blob), 8 * len(fa.ids))
            ids_blob += struct.pack(f"<{len(fa.ids)}Q", *fa.ids)
        self._attrs_section = (attrs_offset, len(section))
        self.data_offset = ids_offset + len(ids_blob)
        self.data_size = 0
        self._features: dict[int, bytes] = {}
        self._write(self._header())
        self._write(section + ids_blob)

    def _write(self, data: bytes) -> None:
        try:
            self._f.write(data)
        except OSError as exc:
            raise HwprofError(f"cannot write {self.path}: {exc.strerror}") from None

    def _header(self, feature_bits: int = 0) -> bytes:
        bitmap = [(feature_bits >> (64 * i)) & 0xFFFFFFFFFFFFFFFF for i in range(4)]
        return _HEADER.pack(MAGIC, FILE_HEADER_SIZE, self.attr_size + 16, *self._attrs_section,
                            self.data_offset, self.data_size, 0, 0, *bitmap)

    # --- data ---------------------------------------------------------------------------------------
    def write(self, records: bytes) -> None:
        """Append whole records (as read from a ring) to the data section."""
        if records:
            self._write(records)
            self.data_size += len(records)

    def finish_round(self) -> None:
        """Tell perf's ordered-events queue that everything before this point may be sorted and flushed."""
        self.write(FINISHED_ROUND)

    def flush(self) -> None:
        """Push data to the kernel and record its size in the header, so a killed capture stays readable."""
        try:
            self._f.flush()
            os.pwrite(self._f.fileno(), struct.pack("<Q", self.data_size), 48)
        except OSError as exc:
            raise HwprofError(f"cannot write {self.path}: {exc.strerror}") from None

    # --- features -----------------------------------------------------------------------------------
    def add_feature(self, feature: Feature, payload: bytes) -> None:
        self._features[int(feature)] = payload

    def close(self) -> None:
        """Write the feature sections after the data and the final header."""
        if self._f.closed:
            return
        try:
            self._f.flush()
            features = sorted(self._features)
            index_offset = self.data_offset + self.data_size
            self._f.seek(index_offset)
            payload_offset = index_offset + 16 * len(features)
            index, blobs = b"", b""
            for feature in features:
                blob = self._features[feature]
                index += struct.pack("<QQ", payload_offset + len(blobs), len(blob))
                blobs += blob
            self._f.write(index + blobs)
            bits = 0
            for feature in features:
                bits |= 1 << feature
            self._f.seek(0)
            self._f.write(self._header(bits))
            self._f.close()
        except OSError as exc:
            raise HwprofError(f"cannot write {self.path}: {exc.strerror}") from None

    def __enter__(self) -> PerfDataWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
