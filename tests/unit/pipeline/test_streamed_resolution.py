"""Streamed stack resolution keeps every answer: the compact chain table, the numpy hash index, block sizes, the
int16 frame buffer and folded output of names that are not ASCII."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import hwprof.pipeline.stacks as stacks
from hwprof.folded import profile_folded
from hwprof.pipeline import decode_file
from hwprof.pipeline.arrays import KeyIndex
from hwprof.pipeline.chains import ChainTable
from hwprof.profile import FrameKind, ProfileBuilder, ProfileMeta
from hwprof.system.memory import release_free_memory

GOLDEN = Path(__file__).parent / "golden"


def test_key_index_finds_what_was_added_and_nothing_else():
    rng = np.random.default_rng(7)
    keys = np.unique(np.concatenate([rng.integers(0, 2**63, 3000).astype(np.uint64),
                                     np.array([0, 1, 2**64 - 1], dtype=np.uint64)]))
    index = KeyIndex()
    for part in np.array_split(np.arange(len(keys)), 5):  # grows (and rehashes) as it goes
        index.add(keys[part], part)
    queries = np.concatenate([keys, keys[::-1]])
    assert np.array_equal(index.lookup(queries), np.concatenate([np.arange(len(keys)), np.arange(len(keys))[::-1]]))
    absent = np.setdiff1d(rng.integers(0, 2**63, 1000).astype(np.uint64), keys)
    assert (index.lookup(absent) == -1).all()
    assert len(index) == len(keys)


def test_chain_table_numbers_chains_like_a_dict_and_gives_them_back():
    rng = np.random.default_rng(3)
    values = rng.integers(0, 2**64 - 1, 50, dtype=np.uint64)
    chains = [values[rng.integers(0, 50, rng.integers(0, 9))].astype("<u8").tobytes() for _ in range(400)]
    chains += chains[::7]  # repeats
    expected: dict[bytes, int] = {}
    want = [expected.setdefault(c, len(expected)) for c in chains]
    table = ChainTable()
    assert table.ids(chains[:200]).tolist() == want[:200]
    # the same chains read in place from a buffer of words
    words = np.frombuffer(b"".join(chains[200:]), dtype="<u8")
    count = np.array([len(c) // 8 for c in chains[200:]], dtype=np.int64)
    assert table.ids_in(words, np.cumsum(count) - count, count).tolist() == want[200:]
    flat = table.take()
    back = [flat.values[flat.codes[flat.offsets[i]:flat.offsets[i + 1]]].astype("<u8").tobytes()
            for i in range(len(expected))]
    assert back == list(expected)
    assert len(table) == 0


@pytest.mark.parametrize("name", ["hwprof", "perf", "group"])
def test_block_size_and_frame_width_do_not_change_the_profile(monkeypatch, name):
    path = GOLDEN / f"{name}.perf.data"
    whole = decode_file(path)
    monkeypatch.setattr(stacks, "_BLOCK_ENTRIES", 5)  # a few rows per block: descriptors carried across blocks
    # ids wider than "int16" from the third frame on: the buffer is widened mid-way
    monkeypatch.setattr(stacks, "_fits_int16", lambda ids: not len(ids) or int(np.max(np.abs(ids))) < 3)
    streamed = decode_file(path)
    for field in whole._ARRAYS:
        assert np.array_equal(getattr(whole, field), getattr(streamed, field)), field
    assert whole.strings == streamed.strings


def test_folded_names_keep_their_bytes():
    b = ProfileBuilder(ProfileMeta(events=["cpu-clock"]))
    root = b.frame(function="mäin", module="/bin/app", address=0x10, kind=FrameKind.USER)
    odd = b.frame(function="bad\udcffname", module="/bin/app", address=0x20, kind=FrameKind.USER)
    wide = b.frame(function="関数;x", module="/bin/app", address=0x30, kind=FrameKind.USER)
    for frames in ([root, odd], [root, wide], [root, wide], [root]):
        b.sample(time=1, pid=1, tid=1, cpu=0, stack=b.stack(frames), period=1.0)
    assert list(profile_folded(b.build())) == ["mäin 1", "mäin;bad\udcffname 1", "mäin;関数_x 2"]


def test_release_free_memory_is_harmless():
    release_free_memory()
    release_free_memory()
