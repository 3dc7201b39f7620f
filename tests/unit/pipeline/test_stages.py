"""The per-sample stage seam, on a real capture: what stages see, how re-stacking and emitted samples flow through
the one stack resolution, and that a stage's stop codes decide how stacks ended."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hwprof.folded import profile_folded
from hwprof.perf.abi import CallchainContext, RecordType
from hwprof.pipeline import decode_file
from hwprof.pipeline.samples import UnwoundStacks
from hwprof.pipeline.stages import NOT_UNWOUND, EmittedSamples, Stage
from hwprof.profile import StackEnd

CAPTURE = Path(__file__).parent / "golden" / "hwprof.perf.data"
USER = int(CallchainContext.USER)


class Watcher(Stage):
    record_kinds = frozenset({RecordType.MMAP2, RecordType.EXIT})

    def __init__(self) -> None:
        self.samples = 0
        self.records: list[type] = []
        self.finished = False
        self.first_mapping = None

    def on_batch(self, batch):
        self.samples += len(batch)
        i = int(np.argmax(batch.pid > 0))
        space = batch.spaces.at(int(batch.pid[i]), int(batch.when[i]))
        chain = batch.callchain(i)
        user = chain[np.nonzero(chain == np.uint64(USER))[0][0] + 1] if np.any(chain == np.uint64(USER)) else None
        if user is not None and self.first_mapping is None:
            found = space.lookup(np.array([user], dtype=np.uint64))[0]
            self.first_mapping = space.maps[found].filename if found >= 0 else None

    def on_record(self, record, when):
        self.records.append(type(record).__name__)

    def finish(self, ctx):
        self.finished = True
        ctx.notes.append(f"watched {self.samples} samples")


def test_stages_see_every_sample_the_side_records_they_ask_for_and_finish():
    watcher = Watcher()
    profile = decode_file(CAPTURE, stages=[watcher])
    assert watcher.samples == profile.n_samples > 100
    assert set(watcher.records) == {"Mmap", "TaskEvent"}
    assert watcher.finished and f"watched {watcher.samples} samples" in profile.meta.notes
    assert watcher.first_mapping is not None  # the sample's address space at its time


class OneFrame(Stage):
    """Replaces every user stack with its leaf only, and says the walk stopped at the stack copy's end."""

    def on_batch(self, batch):
        leaves = []
        for i in range(len(batch)):
            chain = batch.callchain(i)
            user = np.nonzero(chain == np.uint64(USER))[0]
            leaves.append(chain[user[0] + 1: user[0] + 2] if len(user) else chain[:0])
        lengths = np.array([len(x) for x in leaves])
        batch.unwound = UnwoundStacks(np.concatenate(leaves).astype(np.uint64),
                                      np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                                      np.where(lengths > 0, 7, NOT_UNWOUND).astype(np.uint8))

    def stack_ends(self, ends, stop):
        return np.where(stop == 7, np.uint8(StackEnd.TRUNCATED), ends).astype(np.uint8)


def test_an_unwinding_stage_replaces_user_frames_and_its_stops_decide_the_ends():
    plain = decode_file(CAPTURE)
    cut = decode_file(CAPTURE, stages=[OneFrame()])
    assert cut.n_samples == plain.n_samples
    depth = [len(line.rsplit(" ", 1)[0].split(";")) for line in profile_folded(cut)]
    plain_depth = [len(line.rsplit(" ", 1)[0].split(";")) for line in profile_folded(plain)]
    assert max(depth) < max(plain_depth)
    assert np.count_nonzero(cut.sample_end == StackEnd.TRUNCATED) > cut.n_samples // 2


class Emitter(Stage):
    def __init__(self) -> None:
        self.chain = None
        self.pid = self.tid = self.time = 0

    def on_batch(self, batch):
        if self.chain is None and len(batch):
            self.chain = batch.callchain(0).copy()  # bytes of the batch die with it: keep a copy
            self.pid, self.tid, self.time = int(batch.pid[0]), int(batch.tid[0]), int(batch.time[0])

    def finish(self, ctx):
        # resolved in the address space of that process at that time: the time of the sample it copies
        ctx.emit(EmittedSamples("blocked", np.array([self.time] * 2, dtype=np.uint64), np.array([self.pid] * 2),
                                np.array([self.tid] * 2), np.array([-1, -1]), np.array([1000.0, 2000.0]),
                                [self.chain, self.chain]))


def test_emitted_samples_form_their_event_and_share_stack_resolution():
    plain = decode_file(CAPTURE)
    blocked = decode_file(CAPTURE, stages=[Emitter()], event="blocked")
    assert blocked.meta.events[0] == "blocked"
    assert blocked.n_samples == 2 and blocked.sample_period.tolist() == [1000.0, 2000.0]
    (line,) = list(profile_folded(blocked))
    first = plain.stack_frames(int(plain.sample_stack[np.argmin(plain.sample_time)]))
    assert line.rsplit(" ", 1)[0] == ";".join(plain.frame_label(f) for f in first)
