"""Stack resolution: unique callchains -> frames of the profile's prefix tree, and how each stack ended.

One path, one set of rules, for every producer (the sampler's captures, perf's files, probe stacks):
- context markers in a callchain say which entries are kernel and which user addresses;
- user addresses are resolved in the address space of their process as it was at the sample (spaces.py), to a
  (module, file offset), or to JIT code (anonymous or memfd mappings, or no mapping: /tmp/perf-PID.map);
- every unique thing an entry can be (a kernel address, a module offset, a JIT address) becomes one
  `FrameDesc`, symbolized per module in one batch through the `Symbolizer` protocol, and interned once;
- how a stack ended (StackEnd): at a known frame (complete), an unknown one, the depth limit (truncated), or
  no stack at all.

Everything runs on all entries of all unique stacks at once with numpy; the only per-item Python work is per
unique address (symbolizer results) and per descriptor (interning).

Core never imports hwprof.symbolize: the caller passes a symbolizer (hwprof.symbolize.Symbolizer in the CLI).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from hwprof.perf.abi import CallchainContext
from hwprof.pipeline.arrays import KeyIndex, prefix_tree, sorted_unique, unique_inverse, unique_rows
from hwprof.pipeline.chains import EncodedChains
from hwprof.pipeline.spaces import AddressSpaces
from hwprof.profile import FrameKind, ProfileBuilder, StackEnd
from hwprof.system.memory import release_free_memory

KERNEL_MODULE = "[kernel.kallsyms]"
JIT_MODULE = "[jit]"
_MARKER_MIN = int(CallchainContext.MAX)
_KERNEL_SPACE = 0xFFFF800000000000  # x86_64 and arm64 48-bit: kernel addresses live above this


class Symbolizer(Protocol):
    """What stack resolution asks of a symbolizer: an inline chain (innermost first) per address, or ()."""

    def symbolize_offsets(self, path: str, file_offsets: np.ndarray, build_id: bytes | None = None) -> list: ...

    def symbolize_kernel(self, addrs: np.ndarray) -> list: ...

    def symbolize_jit(self, pid: int, addrs: np.ndarray, perf_map_path: str | None = None) -> list: ...


@dataclass(frozen=True, slots=True)
class FrameDesc:
    """One distinct thing a callchain entry can be, with its symbolizer answer."""

    kind: FrameKind
    module: str | None   # path, KERNEL_MODULE, JIT_MODULE, or None when unknown
    address: int         # file offset (user), address (kernel, JIT, unknown)
    chain: tuple         # SymbolizedFrame-like, innermost first; () when unknown


@dataclass(frozen=True)
class UniqueStacks:
    """The rows to resolve: one per unique (callchain, address space)."""

    chains: EncodedChains  # the unique callchains (context markers included), released once resolved
    chain: np.ndarray     # int64 chain of each row
    pid: np.ndarray       # int64 process of each row
    gen: np.ndarray       # int64 its address-space generation (AddressSpaces.generations)
    root: np.ndarray | None = None  # int64 frame id to put above each row's outermost frame (-1: none)


@dataclass(frozen=True)
class ResolvedStacks:
    leaf: np.ndarray          # int64 leaf stack node of each row, -1 for a row without frames
    ends: np.ndarray          # uint8 StackEnd of each row
    stack_frame: np.ndarray   # int32 the prefix tree: frame of each node
    stack_parent: np.ndarray  # int32 parent node, -1 at the root


class StackResolver:
    """Resolves unique stacks against address spaces and names their frames with a symbolizer."""

    def __init__(self, spaces: AddressSpaces, symbolizer: Symbolizer | None, build_ids: dict[str, bytes] | None = None,
                 jit_dir: str | None = None) -> None:
        """`jit_dir`: where a capture's copies of /tmp/perf-PID.map live (else only /tmp is looked at)."""
        self.spaces = spaces
        self.symbolizer = symbolizer
        self.build_ids = build_ids or {}
        self.jit_dir = jit_dir

    def resolve(self, builder: ProfileBuilder, rows: UniqueStacks, max_stack: int,
                has_callchain: bool) -> ResolvedStacks:
        """Resolve and symbolize every unique (chain, pid, generation), streamed in blocks of rows.

        A block's entries are resolved with numpy at once; what they resolve to (descriptors) is remembered across
        blocks, so each distinct address is located and symbolized once. Each block's chains are freed as its
        frames (int32, no padding) are written: the entry-sized temporaries of only one block exist at a time, so
        the peak is the chains, the frames and the stack table, not a dozen arrays of every entry.
        Returns each row's leaf stack node and StackEnd, and the stack table (frame, parent) it built.
        """
        n_rows = len(rows.pid)
        chains = rows.chains
        lengths = chains.offsets[rows.chain + 1] - chains.offsets[rows.chain]
        space_keys, row_space = (unique_rows(np.stack([rows.pid, rows.gen], axis=1)) if n_rows
                                 else (np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.int64)))
        codes = _CodeTables(chains.values)
        found = _Descriptors(self, space_keys, codes.addresses)
        ends = np.full(n_rows, StackEnd.COMPLETE, dtype=np.uint8)
        count = np.zeros(n_rows, dtype=np.int64)   # frame entries per row (context markers left out)
        flen = np.zeros(n_rows, dtype=np.int64)    # frames per row (inline chains expanded, root label included)
        # Every row's frames, leaf first, row after row: provisional ids until interned (only the pages written
        # become resident, so the room for inline chains beyond one frame per entry costs nothing unused).
        # int16 while the ids fit (a capture's distinct frames are usually thousands), int32 once they do not.
        frames_out = np.empty(int(lengths.sum()) + n_rows, dtype=np.int16)
        written = 0
        root = rows.root if rows.root is not None and np.any(rows.root >= 0) else None
        for lo, hi in _blocks(lengths, _BLOCK_ENTRIES):
            block_len = lengths[lo:hi]
            first = chains.offsets[rows.chain[lo:hi]]
            entries = chains.codes[np.repeat(first - (np.cumsum(block_len) - block_len), block_len)
                                   + np.arange(int(block_len.sum()), dtype=np.int64)]
            block = self._resolve_block(entries, lengths[lo:hi], row_space[lo:hi], codes, found)
            del entries
            count[lo:hi] = block.count
            ends[lo:hi] = block.ends
            frames, frame_row = block.frames, block.frame_row
            del block
            if root is not None:
                # A root frame above the outermost one (a probe's name when several probes share a profile),
                # after each row's frames (leaf first); real frame ids are kept as -2 - id next to provisional ones.
                with_root = np.nonzero(root[lo:hi] >= 0)[0]
                frames = np.concatenate([frames, -2 - root[lo:hi][with_root]]).astype(np.int64)
                frame_row = np.concatenate([frame_row, with_root])
                order = np.argsort(frame_row, kind="stable")
                frames, frame_row = frames[order], frame_row[order]
            flen[lo:hi] = np.bincount(frame_row, minlength=hi - lo)
            wide = len(frames) and frames_out.dtype == np.int16 and not _fits_int16(frames)
            if written + len(frames) > len(frames_out) or wide:  # inline chains beyond the room, or wider ids
                grown = np.empty(max(len(frames_out), written + len(frames)) if wide else
                                 max(2 * len(frames_out), written + len(frames)),
                                 dtype=np.int32 if wide else frames_out.dtype)
                grown[:written] = frames_out[:written]
                frames_out = grown
            frames_out[written:written + len(frames)] = frames
            written += len(frames)
            del frames, frame_row
        chains.release()
        release_free_memory()  # the blocks' temporaries and the chains: their pages, before the table's
        # Frames are interned in the order one pass over every entry would have found them: ids do not depend on
        # the block size.
        lut = found.intern(builder)
        frames_out = frames_out[:written]
        if frames_out.dtype == np.int16 and not _fits_int16(lut):
            frames_out = frames_out.astype(np.int32)
        for at in range(0, written, _BLOCK_ENTRIES):
            chunk = frames_out[at:at + _BLOCK_ENTRIES]
            chunk[:] = np.where(chunk >= 0, lut[np.maximum(chunk, 0)], -2 - chunk)
        if has_callchain:
            ends[count >= max_stack] = StackEnd.TRUNCATED
        else:
            ends[:] = StackEnd.NO_STACK
        ends[count == 0] = StackEnd.NO_STACK
        start = np.cumsum(flen) - flen
        stack_frame, stack_parent, leaf = prefix_tree(frames_out, start, flen, builder_frames=builder.n_frames + 1)
        ends[leaf < 0] = StackEnd.NO_STACK
        return ResolvedStacks(leaf, ends, stack_frame, stack_parent)

    def _resolve_block(self, entries: np.ndarray, lengths: np.ndarray, row_space: np.ndarray, codes: _CodeTables,
                       found: _Descriptors) -> _Block:
        """One block of rows (their entries as value codes): entries -> descriptors -> provisional frame ids, and
        how each row ended."""
        n_rows = len(lengths)
        n = len(entries)
        row_start = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if n_rows else np.zeros(0, dtype=np.int64)
        row_of = np.repeat(np.arange(n_rows, dtype=np.int32), lengths)
        # 1. Context of each entry: the last marker before it in its row (KERNEL, USER, ...).
        marker = codes.marker[entries]
        last = (np.maximum.accumulate(np.where(marker, np.arange(n, dtype=np.int32), np.int32(-1))) if n
                else np.zeros(0, dtype=np.int32))
        in_row = last >= row_start[row_of] if n else np.zeros(0, dtype=bool)
        kernel = entries[np.maximum(last, 0)] == codes.kernel_marker
        kernel &= in_row
        # Entries before any marker: kernel only at a kernel address. A high address in a user context is junk
        # (a corrupt or unwound-too-far return address), never a kernel frame.
        kernel |= ~in_row & codes.high[entries]
        del last, in_row
        frame_entry = ~marker
        null = entries == codes.zero
        zero = frame_entry & ~kernel & null
        count = np.bincount(row_of[frame_entry], minlength=n_rows)
        # A context's first frame is where that context was interrupted (the sample's pc, or the user pc at kernel
        # entry); every later frame is a return address: the call is the instruction before it (else the function
        # or inlined call that follows the call gets the blame), as perf and pprof look callers up.
        # A caller is a frame entry right after another frame entry of the same row (a marker between them starts
        # a new context).
        caller = np.zeros(n, dtype=bool)
        if n:
            np.logical_and(frame_entry[1:], frame_entry[:-1], out=caller[1:])
            caller[row_start[lengths > 0]] = False
            caller &= ~null
        # The address looked up: the value, or the value - 1 of a caller (codes.address_of: one per both).
        address = codes.address_of[entries.astype(np.int64) * 2 + caller]
        del caller, null
        # 2. The descriptor of each entry: a kernel address, or a user address in its row's address space.
        entry_desc = np.full(n, -1, dtype=np.int64)
        kidx = np.nonzero(frame_entry & kernel)[0]
        if len(kidx):
            entry_desc[kidx] = found.kernel(address[kidx])
        uidx = np.nonzero(frame_entry & ~kernel & ~zero)[0]
        if len(uidx):
            entry_desc[uidx] = found.user(address[uidx], row_space[row_of[uidx]])
        del kidx, uidx, kernel, zero, address
        # 3. Provisional frame ids of each entry (an inline chain gives several, innermost first).
        first_frame, frame_count, desc_known = found.arrays()
        used = np.nonzero(entry_desc >= 0)[0]
        ed = entry_desc[used]
        per = frame_count[ed]
        frames = first_frame[ed]
        frame_row = row_of[used]
        multi = np.nonzero(per > 1)[0]
        if len(multi):
            # Inline chains: an entry gives several frames. Few entries do, so the one-frame entries are placed
            # with one cumulative sum and only the extra frames are written per inline depth.
            extra = (per - 1).astype(np.int64)
            start = np.arange(len(used), dtype=np.int64) + np.cumsum(extra) - extra
            total = len(used) + int(extra.sum())
            out_frames = np.empty(total, dtype=frames.dtype)
            out_rows = np.empty(total, dtype=frame_row.dtype)
            out_frames[start] = frames
            out_rows[start] = frame_row
            for k in range(1, int(per.max())):
                sel = multi[per[multi] > k]
                out_frames[start[sel] + k] = frames[sel] + k
                out_rows[start[sel] + k] = frame_row[sel]
            frames, frame_row = out_frames, out_rows
            del extra, start, out_frames, out_rows
        # 4. How each stack ended (before the depth limit): at a known root frame or an unknown one.
        ends = np.full(n_rows, StackEnd.COMPLETE, dtype=np.uint8)
        fe = np.nonzero(frame_entry)[0]
        if len(fe):
            last_entry = np.full(n_rows, -1, dtype=np.int64)
            fe_row = row_of[fe]  # nondecreasing: a row's last frame entry is where the row number changes next
            row_ends = np.empty(len(fe), dtype=bool)
            row_ends[-1] = True
            np.not_equal(fe_row[1:], fe_row[:-1], out=row_ends[:-1])
            last_entry[fe_row[row_ends]] = fe[row_ends]
            has = last_entry >= 0
            le = entry_desc[last_entry[has]]
            known = np.where(le >= 0, desc_known[np.maximum(le, 0)], False)
            ends[has] = np.where(known, StackEnd.COMPLETE, StackEnd.UNKNOWN_FRAME)
        return _Block(frames.astype(np.int64), frame_row.astype(np.int64), count, ends)

    @staticmethod
    def _intern(builder: ProfileBuilder, desc: FrameDesc) -> list[int]:
        """Frame ids for one address, innermost (inlined) first, as a stack walked leaf first needs them."""
        kind, module, address, chain = desc.kind, desc.module, desc.address, desc.chain
        if not chain:
            return [builder.frame(function=None, module=module, address=address, kind=kind)]
        return [builder.frame(function=f.function, module=module if f.function is None else f.module or module,
                              address=address, kind=kind, file=f.file, line=f.line or 0, inlined=f.inlined)
                for f in chain]

    # --- symbolizer calls, degrading to "module+offset" ---------------------------------------------
    def _symbolize_offsets(self, path: str, offsets: np.ndarray, build_id: bytes | None) -> list[tuple]:
        if self.symbolizer is None:
            return [()] * len(offsets)
        return [tuple(c) for c in self.symbolizer.symbolize_offsets(path, offsets, build_id)]

    def _symbolize_kernel(self, addrs: np.ndarray) -> list[tuple]:
        if self.symbolizer is None:
            return [()] * len(addrs)
        return [tuple(c) for c in self.symbolizer.symbolize_kernel(addrs)]

    def _symbolize_jit(self, pid: int, addrs: np.ndarray) -> list[tuple]:
        if self.symbolizer is None or pid <= 0:
            return [()] * len(addrs)
        path = jit_map_path(self.jit_dir, pid, lambda: self.spaces.mapped_names(pid))
        if path is None:
            return [()] * len(addrs)
        return [tuple(c) for c in self.symbolizer.symbolize_jit(pid, addrs, path)]


def jit_map_path(jit_dir: str | None, pid: int,
                 mapped: Iterable[str] | Callable[[], Iterable[str]] = ()) -> str | None:
    """A process's JIT map: a jitdump (jit-PID.dump: code-load records with sizes and unwind info), else
    /tmp/perf-PID.map. A capture with its own side directory uses only that (hwprof copied what was current while the
    process ran, jitdumps found elsewhere too; /tmp may by now hold a later process's file for the same pid).
    Without one (perf's captures): first a jitdump the process mapped (`mapped`: the files its MMAP records name;
    Node writes its jitdump into its working directory), which is proof it is this process's; then /tmp, as perf
    does, where a perf map left by an earlier process with the same pid cannot be told from this one's. `mapped`
    may be a function giving them: called only when needed (it parses every mapping of the process)."""
    if jit_dir is not None and os.path.isdir(jit_dir):
        candidates = [Path(jit_dir) / f"jit-{pid}.dump", Path(jit_dir) / f"perf-{pid}.map"]
    else:
        names = mapped() if callable(mapped) else mapped
        candidates = [Path(path) for path in names if os.path.basename(path) == f"jit-{pid}.dump"]
        candidates += [Path(f"/tmp/jit-{pid}.dump"), Path(f"/tmp/perf-{pid}.map")]
    for path in candidates:
        if path.is_file():
            return str(path)
    return None


_BLOCK_ENTRIES = 1 << 18  # callchain entries resolved at a time: ~10 MB of temporaries, whatever the capture


def _fits_int16(ids: np.ndarray) -> bool:
    """Whether frame ids (and -2 - id root codes) fit int16."""
    return not len(ids) or (int(ids.max()) < 2**15 and int(ids.min()) >= -(2**15))


def _blocks(lengths: np.ndarray, entries: int) -> list[tuple[int, int]]:
    """(first row, row after the last) of consecutive blocks of about `entries` entries (at least one row)."""
    ends = np.cumsum(lengths)
    out = []
    lo = 0
    while lo < len(lengths):
        before = int(ends[lo] - lengths[lo])
        hi = max(int(np.searchsorted(ends, before + entries, side="right")), lo + 1)
        out.append((lo, hi))
        lo = hi
    return out


class _CodeTables:
    """Facts about each distinct entry value, looked up by code: whether it is a context marker, a kernel-space
    address, and the address it stands for as a frame (the value itself, or value - 1 where it is a return
    address), as an index into the sorted distinct addresses."""

    def __init__(self, values: np.ndarray) -> None:
        n = len(values)
        self.marker = values >= np.uint64(_MARKER_MIN)
        self.high = values >= np.uint64(_KERNEL_SPACE)
        self.kernel_marker = _code_of(values, CallchainContext.KERNEL)
        self.zero = _code_of(values, 0)
        # code * 2: the value; code * 2 + 1: the value - 1 (a call site; never asked of a zero entry)
        both = np.stack([values, values - (values > 0).astype(np.uint64)], axis=1).reshape(-1)
        self.addresses, inverse = unique_inverse(both) if n else (np.zeros(0, dtype=np.uint64),
                                                                    np.zeros(0, dtype=np.int64))
        self.address_of = inverse.reshape(-1)


def _code_of(values: np.ndarray, value: int) -> int:
    """The code of one value, or len(values) (a code no entry has) when no entry has it."""
    at = np.nonzero(values == np.uint64(value))[0]
    return int(at[0]) if len(at) else len(values)


@dataclass(frozen=True)
class _Block:
    frames: np.ndarray     # int64 provisional frame ids, leaf first per row, rows in order
    frame_row: np.ndarray  # int64 row (in the block) of each frame
    count: np.ndarray      # int64 frame entries per row
    ends: np.ndarray       # uint8 StackEnd per row from its last frame (complete or unknown)


class _Descriptors:
    """Every distinct thing the entries resolved so far are (kernel address, module offset, JIT address), found
    block by block: each is located and symbolized once, when first met. Descriptors get ids in the order found
    and provisional frame ids (`first frame + k` for the k-th frame of its inline chain); `intern` makes them real
    frames in one canonical order (kernel by address; user by module, modules in order of their lowest
    (address, space), offsets ascending; JIT by space and address), the order a single pass over every entry
    would give, so frame ids do not depend on how the rows were cut into blocks."""

    def __init__(self, resolver: StackResolver, space_keys: np.ndarray, addresses: np.ndarray) -> None:
        self.resolver = resolver
        self.space_keys = space_keys.tolist()
        self.addresses = addresses       # sorted distinct addresses: entries come as indexes into it
        self.descs: list[FrameDesc] = []
        self.order: list[tuple] = []     # canonical sort key of each descriptor (user: filled in by intern)
        self.first: list[int] = []       # provisional id of each descriptor's first frame
        self.count: list[int] = []       # its frames
        self.known: list[bool] = []      # whether a stack ending at it ends at a known frame
        self.n_frames = 0
        self._kernel = np.full(len(addresses), -1, dtype=np.int32)  # kernel address -> descriptor
        self._user = np.full(len(addresses) if len(space_keys) == 1 else 0, -1, dtype=np.int32)  # one space
        self._pairs = KeyIndex()         # several spaces: address * spaces + space -> descriptor
        self._module_desc: dict[tuple[str, bytes | None, int], int] = {}
        self._module_first: dict[tuple[str, bytes | None], tuple[int, int]] = {}
        self._module_of: dict[int, tuple[str, bytes | None]] = {}
        self._arrays: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def _add(self, desc: FrameDesc, order: tuple) -> int:
        d = len(self.descs)
        self.descs.append(desc)
        self.order.append(order)
        frames = max(1, len(desc.chain))
        self.first.append(self.n_frames)
        self.count.append(frames)
        self.n_frames += frames
        self.known.append((desc.module is not None) if self.resolver.symbolizer is None else bool(
            desc.chain and desc.chain[-1].function is not None))
        self._arrays = None
        return d

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(first provisional frame, frames, known) per descriptor."""
        if self._arrays is None:
            self._arrays = (np.array(self.first, dtype=np.int64), np.array(self.count, dtype=np.int64),
                            np.array(self.known, dtype=bool))
        return self._arrays

    def kernel(self, address: np.ndarray) -> np.ndarray:
        """Descriptor of each kernel address (index into `addresses`); new ones are symbolized in one batch."""
        desc = self._kernel[address]
        missing = desc < 0
        if missing.any():
            new = sorted_unique(address[missing])
            addrs = self.addresses[new]
            chains = self.resolver._symbolize_kernel(addrs)
            self._kernel[new] = [self._add(FrameDesc(FrameKind.KERNEL, KERNEL_MODULE, a, c), (0, a))
                                 for a, c in zip(addrs.tolist(), chains, strict=True)]
            desc = self._kernel[address]
        return desc

    def user(self, address: np.ndarray, space: np.ndarray) -> np.ndarray:
        """Descriptor of each user address (index into `addresses`) in its address space (index into space_keys)."""
        n_spaces = len(self.space_keys)
        if n_spaces == 1:
            desc = self._user[address]
            missing = desc < 0
            if missing.any():
                new = sorted_unique(address[missing])
                self._user[new] = self._locate(self.addresses[new].tolist(), [0] * len(new))
                desc = self._user[address]
            return desc
        key = (address.astype(np.int64) * n_spaces + space).astype(np.uint64)
        desc = self._pairs.lookup(key)
        missing = desc < 0
        if missing.any():
            new = sorted_unique(key[missing])
            pair_addr = self.addresses[(new // np.uint64(n_spaces)).astype(np.int64)].tolist()
            pair_space = (new % np.uint64(n_spaces)).astype(np.int64).tolist()
            self._pairs.add(new, np.array(self._locate(pair_addr, pair_space), dtype=np.int32))
            desc[missing] = self._pairs.lookup(key[missing])
        return desc

    def _locate(self, pair_addr: list[int], pair_space: list[int]) -> list[int]:
        """Descriptors of new (address, space) pairs: located in their address space, symbolized per module in
        batches (a module offset met before in another space reuses its descriptor)."""
        out = [-1] * len(pair_addr)
        new_offsets: dict[tuple[str, bytes | None], list[int]] = defaultdict(list)
        waiting: dict[tuple[str, bytes | None, int], list[int]] = defaultdict(list)
        jit: dict[int, list[int]] = defaultdict(list)
        by_space: dict[int, list[int]] = defaultdict(list)
        for i, s in enumerate(pair_space):
            by_space[s].append(i)
        build_ids = self.resolver.build_ids
        for s, members in by_space.items():
            pid, gen = self.space_keys[s]
            space = self.resolver.spaces.space(pid, gen)
            addrs = [pair_addr[i] for i in members]
            idx = space.lookup(np.array(addrs, dtype=np.uint64))
            for i, addr, at in zip(members, addrs, idx.tolist(), strict=True):
                m = space.maps[at] if at >= 0 else None
                if m is None or m.filename == "//anon" or m.filename.startswith("/memfd:"):
                    jit[s].append(i)
                    continue
                module = (m.filename, m.build_id or build_ids.get(m.filename))
                first = self._module_first.get(module)
                if first is None or (addr, s) < first:
                    self._module_first[module] = (addr, s)
                offset = addr - m.start + m.pgoff
                key = (*module, offset)
                d = self._module_desc.get(key)
                if d is not None:
                    out[i] = d
                    continue
                if key not in waiting:
                    new_offsets[module].append(offset)
                waiting[key].append(i)
        for module, offsets in new_offsets.items():
            offs = np.array(sorted(offsets), dtype=np.uint64)
            chains = self.resolver._symbolize_offsets(module[0], offs, module[1])
            for offset, chain in zip(offs.tolist(), chains, strict=True):
                d = self._add(FrameDesc(FrameKind.USER, module[0], offset, chain), ())
                self._module_of[d] = module
                self._module_desc[(*module, offset)] = d
                for i in waiting[(*module, offset)]:
                    out[i] = d
        for s, members in jit.items():
            pid = self.space_keys[s][0]
            addrs = np.array([pair_addr[i] for i in members], dtype=np.uint64)
            chains = self.resolver._symbolize_jit(pid, addrs)
            for i, addr, chain in zip(members, addrs.tolist(), chains, strict=True):
                named = bool(chain) and chain[-1].function is not None
                out[i] = self._add(FrameDesc(FrameKind.JIT if named else FrameKind.UNKNOWN,
                                             JIT_MODULE if named else None, addr, chain), (2, s, addr))
        return out

    def intern(self, builder: ProfileBuilder) -> np.ndarray:
        """Intern every descriptor's frames in the canonical order; provisional frame id -> frame id."""
        for d, module in self._module_of.items():
            self.order[d] = (1, self._module_first[module], self.descs[d].address)
        lut = np.zeros(max(self.n_frames, 1), dtype=np.int32)
        for d in sorted(range(len(self.descs)), key=self.order.__getitem__):
            ids = StackResolver._intern(builder, self.descs[d])
            lut[self.first[d]:self.first[d] + len(ids)] = ids
        return lut
