"""The OS layer's pure rules: /proc/PID/maps lines, CPU lists, and a shell's wording and exit codes for commands
that cannot be started."""

from __future__ import annotations

import errno
import os
import signal

import pytest

from hwprof.system.cpus import expand_cpu_list, format_cpu_list
from hwprof.system.launch import exit_code, launch_error, resolve_command
from hwprof.system.procfs import find_mapping, mapped_files, parse_maps, parse_maps_line


def test_proc_maps_lines_keep_every_field():
    maps = parse_maps(
        "55d0c0a00000-55d0c0a02000 r-xp 00001000 08:01 123 /usr/bin/app (deleted)\n"
        "7ffd1000-7ffd3000 r-xp 00000000 00:00 0 [vdso]\n"
        "7f0000000000-7f0000100000 rw-s 00000000 00:05 77\n"
        "7f0000100000-7f0000200000 r-xp 00000000 fd:02 9 /lib/with space.so\n"
        "garbage line\n"
    )
    assert len(maps) == 4
    app = maps[0]
    assert app.path == "/usr/bin/app" and app.deleted and app.kernel_name == "/usr/bin/app (deleted)"
    assert app.executable and not app.shared and (app.major, app.minor, app.inode) == (8, 1, 123)
    assert find_mapping(maps, 0x55D0C0A01234).file_offset(0x55D0C0A01234) == 0x2234
    assert find_mapping(maps, 0x7FFD1500).path == "[vdso]"
    assert find_mapping(maps, 0x7F0000000010).path == "" and maps[2].shared
    assert find_mapping(maps, 0x10) is None
    assert maps[3].path == "/lib/with space.so" and (maps[3].major, maps[3].minor) == (0xFD, 2)
    assert mapped_files(maps) == ["/usr/bin/app", "/lib/with space.so"]
    assert parse_maps_line("zz-10 r-xp 0 0:0 0 /x") is None


def test_a_sampler_reads_only_the_code_mappings_when_it_asks_for_them():
    text = ("55d0c0a00000-55d0c0a02000 r-xp 00001000 08:01 123 /usr/bin/app\n"
            "55d0c0a02000-55d0c0a04000 rw-p 00003000 08:01 123 /usr/bin/app\n"
            "7f0000000000-7f0000100000 rwxp 00000000 00:00 0\n"
            "7f0000100000-7f0000200000 --xp 00000000 fd:02 9 /lib/x only.so\n"
            "7f0000200000-7f0000300000 r--s 00000000 fd:02 9 /lib/x only.so\n"
            "garbage\n")
    every = parse_maps(text)
    assert parse_maps(text, executable_only=True) == [m for m in every if m.executable]
    assert [m.path for m in parse_maps(text, executable_only=True)] == ["/usr/bin/app", "", "/lib/x only.so"]


def test_cpu_lists_as_the_kernel_writes_them():
    assert expand_cpu_list("0-3,6\n") == [0, 1, 2, 3, 6]
    assert format_cpu_list([0, 1, 2, 3, 6, 8, 9]) == "0-3,6,8-9"
    with pytest.raises(ValueError):
        expand_cpu_list("3-1")


@pytest.mark.parametrize(("err", "code", "text"), [
    (errno.ENOENT, 127, "command not found: prog"),
    (errno.EACCES, 126, "cannot execute prog: Permission denied"),
    (errno.ENOEXEC, 126, "cannot execute prog: Exec format error"),
    (errno.EISDIR, 126, "cannot execute prog: Is a directory"),
])
def test_start_failures_read_and_exit_as_a_shell_says(err, code, text):
    exc = launch_error("prog", err)
    assert exc.exit_code == code and str(exc) == text


def test_commands_are_resolved_before_anything_is_forked(tmp_path):
    with pytest.raises(Exception, match="command not found: no-such-command-xyz") as found:
        resolve_command(["no-such-command-xyz"])
    assert found.value.exit_code == 127
    with pytest.raises(Exception, match=f"command not found: {tmp_path}/absent") as absent:
        resolve_command([str(tmp_path / "absent")])
    assert absent.value.exit_code == 127
    with pytest.raises(Exception, match="Is a directory") as directory:
        resolve_command([str(tmp_path)])
    assert directory.value.exit_code == 126
    assert os.path.basename(resolve_command(["sh"])) == "sh"


def test_exit_codes_of_wait_statuses():
    assert exit_code(3 << 8) == 3
    assert exit_code(signal.SIGKILL) == 128 + signal.SIGKILL


def test_cpuinfo_is_read_once_for_every_user():
    from hwprof.system.cpus import cpuinfo_records, first_cpu

    text = ("processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\n"
            "model name\t: Intel(R) Xeon(R) @ 2.10GHz\nphysical id\t: 0\n\n"
            "processor\t: 1\nvendor_id\t: GenuineIntel\nphysical id\t: 1\n")
    assert [r["processor"] for r in cpuinfo_records(text)] == ["0", "1"]
    assert first_cpu(text)["model name"] == "Intel(R) Xeon(R) @ 2.10GHz" and first_cpu("") == {}
