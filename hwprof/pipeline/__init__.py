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

from hwprof.pipeline.decode import PerfDataDecoder, decode_file
from hwprof.pipeline.stacks import Symbolizer
from hwprof.pipeline.stages import EmittedSamples, FinishContext, Stage, UnwindStop
from hwprof.pipeline.stored import load_profile

__all__ = ["EmittedSamples", "FinishContext", "PerfDataDecoder", "Stage", "Symbolizer", "UnwindStop", "decode_file",
           "load_profile"]
