"""Listing tracepoints: every events/<system>/<name>/ directory with an `id`, whether or not tracefs's
`available_events` (the one-read shortcut) can be read, and whatever it leaves out."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwprof.events import tracefs


def _tree(root: Path, with_id: list[tuple[str, str]], without_id: list[tuple[str, str]]) -> None:
    for system, name in with_id:
        (root / "events" / system / name).mkdir(parents=True)
        (root / "events" / system / name / "id").write_text("1\n")
    for system, name in without_id:
        (root / "events" / system / name).mkdir(parents=True)
        (root / "events" / system / name / "format").write_text("")
    (root / "events" / "enable").write_text("0\n")          # files beside the systems are not systems
    (root / "events" / "sched" / "enable").write_text("0\n")  # nor files beside a system's events


WITH_ID = [("sched", "sched_switch"), ("sched", "sched_wakeup"), ("syscalls", "sys_enter_write"),
           ("ftrace", "function"), ("ftrace", "print"), ("probe_x", "added_later")]
WITHOUT_ID = [("ftrace", "bprint"), ("ftrace", "kernel_stack")]


@pytest.mark.parametrize("available", [
    None,                                                              # not readable: each directory is checked
    "sched:sched_switch\nsched:sched_wakeup\nsyscalls:sys_enter_write\n",  # the kernel's: no ftrace:*, no new one
    "sched:sched_switch\nsched:gone_since\n",                          # stale and partial
    "",
])
def test_the_listing_is_every_directory_with_an_id(tmp_path: Path, available: str | None) -> None:
    _tree(tmp_path, WITH_ID, WITHOUT_ID)
    if available is not None:
        (tmp_path / "available_events").write_text(available)
    assert tracefs.all_tracepoints(str(tmp_path)) == sorted(WITH_ID)


def test_no_events_directory_lists_nothing(tmp_path: Path) -> None:
    (tmp_path / "available_events").write_text("sched:sched_switch\n")
    assert tracefs.all_tracepoints(str(tmp_path)) == []
    assert tracefs.list_systems(str(tmp_path)) == []
