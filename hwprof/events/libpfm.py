"""libpfm4 (Debian package `libpfm4`) through ctypes: its event tables and its perf_event_attr encoder.

libpfm4 knows the core PMU of every Intel and AMD model (and ARM, Power, ...), with the vendor's event names and
unit masks. hwprof uses it for two things: the AMD events (Intel's come from the shipped perfmon data, see
hwprof.events.vendor), and as an independent second encoder that the tests hold the perfmon encodings against.

Two library switches make it serve a CPU model other than this machine's (the PERF_CPUID override):
`LIBPFM_ENCODE_INACTIVE=1` lets `pmu::EVENT` encode for a PMU that is not present, and the PMU list is walked
by name. Both are read by pfm_initialize(), so they are set before the first call.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from dataclasses import dataclass
from functools import cache

from hwprof.perf.attr import PerfEventAttr

PFM_SUCCESS = 0
PFM_ERR_NOTFOUND = -4
PFM_OS_NONE = 0
PFM_OS_PERF_EVENT = 1
PFM_OS_PERF_EVENT_EXT = 2
PFM_PLM0 = 0x01  # kernel
PFM_PLM3 = 0x08  # user
PFM_ATTR_UMASK = 1
PFM_ATTR_MOD_BOOL = 2
PFM_ATTR_MOD_INTEGER = 3


class LibpfmError(RuntimeError):
    pass


class _PmuInfo(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p), ("desc", ctypes.c_char_p), ("size", ctypes.c_size_t), ("pmu", ctypes.c_int),
        ("type", ctypes.c_int), ("nevents", ctypes.c_int), ("first_event", ctypes.c_int),
        ("max_encoding", ctypes.c_int), ("num_cntrs", ctypes.c_int), ("num_fixed_cntrs", ctypes.c_int),
        ("is_present", ctypes.c_uint, 1), ("is_dfl", ctypes.c_uint, 1), ("reserved_bits", ctypes.c_uint, 30),
    ]


class _EventInfo(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p), ("desc", ctypes.c_char_p), ("equiv", ctypes.c_char_p),
        ("size", ctypes.c_size_t), ("code", ctypes.c_uint64), ("pmu", ctypes.c_int), ("dtype", ctypes.c_int),
        ("idx", ctypes.c_int), ("nattrs", ctypes.c_int), ("reserved", ctypes.c_int),
        ("is_precise", ctypes.c_uint, 1), ("is_speculative", ctypes.c_uint, 2),
        ("support_hw_smpl", ctypes.c_uint, 1), ("reserved_bits", ctypes.c_uint, 28),
    ]


class _AttrInfo(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p), ("desc", ctypes.c_char_p), ("equiv", ctypes.c_char_p),
        ("size", ctypes.c_size_t), ("code", ctypes.c_uint64), ("type", ctypes.c_int), ("idx", ctypes.c_int),
        ("ctrl", ctypes.c_int),
        ("is_dfl", ctypes.c_uint, 1), ("is_precise", ctypes.c_uint, 1), ("is_speculative", ctypes.c_uint, 2),
        ("support_hw_smpl", ctypes.c_uint, 1), ("reserved_bits", ctypes.c_uint, 27),
        ("dfl_val64", ctypes.c_uint64),
    ]


class _PerfEncodeArg(ctypes.Structure):
    _fields_ = [
        ("attr", ctypes.POINTER(PerfEventAttr)), ("fstr", ctypes.POINTER(ctypes.c_char_p)),
        ("size", ctypes.c_size_t), ("idx", ctypes.c_int), ("cpu", ctypes.c_int), ("flags", ctypes.c_int),
        ("pad0", ctypes.c_int),
    ]


@dataclass(frozen=True)
class PfmPmu:
    """One PMU model libpfm4 has tables for (`skx`, `amd64_fam19h_zen3`, ...)."""

    index: int
    name: str
    description: str
    present: bool
    events: int
    generic_counters: int
    fixed_counters: int
    first_event: int


@dataclass(frozen=True)
class PfmUmask:
    name: str
    description: str
    code: int
    is_default: bool
    is_precise: bool


@dataclass(frozen=True)
class PfmEvent:
    """An event as libpfm4 lists it: name, raw code (event select), description and its unit masks."""

    pmu: str
    name: str
    description: str
    code: int
    is_precise: bool
    umasks: tuple[PfmUmask, ...]
    modifiers: tuple[str, ...]


@dataclass(frozen=True)
class PfmEncoding:
    """What pfm_get_os_event_encoding() made of a string: the attr fields and the fully qualified name."""

    type: int
    config: int
    config1: int
    config2: int
    exclude_user: int
    exclude_kernel: int
    precise_ip: int
    fstr: str


class Libpfm:
    """The library, initialised once per process (see `libpfm()`)."""

    def __init__(self, path: str | None = None) -> None:
        # Encoding for a PMU that is not this machine's is what the PERF_CPUID override needs.
        os.environ.setdefault("LIBPFM_ENCODE_INACTIVE", "1")
        name = path or ctypes.util.find_library("pfm") or "libpfm.so.4"
        try:
            self._lib = ctypes.CDLL(name)
        except OSError as exc:
            raise LibpfmError(f"libpfm4 is not installed ({exc}); on Debian: apt-get install libpfm4") from None
        lib = self._lib
        lib.pfm_strerror.restype = ctypes.c_char_p
        lib.pfm_get_pmu_info.argtypes = [ctypes.c_int, ctypes.POINTER(_PmuInfo)]
        lib.pfm_get_event_info.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_EventInfo)]
        lib.pfm_get_event_attr_info.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.POINTER(_AttrInfo)]
        lib.pfm_get_os_event_encoding.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
        lib.pfm_find_event.argtypes = [ctypes.c_char_p]
        lib.pfm_get_event_next.argtypes = [ctypes.c_int]
        rc = lib.pfm_initialize()
        if rc != PFM_SUCCESS:
            raise LibpfmError(f"pfm_initialize: {self.strerror(rc)}")
        self._pmus: dict[str, PfmPmu] | None = None

    def strerror(self, code: int) -> str:
        text = self._lib.pfm_strerror(code)
        return text.decode() if text else f"libpfm error {code}"

    @property
    def version(self) -> tuple[int, int]:
        v = self._lib.pfm_get_version()
        return v >> 16, v & 0xFFFF

    def pmus(self) -> dict[str, PfmPmu]:
        """Every PMU model in the library's tables, by libpfm4 name."""
        if self._pmus is None:
            out = {}
            for index in range(1024):
                info = _PmuInfo()
                info.size = ctypes.sizeof(_PmuInfo)
                if self._lib.pfm_get_pmu_info(index, ctypes.byref(info)) != PFM_SUCCESS or not info.name:
                    continue
                name = info.name.decode()
                out[name] = PfmPmu(index, name, (info.desc or b"").decode(), bool(info.is_present), info.nevents,
                                   info.num_cntrs, info.num_fixed_cntrs, info.first_event)
            self._pmus = out
        return self._pmus

    def events(self, pmu: str) -> list[PfmEvent]:
        """Every event of one PMU model, with its unit masks (the library's own order)."""
        info = self.pmus().get(pmu)
        if info is None:
            raise LibpfmError(f"libpfm4 has no PMU '{pmu}'")
        out: list[PfmEvent] = []
        index = info.first_event
        while index != -1:
            ev = _EventInfo()
            ev.size = ctypes.sizeof(_EventInfo)
            if self._lib.pfm_get_event_info(index, PFM_OS_NONE, ctypes.byref(ev)) != PFM_SUCCESS:
                break
            umasks, modifiers = [], []
            for a in range(ev.nattrs):
                at = _AttrInfo()
                at.size = ctypes.sizeof(_AttrInfo)
                if self._lib.pfm_get_event_attr_info(index, a, PFM_OS_NONE, ctypes.byref(at)) != PFM_SUCCESS:
                    continue
                attr_name = (at.name or b"").decode()
                if at.type == PFM_ATTR_UMASK:
                    umasks.append(PfmUmask(attr_name, (at.desc or b"").decode(), at.code, bool(at.is_dfl),
                                           bool(at.is_precise)))
                else:
                    modifiers.append(attr_name)
            out.append(PfmEvent(pmu, ev.name.decode(), (ev.desc or b"").decode(), ev.code, bool(ev.is_precise),
                                tuple(umasks), tuple(modifiers)))
            index = self._lib.pfm_get_event_next(index)
        return out

    def encode(self, text: str, plm: int = PFM_PLM0 | PFM_PLM3) -> PfmEncoding:
        """perf_event_attr fields for `pmu::EVENT:UMASK:mod=val` (libpfm4's own syntax)."""
        attr = PerfEventAttr()
        fstr = ctypes.c_char_p()
        arg = _PerfEncodeArg()
        arg.attr = ctypes.pointer(attr)
        arg.fstr = ctypes.pointer(fstr)
        arg.size = ctypes.sizeof(_PerfEncodeArg)
        rc = self._lib.pfm_get_os_event_encoding(text.encode(), plm, PFM_OS_PERF_EVENT_EXT, ctypes.byref(arg))
        if rc != PFM_SUCCESS:
            raise LibpfmError(f"libpfm4 cannot encode '{text}': {self.strerror(rc)}")
        full = fstr.value.decode() if fstr.value else text
        libc = ctypes.CDLL(None)
        libc.free(fstr)  # the library allocates fstr with malloc()
        return PfmEncoding(attr.type, attr.config, attr.config1, attr.config2, attr.exclude_user,
                           attr.exclude_kernel, attr.precise_ip, full)


@cache
def libpfm() -> Libpfm:
    """The process-wide library handle (LibpfmError when the package is missing)."""
    return Libpfm()
