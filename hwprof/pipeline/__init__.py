"""The capture pipeline: record-stream walk -> per-sample stages -> stack resolution -> Profile.

    walk.py      RecordWalk: one walk over ring buffers and perf.data alike, typed callbacks (RecordHandler)
    spaces.py    AddressSpaces: each process's mappings at any moment of the capture
    samples.py   SampleBatch (one event, one stretch of stream, as numpy columns), SampleColumns
    stages.py    Stage: the per-sample seam (unwinding, off-CPU pairing), FinishContext, UnwindStop
    stacks.py    StackResolver: unique callchains -> frames and StackEnd; the Symbolizer protocol
    counters.py  per-sample counter deltas from group reads
    arrays.py    numpy building blocks (uniques with inverse, row uniques, prefix trees)
    decode.py    the driver: perf.data -> Profile (decode_file)
    stored.py    load_profile: the store's cached decode

The stage contract is in /work/notes/CONTRACT.md and stages.py's docstring.
"""

from __future__ import annotations

import importlib

# Loaded on first use: the collectors import hwprof.pipeline.walk alone, and `hwprof record` should not pay for the
# decoder's imports at start.
_EXPORTS = {
    "PerfDataDecoder": "hwprof.pipeline.decode", "decode_file": "hwprof.pipeline.decode",
    "Symbolizer": "hwprof.pipeline.stacks", "EmittedSamples": "hwprof.pipeline.stages",
    "FinishContext": "hwprof.pipeline.stages", "Stage": "hwprof.pipeline.stages",
    "NOT_UNWOUND": "hwprof.pipeline.stages", "load_profile": "hwprof.pipeline.stored",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hwprof.pipeline' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
