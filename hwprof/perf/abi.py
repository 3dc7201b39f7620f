"""Numbers of the perf_event ABI (include/uapi/linux/perf_event.h), named once.

The enums of the record format (SampleType, RecordType, CpuMode, CallchainContext) live in
hwprof.perf.abi_records and are built on first use through this module (`from hwprof.perf.abi import RecordType`
works as before): each enum class costs ~0.3-1 ms to build, and commands that only count or list events (every
`hwprof stat`, `hwprof list`) never decode a record.
"""

from enum import IntEnum, IntFlag


class PerfType(IntEnum):
    HARDWARE = 0
    SOFTWARE = 1
    TRACEPOINT = 2
    HW_CACHE = 3
    RAW = 4
    BREAKPOINT = 5


class HwEvent(IntEnum):
    CPU_CYCLES = 0
    INSTRUCTIONS = 1
    CACHE_REFERENCES = 2
    CACHE_MISSES = 3
    BRANCH_INSTRUCTIONS = 4
    BRANCH_MISSES = 5
    BUS_CYCLES = 6
    STALLED_CYCLES_FRONTEND = 7
    STALLED_CYCLES_BACKEND = 8
    REF_CPU_CYCLES = 9


class SwEvent(IntEnum):
    CPU_CLOCK = 0
    TASK_CLOCK = 1
    PAGE_FAULTS = 2
    CONTEXT_SWITCHES = 3
    CPU_MIGRATIONS = 4
    PAGE_FAULTS_MIN = 5
    PAGE_FAULTS_MAJ = 6
    ALIGNMENT_FAULTS = 7
    EMULATION_FAULTS = 8
    DUMMY = 9
    BPF_OUTPUT = 10
    CGROUP_SWITCHES = 11


class HwCacheId(IntEnum):
    L1D = 0
    L1I = 1
    LL = 2
    DTLB = 3
    ITLB = 4
    BPU = 5
    NODE = 6


class HwCacheOp(IntEnum):
    READ = 0
    WRITE = 1
    PREFETCH = 2


class HwCacheResult(IntEnum):
    ACCESS = 0
    MISS = 1



class ReadFormat(IntFlag):
    TOTAL_TIME_ENABLED = 1 << 0
    TOTAL_TIME_RUNNING = 1 << 1
    ID = 1 << 2
    GROUP = 1 << 3
    LOST = 1 << 4




MISC_CPUMODE_MASK = 7
MISC_MMAP_DATA = 1 << 13
MISC_COMM_EXEC = 1 << 13
MISC_SWITCH_OUT = 1 << 13
MISC_SWITCH_OUT_PREEMPT = 1 << 14
MISC_EXACT_IP = 1 << 14
MISC_MMAP_BUILD_ID = 1 << 14



PERF_MAX_STACK_DEPTH = 127

# perf_event_open flags
FLAG_FD_NO_GROUP = 1
FLAG_FD_OUTPUT = 2
FLAG_PID_CGROUP = 4
FLAG_FD_CLOEXEC = 8

# attr sizes by ABI version
ATTR_SIZE_VER0 = 64
ATTR_SIZE_VER1 = 72
ATTR_SIZE_VER2 = 80
ATTR_SIZE_VER3 = 96
ATTR_SIZE_VER4 = 104
ATTR_SIZE_VER5 = 112
ATTR_SIZE_VER6 = 120
ATTR_SIZE_VER7 = 128
ATTR_SIZE_VER8 = 136

# ioctl request numbers ('$' = 0x24)
IOC_ENABLE = 0x2400
IOC_DISABLE = 0x2401
IOC_REFRESH = 0x2402
IOC_RESET = 0x2403
IOC_PERIOD = 0x40082404
IOC_SET_OUTPUT = 0x2405
IOC_SET_FILTER = 0x40082406
IOC_ID = 0x80082407
IOC_SET_BPF = 0x40042408
IOC_PAUSE_OUTPUT = 0x40042409
IOC_QUERY_BPF = 0xC008240A
IOC_MODIFY_ATTRIBUTES = 0x4008240B
IOC_FLAG_GROUP = 1

# x86_64 user registers (asm/perf_regs.h)
X86_64_REGS = (
    "ax", "bx", "cx", "dx", "si", "di", "bp", "sp", "ip", "flags", "cs", "ss", "ds", "es", "fs", "gs",
    "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
)


_RECORD_ENUMS = frozenset({"SampleType", "RecordType", "CpuMode", "CallchainContext"})


def __getattr__(name: str):
    if name in _RECORD_ENUMS:
        from hwprof.perf import abi_records

        return getattr(abi_records, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
