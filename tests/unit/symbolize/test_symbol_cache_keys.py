"""Rules for the symbolizer's on-disk cache key: copies of one binary share an entry, different files never do.

A file with a build-id is keyed by that build-id and its size (every virtualenv's numpy, a container's libc: one
entry); a stripped and an unstripped file of one build-id differ in size and so in key; a file without a build-id is
keyed by its real path, size and mtime.
"""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from hwprof.symbolize import Symbolizer
from hwprof.symbolize.elf import open_image, read_build_id
from hwprof.symbolize.module import cache_path

BINARY = "/usr/bin/true"


def _with_build_id() -> str:
    if not os.path.exists(BINARY) or read_build_id(BINARY) is None:
        pytest.skip(f"{BINARY} with a build-id is needed")
    return BINARY


def _without_build_id(path: Path) -> Path:
    """A copy of BINARY whose build-id note type is overwritten, so it carries no build-id."""
    data = bytearray(Path(_with_build_id()).read_bytes())
    build_id = read_build_id(BINARY)
    at = data.find(b"GNU\0" + build_id)
    data[at - 4:at] = (0xBAD).to_bytes(4, "little")  # the note's type: no longer NT_GNU_BUILD_ID
    path.write_bytes(bytes(data))
    assert read_build_id(str(path)) is None
    return path


def test_copies_with_one_build_id_share_a_cache_entry(tmp_path: Path) -> None:
    source = _with_build_id()
    build_id = read_build_id(source)
    venv_a, venv_b = tmp_path / "a" / "true", tmp_path / "b" / "true"
    for copy in (venv_a, venv_b):
        copy.parent.mkdir()
        shutil.copy(source, copy)
    os.utime(venv_b, ns=(1, 1))  # another mtime: a copy, not a change
    keys = {cache_path("/c", build_id, str(p), None, ".syms") for p in (source, venv_a, venv_b)}
    assert len(keys) == 1
    # The binary as its own debug file: the same identity on both sides.
    assert cache_path("/c", build_id, str(venv_a), str(venv_a)) == cache_path("/c", build_id, source, source)


def test_one_build_id_in_files_of_different_sizes_is_two_entries(tmp_path: Path) -> None:
    source = _with_build_id()
    build_id = read_build_id(source)
    longer = tmp_path / "true.unstripped"
    longer.write_bytes(Path(source).read_bytes() + b"\0" * 4096)  # as an unstripped build of it would be longer
    assert read_build_id(str(longer)) == build_id
    assert cache_path("/c", build_id, str(longer), None) != cache_path("/c", build_id, source, None)


def test_files_without_a_build_id_are_keyed_by_path(tmp_path: Path) -> None:
    first = _without_build_id(tmp_path / "one")
    second = tmp_path / "two"
    shutil.copy(first, second)
    assert cache_path("/c", None, str(first), None) != cache_path("/c", None, str(second), None)
    before = cache_path("/c", None, str(first), None)
    os.utime(first, ns=(5, 5))
    assert cache_path("/c", None, str(first), None) != before  # touched: rebuilt


def test_a_recorded_build_id_the_file_does_not_carry_keys_by_path(tmp_path: Path) -> None:
    source = _with_build_id()
    copy = tmp_path / "true"
    shutil.copy(source, copy)
    other_id = bytes(20)
    assert cache_path("/c", other_id, str(copy), None) != cache_path("/c", other_id, source, None)


def test_a_symbolizer_builds_a_library_once_for_all_its_copies(tmp_path: Path) -> None:
    numpy_core = sorted(glob.glob(str(Path(np.__file__).parent / "_core" / "_multiarray_umath*.so")))
    if not numpy_core:
        pytest.skip("numpy's extension module is not where numpy 2 keeps it")
    copy = tmp_path / "venv2" / Path(numpy_core[0]).name
    copy.parent.mkdir()
    shutil.copy(numpy_core[0], copy)
    cache = tmp_path / "cache"
    code = next(seg for seg in open_image(numpy_core[0]).segments if seg.executable)
    offset = np.array([code.offset + code.filesz // 2], dtype=np.uint64)
    first = Symbolizer(cache_dir=str(cache), debuginfod=False).symbolize_offsets(numpy_core[0], offset)
    entries = sorted(os.listdir(cache / "symbolize"))
    again = Symbolizer(cache_dir=str(cache), debuginfod=False).symbolize_offsets(str(copy), offset)
    assert sorted(os.listdir(cache / "symbolize")) == entries  # nothing new built for the copy
    assert [f.function for f in again[0]] == [f.function for f in first[0]]
