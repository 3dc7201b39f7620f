"""Tracepoint format files (tracefs `events/<sys>/<name>/format`): the fields of a tracepoint's RAW payload.

In the core because both sides need it: the collectors read formats from tracefs to decode probe arguments, and
the decoder reads them from a capture's TRACING_DATA feature to pick fields (sched_switch's prev_state) out of
RAW samples, on a machine that may have no tracefs at all.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from hwprof.errors import HwprofError


@dataclass(frozen=True)
class FormatField:
    name: str
    ctype: str
    offset: int
    size: int
    signed: bool

    @property
    def is_data_loc(self) -> bool:
        return self.ctype.startswith("__data_loc")

    @property
    def is_char_array(self) -> bool:
        return "char" in self.ctype and "[" in self.ctype and not self.is_data_loc


@dataclass(frozen=True)
class TraceFormat:
    """A tracepoint's format file: the fields of its RAW payload (common_* first)."""

    name: str
    id: int
    fields: tuple[FormatField, ...]

    @property
    def arg_fields(self) -> tuple[FormatField, ...]:
        """The fields a user asked about: not the common_* header nor the probe's own ip."""
        return tuple(f for f in self.fields if not f.name.startswith("common_") and f.name != "__probe_ip")

    def decode(self, raw: bytes, fields: tuple[FormatField, ...] | None = None) -> dict[str, int | str]:
        out: dict[str, int | str] = {}
        for fld in self.arg_fields if fields is None else fields:
            out[fld.name] = decode_field(fld, raw)
        return out


_FIELD = re.compile(
    r"field:(?P<decl>[^;]*);\s*offset:(?P<offset>\d+);\s*size:(?P<size>\d+);(\s*signed:(?P<signed>\d+);)?")


def parse_format(text: str) -> TraceFormat:
    name, ident, fields = "", -1, []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("name:"):
            name = stripped.split(":", 1)[1].strip()
        elif stripped.startswith("ID:"):
            ident = int(stripped.split(":", 1)[1])
        else:
            match = _FIELD.search(stripped)
            if match:
                decl = match["decl"].strip()
                field_name = re.sub(r"\[.*\]$", "", decl.split()[-1])
                ctype = decl[: len(decl) - len(decl.split()[-1])].strip() + (
                    re.search(r"\[.*\]$", decl.split()[-1])[0] if "[" in decl.split()[-1] else "")
                fields.append(FormatField(field_name, ctype, int(match["offset"]), int(match["size"]),
                                          match["signed"] == "1"))
    if ident < 0 or not fields:
        raise HwprofError(f"unreadable tracepoint format for {name or '?'}")
    return TraceFormat(name, ident, tuple(fields))



def decode_field(fld: FormatField, raw: bytes) -> int | str:
    if fld.offset + fld.size > len(raw):
        return 0
    if fld.is_data_loc:
        (loc,) = struct.unpack_from("<I", raw, fld.offset)
        start, length = loc & 0xFFFF, loc >> 16
        if "rel_loc" in fld.ctype:
            start += fld.offset + fld.size
        data = raw[start:start + length]
        return data.split(b"\0", 1)[0].decode("utf-8", "replace")
    if fld.is_char_array:
        return raw[fld.offset:fld.offset + fld.size].split(b"\0", 1)[0].decode("utf-8", "replace")
    if fld.size in (1, 2, 4, 8):
        code = {1: "b", 2: "h", 4: "i", 8: "q"}[fld.size]
        (value,) = struct.unpack_from("<" + (code if fld.signed else code.upper()), raw, fld.offset)
        return value
    return raw[fld.offset:fld.offset + fld.size].hex()
