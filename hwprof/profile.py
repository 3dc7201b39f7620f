"""The profile model: samples, unique stacks and frames, columnar in numpy arrays.

Why columnar: a capture of millions of samples shares a few thousand stacks. Stacks are a prefix tree
(the "stack table" of the Firefox Profiler): stack i is (frame_of[i], parent_of[i]), parent -1 at the root,
so identical stacks are stored once and a flame graph is a walk over this table. Every string (function,
module, file, comm) lives once in `strings` and is referenced by index.

Producers (the sampler's decoder, the probe collector) build a Profile with ProfileBuilder; consumers (report,
web) read the arrays. Serialised to one .npz file (numpy, no pickle) so the web view never needs perf access.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from pathlib import Path

import numpy as np

from hwprof.errors import HwprofError
from hwprof.units import Nanoseconds

# 2: group-read deltas are raw (1 scaled them by enabled/running and inflated them), stacks resolve callers at
# their call site, StackEnd gained the unwinder's stop reasons, sample_state: a cache written before is decoded again.
FORMAT_VERSION = 2


class FrameKind(IntEnum):
    UNKNOWN = 0
    USER = 1
    KERNEL = 2
    JIT = 3
    GUEST = 4
    OFFCPU = 5  # a marker frame of off-CPU profiles: the task state, the waker separator (hwprof.offcpu.views)


class StackEnd(IntEnum):
    """How a sample's stack ended: the input to the stack-quality meter."""

    COMPLETE = 0      # ended at a symbolized frame (complete when that frame is a real bottom: definitions)
    TRUNCATED = 1     # hit --max-stack or the kernel's perf_event_max_stack, or the dwarf stack copy ran out
    UNKNOWN_FRAME = 2  # ended in a frame that could not be mapped/symbolized
    NO_STACK = 3      # the sample has no callchain at all
    # --call-graph dwarf: why the unwinder stopped (hwprof.unwind.walk.StopReason, folded by the dwarf stage)
    BOTTOM = 4        # the unwinder reached the stack's real bottom (the CFI says there is no caller)
    NO_CFI = 5        # code without unwind info (or a rule the unwinder does not evaluate), no frame pointer
    FP_ZERO = 6       # the frame-pointer fallback met rbp == 0
    UNKNOWN_MAPPING = 7  # an address in no mapping of the process
    JIT_NO_UNWIND = 8    # JIT code without unwind info


@dataclass(frozen=True)
class ProfileMeta:
    """What was recorded, how, and how well. All times in nanoseconds."""

    target: str = ""
    command: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)       # sampling event(s), leader first
    weight_names: list[str] = field(default_factory=list)  # columns of Profile.counters (group members)
    start_time_ns: Nanoseconds = 0
    duration_ns: Nanoseconds = 0
    lost: int = 0
    hostname: str = ""
    os_release: str = ""
    source: str = ""            # "hwprof record", "perf record", "hwprof probe"
    notes: list[str] = field(default_factory=list)  # warnings worth showing next to the profile

    @classmethod
    def from_dict(cls, data: dict) -> ProfileMeta:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True)
class Profile:
    """Immutable once built: fields cannot be re-bound and the arrays are read-only. A changed profile is a new
    one (`select(keep)` for a subset of the samples, dataclasses.replace for anything else)."""

    meta: ProfileMeta
    strings: list[str]
    # frames
    frame_function: np.ndarray   # int32 string index; -1 when unknown
    frame_module: np.ndarray     # int32 string index; -1 when unknown
    frame_address: np.ndarray    # uint64 file offset (user) / address (kernel, jit) looked up
    frame_file: np.ndarray       # int32 string index; -1
    frame_line: np.ndarray       # int32; 0 when unknown
    frame_kind: np.ndarray       # uint8 FrameKind
    frame_inlined: np.ndarray    # bool: an inlined call inside its parent frame
    # stack table (prefix tree)
    stack_frame: np.ndarray      # int32 frame index
    stack_parent: np.ndarray     # int32 parent stack index or -1
    # samples
    sample_time: np.ndarray      # uint64 ns (perf clock)
    sample_pid: np.ndarray       # int32
    sample_tid: np.ndarray       # int32
    sample_cpu: np.ndarray       # int32 (-1 unknown)
    sample_stack: np.ndarray     # int32 leaf stack index, -1 when the sample has no frames
    sample_period: np.ndarray    # float64 weight in units of the sampling event
    sample_end: np.ndarray       # uint8 StackEnd
    counters: np.ndarray         # float64 (n_samples, len(meta.weight_names)): counter deltas per sample
    threads: dict[int, str] = field(default_factory=dict)  # tid -> comm
    # How many samples each row stands for, in an aggregated profile (the fleet store merges windows into one row
    # per time bin and stack); None: every row is one sample. Not saved to .npz: aggregated profiles are queried.
    sample_count: np.ndarray | None = None
    # uint8 hwprof.offcpu.pairing.OffCpuState per sample (0: on-CPU); None for profiles without off-CPU samples
    sample_state: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in self._ARRAYS + ("sample_state",):
            value = getattr(self, name)
            if isinstance(value, np.ndarray) and value.flags.writeable:
                value.flags.writeable = False

    # --- sizes --------------------------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        """Rows of the sample columns (samples, or aggregated rows: see sample_count)."""
        return int(self.sample_stack.shape[0])

    def sample_counts(self) -> np.ndarray:
        """Samples per row: ones for a capture, the merged counts for an aggregated profile."""
        if self.sample_count is None:
            return np.ones(self.n_samples)
        return self.sample_count.astype(np.float64)

    @property
    def total_samples(self) -> int:
        return self.n_samples if self.sample_count is None else int(self.sample_count.sum())

    def string(self, index: int) -> str | None:
        return None if index < 0 else self.strings[index]

    def frame_label(self, frame: int) -> str:
        """The name a user sees: function, else module+0xoffset, else [unknown]."""
        fn = int(self.frame_function[frame])
        if fn >= 0:
            return self.strings[fn]
        mod = int(self.frame_module[frame])
        if mod >= 0:
            return f"{Path(self.strings[mod]).name}+{int(self.frame_address[frame]):#x}"
        return "[unknown]"

    def select(self, keep: np.ndarray) -> Profile:
        """The profile restricted to the samples where `keep` is True; frames and stacks stay, so frame and stack
        ids are those of the whole profile."""
        from dataclasses import replace

        n = self.n_samples
        counters = self.counters.reshape(n, -1)[keep] if n else self.counters
        state = self.sample_state[keep] if self.sample_state is not None else None
        count = self.sample_count[keep] if self.sample_count is not None else None
        return replace(self, sample_time=self.sample_time[keep], sample_pid=self.sample_pid[keep],
                       sample_tid=self.sample_tid[keep], sample_cpu=self.sample_cpu[keep],
                       sample_stack=self.sample_stack[keep], sample_period=self.sample_period[keep],
                       sample_end=self.sample_end[keep], counters=counters, sample_state=state,
                       sample_count=count)

    def stack_frames(self, stack: int) -> list[int]:
        """Frames of a stack, root first."""
        out = []
        while stack >= 0:
            out.append(int(self.stack_frame[stack]))
            stack = int(self.stack_parent[stack])
        out.reverse()
        return out

    # --- storage ------------------------------------------------------------------------------------
    _ARRAYS = (
        "frame_function", "frame_module", "frame_address", "frame_file", "frame_line", "frame_kind",
        "frame_inlined", "stack_frame", "stack_parent", "sample_time", "sample_pid", "sample_tid",
        "sample_cpu", "sample_stack", "sample_period", "sample_end", "counters",
    )  # fmt: skip

    def save(self, path: str | Path) -> None:
        header = {
            "version": FORMAT_VERSION,
            "meta": asdict(self.meta),
            "strings": self.strings,
            "threads": {str(k): v for k, v in self.threads.items()},
        }
        arrays = {name: getattr(self, name) for name in self._ARRAYS}
        if self.sample_state is not None:
            arrays["sample_state"] = self.sample_state
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        tmp = Path(f"{path}.tmp")
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> Profile:
        try:
            with np.load(path, allow_pickle=False) as data:
                header = json.loads(bytes(data["header"]).decode())
                if header.get("version") != FORMAT_VERSION:
                    raise HwprofError(f"{path}: profile format {header.get('version')} is not {FORMAT_VERSION}")
                arrays = {name: data[name] for name in cls._ARRAYS}
                if "sample_state" in data:
                    arrays["sample_state"] = data["sample_state"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, io.UnsupportedOperation) as exc:
            raise HwprofError(f"cannot read profile {path}: {exc}") from None
        return cls(
            meta=ProfileMeta.from_dict(header["meta"]),
            strings=header["strings"],
            threads={int(k): v for k, v in header["threads"].items()},
            **arrays,
        )


@dataclass(frozen=True)
class SampleArrays:
    """The per-sample columns of a Profile, for producers that build them with numpy (the decoder)."""

    time: np.ndarray      # uint64
    pid: np.ndarray       # int32
    tid: np.ndarray       # int32
    cpu: np.ndarray       # int32
    stack: np.ndarray     # int32
    period: np.ndarray    # float64
    end: np.ndarray       # uint8
    counters: np.ndarray  # float64 (n, weights)
    state: np.ndarray | None = None  # uint8 hwprof.offcpu.pairing.OffCpuState; None when every sample is on-CPU

    def take(self, index: np.ndarray) -> SampleArrays:
        """The samples at `index` (a permutation, a selection or a boolean mask), in that order."""
        return SampleArrays(*(None if getattr(self, name) is None else getattr(self, name)[index]
                              for name in self.__dataclass_fields__))


class ProfileBuilder:
    """Interns strings, frames and stacks while a producer walks its samples, then freezes to a Profile."""

    def __init__(self, meta: ProfileMeta) -> None:
        self.meta = meta
        self._strings: dict[str, int] = {}
        self._frames: dict[tuple, int] = {}
        self._frame_rows: list[tuple[int, int, int, int, int, int, bool]] = []
        self._stacks: dict[tuple[int, int], int] = {}
        self._stack_rows: list[tuple[int, int]] = []
        self._samples: list[tuple[int, int, int, int, int, float, int]] = []
        self._counters: list[list[float]] = []
        self.threads: dict[int, str] = {}

    @property
    def n_frames(self) -> int:
        return len(self._frame_rows)

    def intern(self, text: str | None) -> int:
        if text is None:
            return -1
        index = self._strings.get(text)
        if index is None:
            index = self._strings[text] = len(self._strings)
        return index

    def frame(self, *, function: str | None, module: str | None, address: int, kind: FrameKind,
              file: str | None = None, line: int = 0, inlined: bool = False) -> int:
        key = (function, module, address, file, line, int(kind), inlined)
        index = self._frames.get(key)
        if index is None:
            index = self._frames[key] = len(self._frame_rows)
            self._frame_rows.append((self.intern(function), self.intern(module), address, self.intern(file),
                                     line or 0, int(kind), inlined))
        return index

    def stack(self, frames_root_first: list[int]) -> int:
        parent = -1
        for frame in frames_root_first:
            key = (frame, parent)
            node = self._stacks.get(key)
            if node is None:
                node = self._stacks[key] = len(self._stack_rows)
                self._stack_rows.append(key)
            parent = node
        return parent

    def sample(self, *, time: int, pid: int, tid: int, cpu: int, stack: int, period: float,
               end: StackEnd = StackEnd.COMPLETE, counters: list[float] | None = None) -> None:
        self._samples.append((time, pid, tid, cpu, stack, period, int(end)))
        if self.meta.weight_names:
            self._counters.append(counters or [0.0] * len(self.meta.weight_names))

    def build_from_columns(self, stack_frame: np.ndarray, stack_parent: np.ndarray,
                           samples: SampleArrays) -> Profile:
        """The Profile of the interned frames with a stack table and samples built as arrays elsewhere."""
        frames = self._frame_cols()
        return Profile(meta=self.meta, strings=list(self._strings), **frames, stack_frame=stack_frame,
                       stack_parent=stack_parent, sample_time=samples.time, sample_pid=samples.pid,
                       sample_tid=samples.tid, sample_cpu=samples.cpu, sample_stack=samples.stack,
                       sample_period=samples.period, sample_end=samples.end, counters=samples.counters,
                       threads=dict(self.threads), sample_state=samples.state)

    def _frame_cols(self) -> dict[str, np.ndarray]:
        frames = self._frame_rows

        def col(i: int, dtype: str) -> np.ndarray:
            return np.fromiter((r[i] for r in frames), dtype=dtype, count=len(frames))

        return {"frame_function": col(0, "int32"), "frame_module": col(1, "int32"),
                "frame_address": col(2, "uint64"), "frame_file": col(3, "int32"), "frame_line": col(4, "int32"),
                "frame_kind": col(5, "uint8"), "frame_inlined": col(6, "bool")}

    def build(self) -> Profile:
        samples = self._samples
        width = len(self.meta.weight_names)

        def col(rows: list[tuple], i: int, dtype: str) -> np.ndarray:
            return np.fromiter((r[i] for r in rows), dtype=dtype, count=len(rows))

        columns = SampleArrays(
            time=col(samples, 0, "uint64"), pid=col(samples, 1, "int32"), tid=col(samples, 2, "int32"),
            cpu=col(samples, 3, "int32"), stack=col(samples, 4, "int32"), period=col(samples, 5, "float64"),
            end=col(samples, 6, "uint8"),
            counters=np.array(self._counters, dtype="float64").reshape(len(samples), width))
        return self.build_from_columns(col(self._stack_rows, 0, "int32"), col(self._stack_rows, 1, "int32"),
                                       columns)
