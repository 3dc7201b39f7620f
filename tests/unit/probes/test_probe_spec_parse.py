"""Probe specs as users write them, parsed without touching the kernel."""

from __future__ import annotations

import pytest
from hwprof.collectors.probe_spec import ProbeKind, _lib_name_matches, find_binary, parse_spec

from hwprof.errors import HwprofError


@pytest.mark.parametrize(("kind", "text", "expected"), [
    (ProbeKind.UPROBE, "./app:parse", (ProbeKind.UPROBE, "./app", "parse", 0, None, ())),
    (ProbeKind.UPROBE, "/usr/bin/app:parse+0x10", (ProbeKind.UPROBE, "/usr/bin/app", "parse", 16, None, ())),
    (ProbeKind.UPROBE, "app:parse+8", (ProbeKind.UPROBE, "app", "parse", 8, None, ())),
    (ProbeKind.UPROBE, "app:0x401136", (ProbeKind.UPROBE, "app", "", 0, 0x401136, ())),
    (ProbeKind.UPROBE, "app:parse%return", (ProbeKind.URETPROBE, "app", "parse", 0, None, ())),
    (ProbeKind.URETPROBE, "c:malloc", (ProbeKind.URETPROBE, "c", "malloc", 0, None, ())),
    (ProbeKind.UPROBE, "app:ns::Shape::area", (ProbeKind.UPROBE, "app", "ns::Shape::area", 0, None, ())),
    (ProbeKind.UPROBE, "app:ns::area(int, int)", (ProbeKind.UPROBE, "app", "ns::area(int, int)", 0, None, ())),
    (ProbeKind.UPROBE, "/o:dd/app:f", (ProbeKind.UPROBE, "/o:dd/app", "f", 0, None, ())),
    (ProbeKind.UPROBE, "app:greet name=+0(%di):string n=%si:s32",
     (ProbeKind.UPROBE, "app", "greet", 0, None, ("name=+0(%di):string", "n=%si:s32"))),
    (ProbeKind.KPROBE, "vfs_read", (ProbeKind.KPROBE, "vfs_read", "vfs_read", 0, None, ())),
    (ProbeKind.KPROBE, "vfs_read+4", (ProbeKind.KPROBE, "vfs_read", "vfs_read", 4, None, ())),
    (ProbeKind.KPROBE, "vfs_read%return", (ProbeKind.KRETPROBE, "vfs_read", "vfs_read", 0, None, ())),
    (ProbeKind.KRETPROBE, "ksys_write", (ProbeKind.KRETPROBE, "ksys_write", "ksys_write", 0, None, ())),
    (ProbeKind.TRACEPOINT, "syscalls:sys_enter_write",
     (ProbeKind.TRACEPOINT, "syscalls", "sys_enter_write", 0, None, ())),
])
def test_parse(kind, text, expected):
    spec = parse_spec(kind, text)
    assert (spec.kind, spec.target, spec.symbol, spec.offset, spec.address, spec.fetch_args) == expected
    assert spec.text == text


@pytest.mark.parametrize(("kind", "text", "message"), [
    (ProbeKind.UPROBE, "", "empty"),
    (ProbeKind.UPROBE, "app", "BINARY:SYMBOL"),
    (ProbeKind.UPROBE, "app:", "BINARY:SYMBOL"),
    (ProbeKind.UPROBE, ":main", "BINARY:SYMBOL"),
    (ProbeKind.TRACEPOINT, "sched", "SUBSYS:EVENT"),
    (ProbeKind.TRACEPOINT, "a:b:c", "SUBSYS:EVENT"),
    (ProbeKind.TRACEPOINT, "sched:sched_switch%return", "%return"),
    (ProbeKind.KPROBE, "0xffffffff81000000", "not an address"),
])
def test_rejects(kind, text, message):
    with pytest.raises(HwprofError, match=message):
        parse_spec(kind, text)


def test_returning_pairs_entry_with_return():
    from hwprof.collectors.probe_spec import Probe

    spec = parse_spec(ProbeKind.UPROBE, "/bin/app:f")
    entry = Probe(spec, spec.kind, "uprobe:/bin/app:f", path="/bin/app", file_offset=0x1130)
    ret = entry.returning()
    assert ret.kind == ProbeKind.URETPROBE and ret.label == "uretprobe:/bin/app:f"
    assert ret.file_offset == 0x1130 and ret.path == "/bin/app"


@pytest.mark.parametrize(("name", "path", "matches"), [
    ("c", "/lib/x86_64-linux-gnu/libc.so.6", True),
    ("libc", "/lib/x86_64-linux-gnu/libc.so.6", True),
    ("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6", True),
    ("c", "/lib/x86_64-linux-gnu/libcrypt.so.1", False),
    ("pthread", "/lib/x86_64-linux-gnu/libpthread.so.0", True),
    ("python3.11", "/usr/lib/libpython3.11.so.1.0", True),
    ("m", "/lib/x86_64-linux-gnu/libmvec.so.1", False),
])
def test_library_names(name, path, matches):
    assert _lib_name_matches(name, path) is matches


def test_find_binary_errors(tmp_path):
    with pytest.raises(HwprofError, match="no such file"):
        find_binary(str(tmp_path / "missing"))
    with pytest.raises(HwprofError, match="not a regular file"):
        find_binary(str(tmp_path))
    with pytest.raises(HwprofError, match="cannot find 'surely-not-a-library-name'"):
        find_binary("surely-not-a-library-name")
