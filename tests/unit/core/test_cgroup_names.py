"""perf's -G/--cgroup names: which hierarchy they are relative to, which directories they may name, and the
option combinations record, stat and agent refuse before anything is opened."""

from __future__ import annotations

import pytest

from hwprof.cli import build_parser, load_commands
from hwprof.errors import HwprofError
from hwprof.system.cgroups import CgroupMount, cgroup_directory, parse_mounts

V1_HYBRID = """\
tmpfs /sys/fs/cgroup tmpfs rw,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
"""


def test_cgroup_v2_alone_is_the_hierarchy():
    assert parse_mounts("cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n") == CgroupMount("/sys/fs/cgroup", 2)


def test_on_a_hybrid_machine_without_a_v1_perf_event_mount_the_unified_hierarchy_holds_perf_event():
    assert parse_mounts(V1_HYBRID) == CgroupMount("/sys/fs/cgroup/unified", 2)


def test_a_v1_perf_event_mount_wins_over_cgroup2():
    text = V1_HYBRID + "cgroup /sys/fs/cgroup/perf_event cgroup rw,relatime,perf_event 0 0\n"
    assert parse_mounts(text) == CgroupMount("/sys/fs/cgroup/perf_event", 1)


def test_no_cgroup_mount_is_none_and_escaped_mount_points_are_read():
    assert parse_mounts("proc /proc proc rw 0 0\n") is None
    assert parse_mounts("cgroup2 /mnt/my\\040cg cgroup2 rw 0 0\n") == CgroupMount("/mnt/my cg", 2)


@pytest.mark.parametrize("name, expected", [
    ("web", "web"), ("/web", "web"), ("system.slice/nginx.service", "system.slice/nginx.service"),
    ("/", ""), ("{mount}/web", "web"),
])
def test_names_are_relative_to_the_hierarchy_or_full_paths_under_it(tmp_path, name, expected):
    mount = CgroupMount(str(tmp_path), 2)
    assert cgroup_directory(name.format(mount=tmp_path), mount) == str((tmp_path / expected).resolve())


@pytest.mark.parametrize("name", ["..", "web/../../etc", "/../..", "", "web,db"])
def test_a_name_that_leaves_the_hierarchy_is_refused(tmp_path, name):
    with pytest.raises(HwprofError) as err:
        cgroup_directory(name, CgroupMount(str(tmp_path / "cg"), 2))
    assert err.value.exit_code == 2


def _run(*argv: str) -> HwprofError:
    args = build_parser(load_commands()).parse_args(list(argv))
    with pytest.raises(HwprofError) as err:
        args._command.run(args)
    return err.value


@pytest.mark.parametrize("argv", [
    ("record", "-G", "web", "--", "true"),
    ("record", "-G", "web", "-p", "1"),
    ("record", "-G", "web"),
])
def test_record_samples_a_cgroup_only_on_cpus(argv):
    error = _run(*argv)
    assert error.exit_code == 2 and "-G/--cgroup" in str(error) and "-a or -C" in str(error)


@pytest.mark.parametrize("argv", [
    ("stat", "-G", "web", "--", "true"),
    ("stat", "-G", "web", "-p", "1"),
    ("stat", "-G", "web", "-t", "1"),
])
def test_stat_counts_a_cgroup_only_on_cpus(argv):
    from hwprof.commands._stat_run import options_from_args

    args = build_parser(load_commands()).parse_args(list(argv))
    with pytest.raises(HwprofError) as err:
        options_from_args(args)
    assert err.value.exit_code == 2 and "-a or -C" in str(err.value)


def test_stat_keeps_the_cgroup_with_the_cpus():
    from hwprof.commands._stat_run import options_from_args

    opts = options_from_args(build_parser(load_commands()).parse_args(["stat", "-a", "-G", "web", "--", "true"]))
    assert opts.target.cgroup == "web" and opts.target.cpus
    assert opts.target.describe().endswith("in cgroup 'web'")


def test_the_agent_refuses_a_cgroup_with_processes():
    error = _run("agent", "--store", "clickhouse://127.0.0.1/db", "--cgroup", "web", "-p", "1")
    assert error.exit_code == 2 and "--cgroup" in str(error) and "-p" in str(error)


def test_record_and_agent_take_perfs_spelling():
    parser = build_parser(load_commands())
    assert parser.parse_args(["record", "-a", "--cgroup", "web"]).cgroup == "web"
    assert parser.parse_args(["agent", "--store", "clickhouse://h/db", "-G", "web"]).cgroup == "web"


def test_a_cgroups_processes_are_its_own_and_its_descendants(tmp_path):
    from hwprof.system.cgroups import cgroup_pids

    (tmp_path / "web" / "worker").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "web" / "cgroup.procs").write_text("12\n40\n")
    (tmp_path / "web" / "worker" / "cgroup.procs").write_text("7\n")
    (tmp_path / "other" / "cgroup.procs").write_text("99\n")
    assert cgroup_pids("web", CgroupMount(str(tmp_path), 2)) == [7, 12, 40]
