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
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from hwprof.perf.abi import CallchainContext
from hwprof.pipeline.arrays import prefix_tree, unique_inverse, unique_rows
from hwprof.pipeline.spaces import AddressSpaces
from hwprof.profile import FrameKind, ProfileBuilder, StackEnd

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

    chains: list[bytes]   # callchain entries of each row (u64 little-endian, context markers included)
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
        """Resolve and symbolize every unique (chain, pid, generation), all entries at once with numpy.

        Returns each row's leaf stack node and StackEnd, and the stack table (frame, parent) it built.
        """
        n_rows = len(rows.pid)
        rows_pid, rows_gen = rows.pid, rows.gen
        parts = rows.chains
        lengths = np.array([len(b) // 8 for b in parts], dtype=np.int64)
        # bytearray: one writable copy, so return addresses can become call sites in place
        flat = np.frombuffer(bytearray().join(parts), dtype="<u8") if parts else np.zeros(0, dtype=np.uint64)
        parts.clear()  # the caller's only copy of the chains: the joined entries replace it
        n = len(flat)
        row_start = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if n_rows else np.zeros(0, dtype=np.int64)
        # int32 indexes: tens of millions of callchain entries, and memory is what bounds a big decode.
        row_of = np.repeat(np.arange(n_rows, dtype=np.int32), lengths)
        # 1. Context of each entry: the last marker before it in its row (KERNEL, USER, ...).
        marker = flat >= np.uint64(_MARKER_MIN)
        last = (np.maximum.accumulate(np.where(marker, np.arange(n, dtype=np.int32), np.int32(-1))) if n
                else np.zeros(0, dtype=np.int32))
        in_row = last >= row_start[row_of] if n else np.zeros(0, dtype=bool)
        kernel = flat[np.maximum(last, 0)] == np.uint64(CallchainContext.KERNEL)
        kernel &= in_row
        # Entries before any marker: kernel only at a kernel address. A high address in a user context is junk
        # (a corrupt or unwound-too-far return address), never a kernel frame.
        kernel |= ~in_row & (flat >= np.uint64(_KERNEL_SPACE))
        del last, in_row
        frame_entry = ~marker
        zero = frame_entry & ~kernel & (flat == 0)
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
            caller &= flat != 0
            np.subtract(flat, np.uint64(1), out=flat, where=caller)
        del caller
        fe = np.nonzero(frame_entry)[0]
        # 2. One descriptor per distinct thing an entry can be: kernel address, (module, offset), JIT address.
        descs: list[FrameDesc] = []
        entry_desc = np.full(n, -1, dtype=np.int32)
        kidx = np.nonzero(frame_entry & kernel)[0]
        if len(kidx):
            kaddrs, kinv = unique_inverse(flat[kidx])
            chains = self._symbolize_kernel(kaddrs)
            entry_desc[kidx] = len(descs) + kinv.reshape(-1)
            descs += [FrameDesc(FrameKind.KERNEL, KERNEL_MODULE, a, c)
                      for a, c in zip(kaddrs.tolist(), chains, strict=True)]
        uidx = np.nonzero(frame_entry & ~kernel & ~zero)[0]
        if len(uidx):
            space_keys, row_space = unique_rows(np.stack([rows_pid, rows_gen], axis=1))
            self._user_descs(uidx, flat, row_space[row_of[uidx]], space_keys, descs, entry_desc)
        # 3. Frame ids of each descriptor (an inline chain gives several, innermost first).
        desc_frames: list[int] = []
        desc_off = np.zeros(len(descs) + 1, dtype=np.int64)
        desc_known = np.zeros(len(descs), dtype=bool)
        for d, desc in enumerate(descs):
            ids = self._intern(builder, desc)
            desc_frames.extend(ids)
            desc_off[d + 1] = desc_off[d] + len(ids)
            desc_known[d] = (desc.module is not None) if self.symbolizer is None else bool(
                desc.chain and desc.chain[-1].function is not None)
        desc_frames_arr = np.array(desc_frames, dtype=np.int32)
        used = np.nonzero(entry_desc >= 0)[0]
        ed = entry_desc[used]
        per = desc_off[ed + 1] - desc_off[ed]
        frames = desc_frames_arr[desc_off[ed]] if len(used) else np.zeros(0, np.int32)
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
                out_frames[start[sel] + k] = desc_frames_arr[desc_off[ed[sel]] + k]
                out_rows[start[sel] + k] = frame_row[sel]
            frames, frame_row = out_frames, out_rows
            del extra, start, out_frames, out_rows
        # 4. How each stack ended: at a known root frame, an unknown one, a zero frame pointer, or the depth limit.
        ends = np.full(n_rows, StackEnd.COMPLETE, dtype=np.uint8)
        if len(fe):
            last_entry = np.full(n_rows, -1, dtype=np.int64)
            fe_row = row_of[fe]  # nondecreasing: a row's last frame entry is where the row number changes next
            row_ends = np.empty(len(fe), dtype=bool)
            row_ends[-1] = True
            np.not_equal(fe_row[1:], fe_row[:-1], out=row_ends[:-1])
            last_entry[fe_row[row_ends]] = fe[row_ends]
            has = last_entry >= 0
            le = last_entry[has]
            known = np.where(entry_desc[le] >= 0, desc_known[np.maximum(entry_desc[le], 0)], False)
            ends[has] = np.where(known, StackEnd.COMPLETE, StackEnd.UNKNOWN_FRAME)
        if has_callchain:
            ends[count >= max_stack] = StackEnd.TRUNCATED
        else:
            ends[:] = StackEnd.NO_STACK
        ends[count == 0] = StackEnd.NO_STACK
        # The entry-sized arrays are done with: free them before the tree, the other big step.
        del flat, row_of, marker, kernel, frame_entry, zero, entry_desc, kidx, uidx, used, ed, per, fe
        n_frames = builder.n_frames + 1
        if rows.root is not None and np.any(rows.root >= 0):
            # A root frame above the outermost one (a probe's name when several probes share a profile): appended
            # after each row's frames, which are leaf first.
            with_root = np.nonzero(rows.root >= 0)[0]
            frames = np.concatenate([frames, rows.root[with_root]]).astype(np.int64)
            frame_row = np.concatenate([frame_row, with_root])
            order = np.argsort(frame_row, kind="stable")
            frames, frame_row = frames[order], frame_row[order]
        # 5. The prefix tree, one depth level at a time: leaf-first entries reversed to root-first.
        flen = np.bincount(frame_row, minlength=n_rows)
        del frame_row
        fstart = np.concatenate([[0], np.cumsum(flen)[:-1]]) if n_rows else np.zeros(0, dtype=np.int64)
        stack_frame, stack_parent, leaf = prefix_tree(frames, fstart, flen, builder_frames=n_frames)
        ends[leaf < 0] = StackEnd.NO_STACK
        return ResolvedStacks(leaf, ends, stack_frame, stack_parent)

    def _user_descs(self, uidx: np.ndarray, flat: np.ndarray, space_of: np.ndarray, space_keys: np.ndarray,
                    descs: list[FrameDesc], entry_desc: np.ndarray) -> None:
        """Descriptors for user addresses: resolved in their address space, symbolized per module in batches.

        Unique (space, address) pairs come from two 1-D uniques (addresses, then address index x space), which
        numpy does far faster than a unique over rows.
        """
        addr_u, addr_inv = unique_inverse(flat[uidx])
        addr_inv = addr_inv.reshape(-1)
        n_spaces = len(space_keys)
        if n_spaces == 1:
            pair_keys, inv = np.arange(len(addr_u), dtype=np.int64), addr_inv
        else:
            pair_keys, inv = unique_inverse(addr_inv * n_spaces + space_of)
            inv = inv.reshape(-1)
        pair_addr = addr_u[pair_keys // n_spaces] if n_spaces > 1 else addr_u
        pair_space = pair_keys % n_spaces if n_spaces > 1 else np.zeros(len(addr_u), dtype=np.int64)
        uniq = np.stack([np.zeros(len(pair_addr), dtype=np.int64), np.zeros(len(pair_addr), dtype=np.int64),
                         pair_addr.astype(np.int64)], axis=1)
        located_module: list[tuple[str, bytes | None] | None] = [None] * len(uniq)
        located_offset = np.zeros(len(uniq), dtype=np.uint64)
        jit_rows: dict[int, list[int]] = defaultdict(list)
        build_ids = self.build_ids
        for s_i, (pid, gen) in enumerate(space_keys.tolist()):
            members = np.nonzero(pair_space == s_i)[0]
            space = self.spaces.space(pid, gen)
            addrs = pair_addr[members].astype(np.uint64)
            idx = space.lookup(addrs)
            for row, addr, i in zip(members.tolist(), addrs.tolist(), idx.tolist(), strict=True):
                m = space.maps[i] if i >= 0 else None
                if m is None or m.filename == "//anon" or m.filename.startswith("/memfd:"):
                    jit_rows[pid].append(row)
                    continue
                located_module[row] = (m.filename, m.build_id or build_ids.get(m.filename))
                located_offset[row] = addr - m.start + m.pgoff
        row_desc = np.full(len(uniq), -1, dtype=np.int64)
        by_module: dict[tuple[str, bytes | None], list[int]] = defaultdict(list)
        for row, mod in enumerate(located_module):
            if mod is not None:
                by_module[mod].append(row)
        for (path, bid), rows in by_module.items():
            rows_arr = np.array(rows, dtype=np.int64)
            offs, off_inv = unique_inverse(located_offset[rows_arr])
            chains = self._symbolize_offsets(path, offs, bid)
            row_desc[rows_arr] = len(descs) + off_inv.reshape(-1)
            descs += [FrameDesc(FrameKind.USER, path, o, c) for o, c in zip(offs.tolist(), chains, strict=True)]
        for pid, rows in jit_rows.items():
            rows_arr = np.array(rows, dtype=np.int64)
            addrs = uniq[rows_arr, 2].astype(np.uint64)
            chains = self._symbolize_jit(pid, addrs)
            row_desc[rows_arr] = len(descs) + np.arange(len(rows_arr))
            for addr, chain in zip(addrs.tolist(), chains, strict=True):
                named = bool(chain) and chain[-1].function is not None
                descs.append(FrameDesc(FrameKind.JIT if named else FrameKind.UNKNOWN, JIT_MODULE if named else None,
                                       addr, chain))
        entry_desc[uidx] = row_desc[inv]

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
        path = jit_map_path(self.jit_dir, pid)
        if path is None:
            return [()] * len(addrs)
        return [tuple(c) for c in self.symbolizer.symbolize_jit(pid, addrs, path)]


def jit_map_path(jit_dir: str | None, pid: int) -> str | None:
    """A process's JIT map: a jitdump (jit-PID.dump: code-load records with sizes and unwind info), else
    /tmp/perf-PID.map. A capture with its own side directory uses only that (hwprof copied what was current while the
    process ran; /tmp may by now hold a later process's file for the same pid); without one, /tmp, as perf does."""
    folder = jit_dir if jit_dir is not None and os.path.isdir(jit_dir) else "/tmp"
    for name in (f"jit-{pid}.dump", f"perf-{pid}.map"):
        path = Path(folder) / name
        if path.is_file():
            return str(path)
    return None
