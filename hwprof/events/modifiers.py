"""Event modifiers (`:u`, `:k`, `:ppp`, `:G`...) with perf's exact semantics (get_event_modifier in
tools/perf/util/parse-events.c), including the defaults perf applies that are easy to miss:

- every event starts with exclude_guest=1 (event_attr_init: perf is not a guest tool unless asked);
- a modifier on an event *replaces* the exclude bits: `cycles:k` ends with exclude_guest=0;
- `u` and any `p` set exclude_guest=1 unless G or H was given; `G`/`H` first set both exclude_host and
  exclude_guest, then clear the one named;
- the first of u/k/h excludes all three levels, then re-includes the one named;
- a group modifier (`{a,b}:u`) starts from each member's current bits instead of from zero.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwprof.perf.attr import PerfEventAttr

MODIFIER_LETTERS = "ukhGHIpPSDWeb"
_MAX_LENGTH = len("ukhGHpppPSDIWeb")


class ModifierError(ValueError):
    pass


@dataclass
class ModifierState:
    """The attr bits modifiers touch, plus perf's private `exclude_GH` flag (were G/H given?)."""

    exclude_user: int = 0
    exclude_kernel: int = 0
    exclude_hv: int = 0
    exclude_host: int = 0
    exclude_guest: int = 0
    exclude_idle: int = 0
    precise_ip: int = 0
    pinned: int = 0
    exclusive: int = 0
    exclude_GH: bool = False  # noqa: N815 - perf's name
    precise_max: bool = False
    sample_read: bool = False
    weak: bool = False

    @classmethod
    def from_attr(cls, attr: PerfEventAttr, exclude_GH: bool) -> ModifierState:  # noqa: N803
        return cls(attr.exclude_user, attr.exclude_kernel, attr.exclude_hv, attr.exclude_host, attr.exclude_guest,
                   attr.exclude_idle, attr.precise_ip, attr.pinned, attr.exclusive, exclude_GH)

    def apply_to(self, attr: PerfEventAttr) -> None:
        attr.exclude_user = self.exclude_user
        attr.exclude_kernel = self.exclude_kernel
        attr.exclude_hv = self.exclude_hv
        attr.exclude_host = self.exclude_host
        attr.exclude_guest = self.exclude_guest
        attr.exclude_idle = self.exclude_idle
        attr.precise_ip = self.precise_ip
        attr.pinned = self.pinned
        attr.exclusive = self.exclusive


def check_modifier(text: str) -> None:
    """perf's check_modifier plus its letter set: no letter twice except p, at most three p."""
    if not text:
        raise ModifierError("empty modifier after ':'")
    bad = sorted({c for c in text if c not in MODIFIER_LETTERS})
    if bad:
        raise ModifierError(f"unknown modifier letter{'s' if len(bad) > 1 else ''} {''.join(bad)!r} in ':{text}' "
                            f"(valid: u user, k kernel, h hypervisor, G guest, H host, I no idle, "
                            f"p/pp/ppp precise, P max precise, S sample-read, D pinned, W weak group, e exclusive)")
    if len(text) > _MAX_LENGTH:
        raise ModifierError(f"modifier ':{text}' is too long")
    for i, c in enumerate(text):
        if c != "p" and c in text[i + 1:]:
            raise ModifierError(f"modifier ':{text}' repeats '{c}'")
    if text.count("p") > 3:
        raise ModifierError(f"modifier ':{text}' asks for precise level {text.count('p')}; the maximum is 3 (:ppp)")


def is_modifier(text: str) -> bool:
    try:
        check_modifier(text)
    except ModifierError:
        return False
    return True


def apply_modifier(text: str, start: ModifierState) -> ModifierState:
    """Run perf's modifier state machine over `text` from `start` (zeros for an event, current bits for a group)."""
    check_modifier(text)
    eu, ek, eh = start.exclude_user, start.exclude_kernel, start.exclude_hv
    eH, eG, eI = start.exclude_host, start.exclude_guest, start.exclude_idle  # noqa: N806
    precise = start.precise_ip
    exclude = eu | ek | eh
    exclude_GH = start.exclude_GH  # noqa: N806
    state = ModifierState(pinned=start.pinned, exclusive=start.exclusive, precise_max=start.precise_max,
                          sample_read=start.sample_read, weak=start.weak)
    for c in text:
        if c == "u":
            if not exclude:
                exclude = eu = ek = eh = 1
            if not exclude_GH:
                eG = 1  # noqa: N806
            eu = 0
        elif c == "k":
            if not exclude:
                exclude = eu = ek = eh = 1
            ek = 0
        elif c == "h":
            if not exclude:
                exclude = eu = ek = eh = 1
            eh = 0
        elif c == "G":
            if not exclude_GH:
                exclude_GH = eG = eH = 1  # noqa: N806
            eG = 0  # noqa: N806
        elif c == "H":
            if not exclude_GH:
                exclude_GH = eG = eH = 1  # noqa: N806
            eH = 0  # noqa: N806
        elif c == "I":
            eI = 1  # noqa: N806
        elif c == "p":
            precise += 1
            if not exclude_GH:
                eG = 1  # noqa: N806
        elif c == "P":
            state.precise_max = True
        elif c == "S":
            state.sample_read = True
        elif c == "D":
            state.pinned = 1
        elif c == "e":
            state.exclusive = 1
        elif c == "W":
            state.weak = True
        # 'b' (count with a BPF program) changes how perf reads the counter, not the attr.
    if precise > 3:
        raise ModifierError(f"modifier ':{text}' asks for precise level {precise}; the maximum is 3 (:ppp)")
    state.exclude_user, state.exclude_kernel, state.exclude_hv = eu, ek, eh
    state.exclude_host, state.exclude_guest, state.exclude_idle = eH, eG, eI
    state.precise_ip = precise
    state.exclude_GH = bool(exclude_GH)
    return state
