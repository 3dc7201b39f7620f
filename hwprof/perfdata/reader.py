"""Read perf.data files (hwprof's and `perf record`'s, file or pipe mode), tolerating files cut short.

Bad input never raises anything but HwprofError with one line saying what is wrong with the file. A file whose
header says its data section is empty or longer than the file (the capture was killed before it finalised the
header, or the disk filled) is read up to the last whole record, with a warning in `warnings`.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from functools import cached_property

from hwprof.errors import HwprofError
from hwprof.perf.abi import ATTR_SIZE_VER0, RecordType
from hwprof.perf.attr import PerfEventAttr
from hwprof.perf.records import whole_records_length
from hwprof.perfdata import features as feat
from hwprof.perfdata.features import Feature
from hwprof.perfdata.writer import FILE_HEADER_SIZE, MAGIC, FileAttr

CHUNK_SIZE = 32 << 20
_HEADER = struct.Struct("<8sQQQQQQQQ4Q")
PIPE_HEADER_SIZE = 16


class PerfDataFile:
    """Header, attrs and features of a perf.data file, and its data section in chunks of whole records."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self.warnings: list[str] = []
        self.attrs: list[FileAttr] = []
        self.features: dict[int, bytes] = {}
        self.pipe_mode = False
        self.truncated = False
        try:
            self._f = open(self.path, "rb")  # noqa: SIM115 - closed in close()
            self.file_size = os.fstat(self._f.fileno()).st_size
        except IsADirectoryError:
            raise HwprofError(f"{self.path} is a directory, not a perf.data file") from None
        except OSError as exc:
            raise HwprofError(f"cannot read {self.path}: {exc.strerror}") from None
        try:
            self._read_header()
        except struct.error:
            self.close()
            raise HwprofError(f"{self.path}: corrupt perf.data header") from None
        except HwprofError:
            self.close()
            raise

    # --- header -------------------------------------------------------------------------------------
    def _pread(self, offset: int, size: int) -> bytes:
        self._f.seek(offset)
        return self._f.read(size)

    def _read_header(self) -> None:
        name = self.path
        if self.file_size == 0:
            raise HwprofError(f"{name} is empty (no perf.data header)")
        head = self._pread(0, FILE_HEADER_SIZE)
        magic = head[:8]
        if magic == MAGIC[::-1]:
            raise HwprofError(f"{name} was written on a machine of the other byte order, which is not supported")
        if magic == b"PERFFILE":
            raise HwprofError(f"{name} is a version 1 perf.data file (perf before 2012), which is not supported")
        if magic != MAGIC:
            raise HwprofError(f"{name} is not a perf.data file (no PERFILE2 magic)")
        if len(head) >= 16 and struct.unpack_from("<Q", head, 8)[0] == PIPE_HEADER_SIZE:
            self.pipe_mode = True
            self.data_offset, self.data_size = PIPE_HEADER_SIZE, self.file_size - PIPE_HEADER_SIZE
            self._read_pipe_headers()
            return
        if len(head) < FILE_HEADER_SIZE:
            raise HwprofError(f"{name} is cut short inside its header ({len(head)} of {FILE_HEADER_SIZE} bytes)")
        (_, size, attr_entry, attrs_off, attrs_size, data_off, data_size, _, _, *bitmap) = _HEADER.unpack(head)
        if size != FILE_HEADER_SIZE:
            raise HwprofError(f"{name}: unexpected perf.data header size {size}")
        self._read_attrs(attrs_off, attrs_size, attr_entry)
        if data_off > self.file_size or data_off < FILE_HEADER_SIZE:
            raise HwprofError(f"{name}: data section offset {data_off} is outside the file")
        self.data_offset = data_off
        available = self.file_size - data_off
        complete = data_size and data_off + data_size <= self.file_size
        unfinished = not any(bitmap) and data_size and data_off + data_size < self.file_size
        if unfinished:
            # hwprof writes data.size at every flush and the features only at the end: records written after
            # the last flush of a killed capture are still in the file.
            complete = False
        if complete:
            self.data_size = data_size
            self._read_features(bitmap)
            if not any(bitmap):
                self.warnings.append(f"{name} was not finalised (no feature sections): the capture was killed, "
                                     "so there are no build-ids or host details")
        else:
            self.truncated = True
            why = ("the header says the data section is empty" if not data_size else
                   f"no feature sections, and {available - data_size} bytes past the {data_size} data bytes "
                   "the header counts" if unfinished else
                   f"the header says {data_size} data bytes but only {available} are there")
            # Whole records only: the tail of a killed capture may end inside a record.
            self.data_size = self._whole_length(data_off, available)
            self.warnings.append(f"{name} was not finalised ({why}; the capture was killed or the disk "
                                 f"filled): reading {self.data_size} bytes of whole records, no features")

    def _whole_length(self, offset: int, available: int) -> int:
        total = 0
        carry = b""
        pos = offset
        end = offset + available
        while pos < end:
            block = carry + self._pread(pos, min(CHUNK_SIZE, end - pos))
            pos += min(CHUNK_SIZE, end - pos)
            used = whole_records_length(block)
            total += used
            carry = block[used:]
            if used == 0 and len(carry) > 65536 + 8:
                break  # no record is that long: garbage
        return total

    def _read_attrs(self, offset: int, size: int, entry: int) -> None:
        if entry < ATTR_SIZE_VER0 + 16 or offset + size > self.file_size or size % entry:
            raise HwprofError(f"{self.path}: corrupt attr section (entry size {entry}, {size} bytes at {offset})")
        raw = self._pread(offset, size)
        for i in range(size // entry):
            base = i * entry
            attr = PerfEventAttr.from_bytes(raw[base: base + entry - 16])
            ids_off, ids_size = struct.unpack_from("<QQ", raw, base + entry - 16)
            if ids_off + ids_size > self.file_size or ids_size % 8:
                raise HwprofError(f"{self.path}: ids of event {i} point outside the file")
            ids_raw = self._pread(ids_off, ids_size)
            self.attrs.append(FileAttr(attr, struct.unpack(f"<{ids_size // 8}Q", ids_raw)))
        if not self.attrs:
            raise HwprofError(f"{self.path}: no events in the attr section")

    def _read_features(self, bitmap: list[int]) -> None:
        bits = sum(word << (64 * i) for i, word in enumerate(bitmap))
        present = [b for b in range(256) if bits >> b & 1]
        index_off = self.data_offset + self.data_size
        index = self._pread(index_off, 16 * len(present))
        if len(index) < 16 * len(present):
            self.warnings.append(f"{self.path}: feature index is cut short; features ignored")
            return
        for i, bit in enumerate(present):
            off, size = struct.unpack_from("<QQ", index, 16 * i)
            if off + size > self.file_size:
                self.warnings.append(f"{self.path}: feature {bit} points outside the file; ignored")
                continue
            self.features[bit] = self._pread(off, size)

    def _read_pipe_headers(self) -> None:
        """Pipe-mode files carry attrs and features as records at the start of the stream."""
        for _offset, rtype, body in self._scan(self.data_offset, self.data_size):
            if rtype == RecordType.HEADER_ATTR:
                (size,) = struct.unpack_from("<I", body, 4)
                size = size or ATTR_SIZE_VER0
                attr = PerfEventAttr.from_bytes(body[:size])
                ids = struct.unpack_from(f"<{(len(body) - size) // 8}Q", body, size)
                self.attrs.append(FileAttr(attr, tuple(ids)))
            elif rtype == RecordType.HEADER_FEATURE:
                (bit,) = struct.unpack_from("<Q", body, 0)
                self.features[bit] = body[8:]
        if not self.attrs:
            raise HwprofError(f"{self.path}: pipe-mode perf.data without any event (attr) record")

    def _scan(self, offset: int, size: int) -> Iterator[tuple[int, int, bytes]]:
        """(offset, type, body) of perf's own header records in a pipe-mode stream, skipping tracing data."""
        pos, end = offset, offset + size
        while pos + 8 <= end:
            rtype, _, rsize = struct.unpack("<IHH", self._pread(pos, 8))
            if rsize < 8:
                return
            if rtype < RecordType.HEADER_ATTR:
                pos += rsize  # kernel records: the decoder's business
                continue
            body = self._pread(pos + 8, rsize - 8)
            yield pos, rtype, body
            pos += rsize
            if rtype == RecordType.HEADER_TRACING_DATA:
                (tracing_size,) = struct.unpack_from("<I", body, 0)
                pos += tracing_size + (-tracing_size % 8)

    # --- data ---------------------------------------------------------------------------------------
    def chunks(self, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The data section in pieces of whole records, so a large file decodes in bounded memory.

        Pipe-mode tracing data (not a record) is dropped from the stream here.
        """
        pos, end = self.data_offset, self.data_offset + self.data_size
        carry = b""
        while pos < end:
            want = min(chunk_size, end - pos)
            block = carry + self._pread(pos, want)
            pos += want
            used = whole_records_length(block)
            if self.pipe_mode:
                block, used = self._strip_tracing_data(block, used)
            carry = block[used:]
            if used:
                yield block[:used]
            elif len(carry) > chunk_size + 65536:
                self.warnings.append(f"{self.path}: corrupt record at data offset {pos - len(carry)}; stopped")
                return
        if carry:
            self.warnings.append(f"{self.path}: {len(carry)} trailing bytes do not form a whole record; ignored")

    def blocks(self, block_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The data section in raw pieces, not cut at record boundaries (the caller carries a partial record
        over): saves a second walk over every header when the caller walks them anyway. File mode only."""
        if self.pipe_mode:
            yield from self.chunks(block_size)
            return
        pos, end = self.data_offset, self.data_offset + self.data_size
        while pos < end:
            want = min(block_size, end - pos)
            yield self._pread(pos, want)
            pos += want

    @staticmethod
    def _strip_tracing_data(block: bytes, used: int) -> tuple[bytes, int]:
        from hwprof.perf.records import iter_records

        for off, rtype, _, size in iter_records(block, 0, used):
            if rtype == RecordType.HEADER_TRACING_DATA:
                (tracing,) = struct.unpack_from("<I", block, off + 8)
                skip = tracing + (-tracing % 8)
                rest = block[:off + size] + block[off + size + skip:]
                return rest, whole_records_length(rest)
        return block, used

    # --- features -----------------------------------------------------------------------------------
    def _string_feature(self, feature: Feature) -> str:
        raw = self.features.get(feature)
        if not raw:
            return ""
        try:
            return feat.unpack_string(raw)[0]
        except (ValueError, struct.error):
            self.warnings.append(f"{self.path}: corrupt {feature.name} feature")
            return ""

    @property
    def hostname(self) -> str:
        return self._string_feature(Feature.HOSTNAME)

    @property
    def os_release(self) -> str:
        return self._string_feature(Feature.OSRELEASE)

    @property
    def perf_version(self) -> str:
        return self._string_feature(Feature.VERSION)

    @property
    def cmdline(self) -> list[str]:
        raw = self.features.get(Feature.CMDLINE)
        try:
            return feat.unpack_string_list(raw) if raw else []
        except (ValueError, struct.error):
            return []

    @cached_property
    def event_names(self) -> list[str]:
        """One name per attr, from EVENT_DESC (matched by ids), else a description of the attr."""
        names: dict[int, str] = {}
        raw = self.features.get(Feature.EVENT_DESC)
        if raw:
            try:
                for desc in feat.unpack_event_desc(raw):
                    for ident in desc.ids:
                        names[ident] = desc.name
            except (ValueError, struct.error):
                self.warnings.append(f"{self.path}: corrupt EVENT_DESC feature")
        out = []
        for fa in self.attrs:
            name = next((names[i] for i in fa.ids if i in names), "") or fa.name or describe_attr(fa.attr)
            out.append(name)
        return out

    @cached_property
    def build_ids(self) -> list[feat.BuildIdEntry]:
        raw = self.features.get(Feature.BUILD_ID)
        try:
            return feat.unpack_build_ids(raw) if raw else []
        except (ValueError, struct.error):
            self.warnings.append(f"{self.path}: corrupt BUILD_ID feature")
            return []

    @property
    def nr_cpus(self) -> int:
        raw = self.features.get(Feature.NRCPUS)
        return struct.unpack_from("<II", raw)[1] if raw and len(raw) >= 8 else 0

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> PerfDataFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_SW_NAMES = ("cpu-clock", "task-clock", "page-faults", "context-switches", "cpu-migrations", "minor-faults",
             "major-faults", "alignment-faults", "emulation-faults", "dummy", "bpf-output", "cgroup-switches")
_HW_NAMES = ("cycles", "instructions", "cache-references", "cache-misses", "branches", "branch-misses",
             "bus-cycles", "stalled-cycles-frontend", "stalled-cycles-backend", "ref-cycles")


def describe_attr(attr: PerfEventAttr) -> str:
    """A name for an attr when the file does not carry one (perf's fallback names)."""
    if attr.type == 1 and attr.config < len(_SW_NAMES):
        return _SW_NAMES[attr.config]
    if attr.type == 0 and attr.config < len(_HW_NAMES):
        return _HW_NAMES[attr.config]
    if attr.type == 2:
        return f"tracepoint:{attr.config}"
    if attr.type == 4:
        return f"r{attr.config:x}"
    return f"type{attr.type}:{attr.config:#x}"
