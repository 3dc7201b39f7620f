"""perf's modifier state machine (get_event_modifier), case by case."""

from __future__ import annotations

import pytest

from hwprof.events.modifiers import ModifierError, ModifierState, apply_modifier, check_modifier


def bits(text: str, start: ModifierState | None = None) -> tuple[int, ...]:
    s = apply_modifier(text, start or ModifierState())
    return (s.exclude_user, s.exclude_kernel, s.exclude_hv, s.exclude_host, s.exclude_guest, s.exclude_idle,
            s.precise_ip)


@pytest.mark.parametrize("text, expected", [
    #            eu ek eh eH eG eI precise
    ("u", (0, 1, 1, 0, 1, 0, 0)),
    ("k", (1, 0, 1, 0, 0, 0, 0)),
    ("h", (1, 1, 0, 0, 0, 0, 0)),
    ("uk", (0, 0, 1, 0, 1, 0, 0)),
    ("G", (0, 0, 0, 1, 0, 0, 0)),
    ("H", (0, 0, 0, 0, 1, 0, 0)),
    ("GH", (0, 0, 0, 0, 0, 0, 0)),
    ("Gu", (0, 1, 1, 1, 0, 0, 0)),  # G given: u no longer forces exclude_guest
    ("p", (0, 0, 0, 0, 1, 0, 1)),
    ("ppp", (0, 0, 0, 0, 1, 0, 3)),
    ("kp", (1, 0, 1, 0, 1, 0, 1)),
    ("I", (0, 0, 0, 0, 0, 1, 0)),
])
def test_event_modifiers(text, expected):
    assert bits(text) == expected


def test_group_modifier_builds_on_current_bits():
    member = apply_modifier("u", ModifierState())
    assert bits("k", member) == (0, 0, 1, 0, 1, 0, 0)
    assert bits("p", apply_modifier("pp", ModifierState())) == (0, 0, 0, 0, 1, 0, 3)


@pytest.mark.parametrize("text", ["", "uu", "pppp", "x", "u k"])
def test_bad_modifiers(text):
    with pytest.raises(ModifierError):
        check_modifier(text)


def test_tool_letters():
    state = apply_modifier("SWDe", ModifierState())
    assert (state.sample_read, state.weak, state.pinned, state.exclusive) == (True, True, 1, 1)
