"""tracefs: the format file of an event and RAW payload decoding; definitions and their owner groups."""

from __future__ import annotations

import struct
from pathlib import Path

from hwprof.collectors.tracefs import _pid_of_group, group_name, list_definitions, parse_format

SYS_ENTER_WRITE = """name: sys_enter_write
ID: 840
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:unsigned int fd;\toffset:16;\tsize:8;\tsigned:0;
\tfield:const char * buf;\toffset:24;\tsize:8;\tsigned:0;
\tfield:size_t count;\toffset:32;\tsize:8;\tsigned:0;

print fmt: "fd: 0x%08lx, buf: 0x%08lx, count: 0x%08lx", ((unsigned long)(REC->fd)), ((unsigned long)(REC->buf))
"""

UPROBE_WITH_STRING = """name: p0_123
ID: 2001
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:unsigned long __probe_ip;\toffset:8;\tsize:8;\tsigned:0;
\tfield:__data_loc char[] name;\toffset:16;\tsize:4;\tsigned:1;
\tfield:s32 n;\toffset:20;\tsize:4;\tsigned:1;
\tfield:char comm[16];\toffset:24;\tsize:16;\tsigned:0;

print fmt: "(%lx) name=\\"%s\\" n=%d", REC->__probe_ip, __get_str(name), REC->n
"""


def test_parse_and_decode_syscall_tracepoint():
    fmt = parse_format(SYS_ENTER_WRITE)
    assert fmt.name == "sys_enter_write" and fmt.id == 840
    assert [f.name for f in fmt.arg_fields] == ["__syscall_nr", "fd", "buf", "count"]
    raw = struct.pack("<HBBi", 840, 0, 0, 4242) + struct.pack("<i4xQQQ", 1, 3, 0xDEADBEEF, 12)
    assert fmt.decode(raw) == {"__syscall_nr": 1, "fd": 3, "buf": 0xDEADBEEF, "count": 12}


def test_decode_data_loc_string_signed_and_char_array():
    fmt = parse_format(UPROBE_WITH_STRING)
    assert [f.name for f in fmt.arg_fields] == ["name", "n", "comm"]
    text = b"hello\0"
    loc = 40 | (len(text) << 16)
    raw = struct.pack("<HBBiQIi", 2001, 0, 0, 7, 0x401136, loc, -5) + b"calls".ljust(16, b"\0") + text
    assert fmt.decode(raw) == {"name": "hello", "n": -5, "comm": "calls"}


def test_short_payload_decodes_to_zero_not_an_exception():
    fmt = parse_format(SYS_ENTER_WRITE)
    assert fmt.decode(b"\0" * 20)["count"] == 0


def test_definitions_and_owners(tmp_path: Path):
    control = tmp_path / "uprobe_events"
    control.write_text("p:hwprof_123/p0_123 /bin/app:0x0000000000001130\n"
                       "r:hwprof_123/p1_123 /bin/app:0x0000000000001130 arg1=%ax\n"
                       "p:probe_app/main /bin/app:0x0000000000001000\n")
    assert list_definitions(control) == [("p", "hwprof_123", "p0_123"), ("r", "hwprof_123", "p1_123"),
                                         ("p", "probe_app", "main")]
    assert _pid_of_group("hwprof_123") == 123
    assert _pid_of_group("probe_app") is None
    assert _pid_of_group("hwprof_x") is None
    assert group_name(77) == "hwprof_77"
