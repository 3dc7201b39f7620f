"""Encode a Profile as pprof's profile.proto (gzip-compressed), the format `go tool pprof` and friends read.

The protobuf wire format needed here is small (varints, length-delimited fields, packed repeated integers), so it
is written out rather than pulling a protobuf runtime and generated code into every install; the tests decode the
output with the official `protobuf` library against the profile.proto schema, which keeps this honest.
Field numbers are those of github.com/google/pprof/proto/profile.proto.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from hwprof.profile import FrameKind, Profile

# profile.proto field numbers
_P_SAMPLE_TYPE, _P_SAMPLE, _P_MAPPING, _P_LOCATION, _P_FUNCTION, _P_STRING_TABLE = 1, 2, 3, 4, 5, 6
_P_TIME_NANOS, _P_DURATION_NANOS, _P_PERIOD_TYPE, _P_PERIOD, _P_COMMENT, _P_DEFAULT_SAMPLE_TYPE = 9, 10, 11, 12, 13, 14
_VT_TYPE, _VT_UNIT = 1, 2
_S_LOCATION_ID, _S_VALUE = 1, 2
_M_ID, _M_START, _M_LIMIT, _M_OFFSET, _M_FILENAME, _M_BUILD_ID, _M_HAS_FUNCTIONS = 1, 2, 3, 4, 5, 6, 7
_L_ID, _L_MAPPING_ID, _L_ADDRESS, _L_LINE = 1, 2, 3, 4
_LN_FUNCTION_ID, _LN_LINE = 1, 2
_F_ID, _F_NAME, _F_SYSTEM_NAME, _F_FILENAME = 1, 2, 3, 4

_TIME_EVENTS = {"cpu-clock", "task-clock"}


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # int64 negatives are ten-byte two's complement on the wire
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return _varint((field << 3) | wire_type)


def _int(field: int, value: int) -> bytes:
    return _key(field, 0) + _varint(int(value)) if value else b""


def _bytes(field: int, payload: bytes) -> bytes:
    return _key(field, 2) + _varint(len(payload)) + payload


def _packed(field: int, values: Iterable[int]) -> bytes:
    body = b"".join(_varint(int(v)) for v in values)
    return _bytes(field, body) if body else b""


class _Strings:
    def __init__(self) -> None:
        self.index: dict[str, int] = {"": 0}

    def __call__(self, text: str | None) -> int:
        if not text:
            return 0
        idx = self.index.get(text)
        if idx is None:
            idx = self.index[text] = len(self.index)
        return idx


def sample_types(profile: Profile) -> list[tuple[str, str]]:
    event = profile.meta.events[0] if profile.meta.events else "period"
    types = [("samples", "count"), (event, "nanoseconds" if event.split(":")[0] in _TIME_EVENTS else "count")]
    types += [(name, "count") for name in profile.meta.weight_names]
    return types


def encode_pprof(profile: Profile, mask: np.ndarray | None = None) -> bytes:
    """The uncompressed profile.proto message for a Profile, or for the samples where mask is True."""
    strings = _Strings()
    n = profile.n_samples
    mask = np.ones(n, dtype=bool) if mask is None else mask
    types = sample_types(profile)
    values = [profile.sample_counts(), profile.sample_period.astype(np.float64)]
    if profile.meta.weight_names:
        values += [profile.counters[:, i] for i in range(len(profile.meta.weight_names))]
    stacks = profile.sample_stack[mask].astype(np.int64)
    # Aggregate per unique leaf stack: pprof sums equal location lists anyway, and this keeps the file small.
    key = np.where(stacks >= 0, stacks, -1)
    uniq, inverse = np.unique(key, return_inverse=True)
    sums = np.vstack([np.bincount(inverse, weights=v[mask], minlength=len(uniq)) for v in values])

    out = bytearray()
    for name, unit in types:
        out += _bytes(_P_SAMPLE_TYPE, _int(_VT_TYPE, strings(name)) + _int(_VT_UNIT, strings(unit)))

    mapping_ids: dict[int, int] = {}
    function_ids: dict[tuple[str, str], int] = {}
    location_ids: dict[int, int] = {}
    mappings, functions, locations = bytearray(), bytearray(), bytearray()

    def location(frame: int) -> int:
        loc = location_ids.get(frame)
        if loc is not None:
            return loc
        module = int(profile.frame_module[frame])
        mapping_id = 0
        if module >= 0:
            mapping_id = mapping_ids.get(module, 0)
            if not mapping_id:
                mapping_id = mapping_ids[module] = len(mapping_ids) + 1
                path = profile.strings[module]
                mappings.extend(_bytes(_P_MAPPING, _int(_M_ID, mapping_id) + _int(_M_FILENAME, strings(path))
                                       + _int(_M_HAS_FUNCTIONS, 1)))
        label = profile.frame_label(frame)
        file = profile.string(int(profile.frame_file[frame])) or ""
        fkey = (label, file)
        function_id = function_ids.get(fkey)
        if function_id is None:
            function_id = function_ids[fkey] = len(function_ids) + 1
            name = strings(label)
            functions.extend(_bytes(_P_FUNCTION, _int(_F_ID, function_id) + _int(_F_NAME, name)
                                    + _int(_F_SYSTEM_NAME, name) + _int(_F_FILENAME, strings(file))))
        loc = location_ids[frame] = len(location_ids) + 1
        line = _bytes(_L_LINE, _int(_LN_FUNCTION_ID, function_id) + _int(_LN_LINE, int(profile.frame_line[frame])))
        address = int(profile.frame_address[frame]) if profile.frame_kind[frame] != FrameKind.UNKNOWN else 0
        locations.extend(_bytes(_P_LOCATION, _int(_L_ID, loc) + _int(_L_MAPPING_ID, mapping_id)
                                + _int(_L_ADDRESS, address) + line))
        return loc

    samples = bytearray()
    for i, stack in enumerate(uniq):
        frames = profile.stack_frames(int(stack)) if stack >= 0 else []
        loc_ids = [location(f) for f in reversed(frames)]  # pprof lists the leaf first
        vals = [int(round(v)) for v in sums[:, i]]
        samples += _bytes(_P_SAMPLE, _packed(_S_LOCATION_ID, loc_ids) + _packed(_S_VALUE, vals))
    out += samples + mappings + locations + functions

    event_type, event_unit = types[1]
    out += _int(_P_TIME_NANOS, int(profile.meta.start_time_ns))
    out += _int(_P_DURATION_NANOS, int(profile.meta.duration_ns))
    out += _bytes(_P_PERIOD_TYPE, _int(_VT_TYPE, strings(event_type)) + _int(_VT_UNIT, strings(event_unit)))
    periods = profile.sample_period[mask]
    out += _int(_P_PERIOD, int(round(float(np.median(periods)))) if len(periods) else 0)
    for note in (profile.meta.target, profile.meta.source):
        if note:
            out += _int(_P_COMMENT, strings(note))
    out += _int(_P_DEFAULT_SAMPLE_TYPE, strings(event_type))
    # The string table goes last: every index above has been interned by now.
    table = bytearray()
    for text in strings.index:
        table += _bytes(_P_STRING_TABLE, text.encode("utf-8", "surrogatepass"))
    return bytes(table + out)


def write_pprof(profile: Profile, path: str | Path, mask: np.ndarray | None = None) -> None:
    Path(path).write_bytes(pprof_bytes(profile, mask))


def pprof_bytes(profile: Profile, mask: np.ndarray | None = None) -> bytes:
    """gzip-compressed profile.proto, as pprof writes and expects it."""
    return gzip.compress(encode_pprof(profile, mask), compresslevel=6, mtime=0)
