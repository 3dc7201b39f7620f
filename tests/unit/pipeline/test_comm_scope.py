"""--comm's stage: other processes' samples are dropped, counted, before any other stage sees them."""

from __future__ import annotations

from pathlib import Path

from hwprof.pipeline import decode_file
from hwprof.pipeline.scope import OUTSIDE_COMMS, CommScope
from hwprof.pipeline.stages import Stage

CAPTURE = Path(__file__).parent / "golden" / "hwprof.perf.data"  # 201 samples of one process, 'work'


class Counting(Stage):
    def __init__(self) -> None:
        self.samples = 0

    def on_batch(self, batch):
        self.samples += len(batch)


def test_the_named_programs_samples_are_all_kept():
    whole = decode_file(CAPTURE)
    scope = CommScope(["bash", "work"])
    kept = decode_file(CAPTURE, stages=[scope])
    assert scope.filtered == 0 and kept.n_samples == whole.n_samples == 201


def test_other_programs_samples_are_dropped_counted_and_never_reach_the_other_stages():
    later = Counting()
    scope = CommScope(["nginx"])
    profile = decode_file(CAPTURE, stages=[later, scope])  # a filter runs first wherever it is listed
    assert profile.n_samples == 0 and later.samples == 0
    assert scope.filtered == 201
    assert any(OUTSIDE_COMMS in note and "201" in note for note in profile.meta.notes), profile.meta.notes
