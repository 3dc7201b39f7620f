"""Damaged and hostile perf.data files (issue 12): nothing lost silently, memory and time bounded.

Real captures (golden/: hwprof's and perf's) are damaged the way the audit found: one sample's header size set to
0 or 0xffff, 8 changed bytes, a callchain or group-read count of 2**40, a junk user return address. The rules:
every sample before the damage is kept, every skipped sample and byte is counted in a note with its reason, the
notes reach stderr in every report mode, lengths are bounded by their record before anything is allocated.
"""

from __future__ import annotations

import json
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from hwprof.perf.abi import CallchainContext, RecordType, SampleType
from hwprof.perf.records import iter_records
from hwprof.perfdata import PerfDataFile
from hwprof.pipeline.decode import PerfDataDecoder
from hwprof.profile import FrameKind

GOLDEN = Path(__file__).parent / "golden"
CAPTURES = ("hwprof.perf.data", "perf.perf.data")
# Damage early in a capture of more than 64 KiB: the old decoder then dropped the whole stretch (issue 12)
LARGER = ("group.perf.data", "perf-group.perf.data")


def _samples(path: Path) -> tuple[int, list[int]]:
    """Data offset of the file and the file offsets of its SAMPLE records."""
    with PerfDataFile(path) as f:
        start, size = f.data_offset, f.data_size
    data = path.read_bytes()[start:start + size]
    return start, [start + off for off, rtype, _, _ in iter_records(data) if rtype == RecordType.SAMPLE]


def _damaged(tmp_path: Path, name: str, edit, tag: str = "") -> Path:
    raw = bytearray((GOLDEN / name).read_bytes())
    edit(raw)
    out = tmp_path / f"damaged{tag}-{name}"
    out.write_bytes(bytes(raw))
    return out


def _decode(path: Path):
    decoder = PerfDataDecoder(path)
    return decoder.decode(), decoder


@pytest.mark.parametrize("name", LARGER)
def test_a_zero_size_header_keeps_every_sample_before_it_and_says_how_many_bytes_it_skipped(tmp_path, name):
    whole, _ = _decode(GOLDEN / name)
    _, samples = _samples(GOLDEN / name)
    k = len(samples) // 10
    path = _damaged(tmp_path, name, lambda raw: struct.pack_into("<H", raw, samples[k] + 6, 0))
    profile, decoder = _decode(path)
    assert profile.n_samples >= k  # everything before the damage (the walk resumes after it, too)
    assert profile.n_samples > whole.n_samples // 2
    assert profile.n_samples < whole.n_samples
    stats = decoder.walk_stats
    assert stats.skipped_bytes > 0
    assert any("damaged record header" in note and "bytes skipped" in note for note in profile.meta.notes)


@pytest.mark.parametrize("name", LARGER)
def test_a_0xffff_size_is_skipped_with_a_note_not_silently(tmp_path, name):
    whole, _ = _decode(GOLDEN / name)
    _, samples = _samples(GOLDEN / name)
    k = len(samples) // 10
    path = _damaged(tmp_path, name, lambda raw: struct.pack_into("<H", raw, samples[k] + 6, 0xFFFF))
    profile, decoder = _decode(path)
    assert profile.n_samples >= k and profile.n_samples < whole.n_samples
    assert decoder.walk_stats.skipped_bytes > 0
    assert any("damaged record header" in note and "bytes skipped" in note for note in profile.meta.notes)


@pytest.mark.parametrize("name", CAPTURES)
def test_every_byte_of_the_data_section_is_read_or_accounted_for(tmp_path, name):
    start, samples = _samples(GOLDEN / name)
    rng = np.random.default_rng(8)
    for trial in range(20):
        where = int(rng.integers(samples[0], samples[-1]))
        junk = rng.integers(0, 256, 8, dtype=np.uint8).tobytes()

        def edit(raw, where=where, junk=junk):
            raw[where:where + 8] = junk

        path = _damaged(tmp_path, name, edit, tag=str(trial))
        profile, decoder = _decode(path)
        with PerfDataFile(path) as f:
            size = f.data_size
        stats = decoder.walk_stats
        assert stats.bytes_read + stats.skipped_bytes == size, (trial, where, stats)


def _chain_nr_offset(path: Path, sample: int) -> int:
    with PerfDataFile(path) as f:
        layout_fixed = _fixed_end(f.attrs[0].attr)
    return sample + layout_fixed


def _fixed_end(attr) -> int:
    from hwprof.perf.records import SampleLayout

    layout = SampleLayout.from_attr(attr)
    assert not layout.has(SampleType.READ)
    return layout.fixed_offsets["_end"]


@pytest.mark.parametrize("name", CAPTURES)
def test_a_callchain_count_of_2_to_the_40_is_rejected_fast_in_bounded_memory(tmp_path, name):
    _, samples = _samples(GOLDEN / name)
    victims = samples[::3]

    def edit(raw):
        for s in victims:
            struct.pack_into("<Q", raw, _chain_nr_offset(GOLDEN / name, s), 1 << 40)

    path = _damaged(tmp_path, name, edit)
    tracemalloc.start()
    began = time.monotonic()
    profile, decoder = _decode(path)
    elapsed = time.monotonic() - began
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 10
    assert peak < 50 * path.stat().st_size + (32 << 20)
    assert profile.n_samples == len(samples) - len(victims)
    assert any(f"{len(victims)} samples whose callchain length does not fit their record" in note
               for note in profile.meta.notes)


@pytest.mark.parametrize("every", [4, 1])
def test_a_group_read_count_of_2_to_the_40_is_rejected(tmp_path, every):
    name = "group.perf.data"
    _, samples = _samples(GOLDEN / name)
    with PerfDataFile(GOLDEN / name) as f:
        from hwprof.perf.records import SampleLayout

        fixed = SampleLayout.from_attr(f.attrs[0].attr).fixed_offsets["_end"]
    victims = samples[every - 1::every]

    def edit(raw):
        for s in victims:
            struct.pack_into("<Q", raw, s + fixed, 1 << 40)

    path = _damaged(tmp_path, name, edit)
    began = time.monotonic()
    profile, _ = _decode(path)
    assert time.monotonic() - began < 10
    whole, _ = _decode(GOLDEN / name)
    assert profile.n_samples == whole.n_samples - len(victims)
    assert any(f"{len(victims)} samples whose group read" in note for note in profile.meta.notes)


def test_a_junk_user_return_address_is_not_a_kernel_frame(tmp_path):
    name = "hwprof.perf.data"
    _, samples = _samples(GOLDEN / name)
    raw = (GOLDEN / name).read_bytes()
    nr_at = _chain_nr_offset(GOLDEN / name, samples[0])
    user_marker = int(CallchainContext.USER)
    victim = None
    for s in samples:
        at = _chain_nr_offset(GOLDEN / name, s)
        (nr,) = struct.unpack_from("<Q", raw, at)
        chain = struct.unpack_from(f"<{nr}Q", raw, at + 8)
        if user_marker in chain and len(chain) - chain.index(user_marker) > 2:
            victim, nr_at, where = s, at, chain.index(user_marker) + 2
            break
    assert victim is not None
    path = _damaged(tmp_path, name, lambda b: struct.pack_into("<Q", b, nr_at + 8 + 8 * where, 0xFFFFFFFFFFFF00F1))
    profile, _ = _decode(path)
    kernel = profile.frame_kind == FrameKind.KERNEL
    addresses = profile.frame_address[kernel]
    assert not np.any((addresses >= 0xFFFFFFFFFFFF0000) & (addresses <= 0xFFFFFFFFFFFF00F1))
    labels = {profile.frame_label(f) for f in range(len(profile.frame_kind))}
    assert not any("0xffffffffffff00f" in label for label in labels)


@pytest.mark.parametrize("mode", [[], ["--folded"], ["--json"], ["--no-children"], ["--call-graph"]])
def test_warnings_reach_stderr_in_every_report_mode(tmp_path, mode, capsys):
    from hwprof.cli import main

    name = "hwprof.perf.data"
    _, samples = _samples(GOLDEN / name)
    path = _damaged(tmp_path, name, lambda raw: struct.pack_into("<H", raw, samples[10] + 6, 0))
    assert main(["report", "--raw", "-i", str(path), *mode]) == 0
    out, err = capsys.readouterr()
    assert "warning:" in err and "damaged record header" in err
    if mode == ["--json"]:
        assert any("damaged record header" in note for note in json.loads(out)["notes"])
