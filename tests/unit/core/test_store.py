import time

import pytest

from hwprof.errors import HwprofError
from hwprof.store import ProfileStore, StoreEntry, default_root, validate_id


def test_default_root_honours_hwprof_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HWPROF_HOME", str(tmp_path))
    assert default_root() == tmp_path
    monkeypatch.delenv("HWPROF_HOME")
    monkeypatch.setenv("HOME", "/home/u")
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert str(default_root()) == "/home/u/.local/share/hwprof"


@pytest.mark.parametrize("bad", ["../etc/passwd", "a/b", "", ".hidden", "x" * 65, "a b", "..", "id\x00"])
def test_ids_that_could_escape_are_rejected(bad):
    with pytest.raises(HwprofError):
        validate_id(bad)


def test_add_list_rename_delete(tmp_path):
    store = ProfileStore(tmp_path)
    assert store.list() == []
    entry_id, path = store.reserve("record", "perf.data")
    path.write_bytes(b"12345")
    store.add(StoreEntry(id=entry_id, kind="record", file=path.name, created=time.time(), events=["cpu-clock"]))
    entry = store.get(entry_id)
    assert entry.size == 5 and entry.events == ["cpu-clock"] and store.latest().id == entry_id
    assert store.rename(entry_id, "  nightly  ").name == "nightly"
    with pytest.raises(HwprofError):
        store.rename(entry_id, " ")
    store.cache_path(entry_id).write_bytes(b"cache")
    jit_maps = path.with_name(path.name + ".jit")
    jit_maps.mkdir()
    (jit_maps / "perf-42.map").write_text("1000 10 jitted\n")
    store.delete(entry_id)
    assert store.list() == [] and not path.exists() and not store.cache_path(entry_id).exists()
    assert not jit_maps.exists()
    with pytest.raises(HwprofError, match="no profile"):
        store.get(entry_id)


def test_corrupt_index_is_a_clear_error(tmp_path):
    (tmp_path / "index.sqlite").write_bytes(b"garbage" * 100)
    with pytest.raises(HwprofError, match="unreadable"):
        ProfileStore(tmp_path).list()
