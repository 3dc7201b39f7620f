"""Option checking of `hwprof stat`: every bad combination is one clear error before anything is opened."""

from __future__ import annotations

import pytest

from hwprof.cli import build_parser, load_commands
from hwprof.commands._stat_run import options_from_args
from hwprof.errors import HwprofError
from hwprof.system.cpus import format_cpu_list, online_cpus, parse_cpu_list


def options(*argv):
    args = build_parser(load_commands()).parse_args(["stat", *argv])
    return options_from_args(args)


def test_command_target():
    opts = options("-e", "task-clock", "--", "sleep", "1")
    assert opts.target.command == ("sleep", "1") and opts.event_text == ("task-clock",)


def test_pids_and_cpus():
    assert options("-p", "12,13,12").target.pids == (12, 13)
    assert options("-a").target.cpus == tuple(online_cpus())
    assert options("-C", "0", "-A").per_cpu


@pytest.mark.parametrize("argv, message", [
    ((), "nothing to count"),
    (("-p", "abc"), "invalid PID 'abc'"),
    (("-p", "1", "-t", "2"), "either -p or -t"),
    (("-p", "1", "--", "true"), "either a command or -p/-t"),
    (("-p", "1", "-a"), "one kind of target"),
    (("--per-thread", "--", "true"), "--per-thread needs -p or -t"),
    (("-A", "--", "true"), "needs -a or -C"),
    (("-I", "5", "--", "true"), "at least 10 ms"),
    (("-r", "0", "--", "true"), "-r needs"),
    (("-r", "2", "-p", "1"), "-r repeats a command"),
    (("-r", "2", "-I", "100", "--", "true"), "cannot be combined"),
    (("--json", "-x", ",", "--", "true"), "choose one"),
    (("-C", "0-x"), "invalid CPU list"),
    (("-C", "100000"), "not online"),
])
def test_bad_combinations(argv, message):
    with pytest.raises(HwprofError, match=message):
        options(*argv)


def test_cpu_lists_round_trip():
    cpus = online_cpus()
    assert parse_cpu_list(format_cpu_list(cpus)) == tuple(cpus)
    assert format_cpu_list([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"


def test_stat_start_up_imports_only_what_stat_needs():
    """`hwprof stat` must not pay for other commands' modules, nor for the collector before it runs."""
    import subprocess
    import sys

    code = ("import sys\nfrom hwprof.cli import main\ntry:\n    main(['stat', '-h'])\nexcept SystemExit:\n    pass\n"
            "print(' '.join(sorted(sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert "hwprof.commands.stat" in loaded
    assert not [m for m in loaded if m.startswith("hwprof.commands.") and m != "hwprof.commands.stat"]
    assert "hwprof.collectors.counting" not in loaded and "numpy" not in loaded
