"""The profile model's prefix-tree stacks, its .npz round trip, and the folded contract (golden file)."""

from pathlib import Path

import numpy as np
import pytest

from hwprof.errors import HwprofError
from hwprof.folded import format_folded, parse_folded, profile_folded
from hwprof.profile import FrameKind, Profile, ProfileBuilder, ProfileMeta

GOLDEN = Path(__file__).parent / "golden" / "small.folded"


def small_profile() -> Profile:
    b = ProfileBuilder(ProfileMeta(events=["cpu-clock"], weight_names=["cpu-clock", "page-faults"]))
    main = b.frame(function="main", module="/bin/app", address=0x1000, kind=FrameKind.USER)
    hot = b.frame(function="hot<int, std::less<int> >", module="/bin/app", address=0x1100, kind=FrameKind.USER)
    semi = b.frame(function="a;b", module="/bin/app", address=0x1200, kind=FrameKind.USER)
    anon = b.frame(function=None, module="/usr/lib/libc.so.6", address=0x2A0, kind=FrameKind.USER)
    kern = b.frame(function="do_syscall_64", module="[kernel.kallsyms]", address=0xFFFF, kind=FrameKind.KERNEL)
    for frames, n in (([main, hot], 3), ([main, semi], 1), ([main, anon, kern], 2), ([main], 1)):
        for _ in range(n):
            b.sample(time=1, pid=10, tid=11, cpu=0, stack=b.stack(frames), period=1e6, counters=[1e6, 2])
    b.threads[11] = "app"
    return b.build()


def test_identical_stacks_stored_once():
    p = small_profile()
    assert p.n_samples == 7
    assert len(p.stack_frame) == 5  # main, main;hot, main;semi, main;anon, main;anon;kern
    assert len(set(p.sample_stack.tolist())) == 4


def test_folded_matches_golden():
    assert "\n".join(profile_folded(small_profile())) + "\n" == GOLDEN.read_text()


def test_folded_weights_and_mask():
    p = small_profile()
    mask = p.sample_stack == p.sample_stack[0]
    assert list(profile_folded(p, weights=p.counters[:, 1], mask=mask)) == ["main;hot<int, std::less<int> > 6"]


def test_parse_folded_round_trip():
    lines = list(format_folded([(["a", "b"], 2), (["a", "b"], 1), (["a"], 4)]))
    assert lines == ["a 4", "a;b 3"]
    assert parse_folded(lines) == [(["a"], 4), (["a", "b"], 3)]
    with pytest.raises(HwprofError):
        parse_folded(["no count here"])


def test_save_load_round_trip(tmp_path):
    p = small_profile()
    p.save(tmp_path / "p.npz")
    q = Profile.load(tmp_path / "p.npz")
    assert q.meta == p.meta and q.strings == p.strings and q.threads == {11: "app"}
    for name in Profile._ARRAYS:
        np.testing.assert_array_equal(getattr(q, name), getattr(p, name))


def test_load_corrupt_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(HwprofError, match="cannot read profile"):
        Profile.load(bad)


def test_a_profile_cached_in_an_older_format_is_refused_so_it_is_decoded_again(tmp_path):
    """Format 1 caches hold group deltas scaled by enabled/running (inflated) and callers looked up at the return
    address: loading one must fail (the store then decodes the recording again), never serve old numbers."""
    import json

    path = tmp_path / "old.npz"
    small_profile().save(path)
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    header = json.loads(bytes(arrays["header"]).decode())
    header["version"] = 1
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)
    with pytest.raises(HwprofError, match="profile format 1"):
        Profile.load(path)
