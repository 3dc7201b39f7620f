"""The event-list language of `perf stat -e`, turned into EventGroups with the attrs perf would use.

Grammar (what perf accepts for counting):
    list     := item (',' item)*
    item     := '{' event (',' event)* '}' [':' MODS] | event
    event    := NAME [':' MODS]                       cycles, cache-misses:u, L1-dcache-load-misses, tsc
              | 'r' HEX [':' MODS]                    r1a8
              | PMU '/' [TERM (',' TERM)*] '/' [[':'] MODS]      msr/tsc/, cpu/event=0xc0,umask=0x1/u
              | SYSTEM ':' TRACEPOINT [':' MODS]      sched:sched_switch, syscalls:sys_enter_*
              | 'mem:' ADDR ['/' LEN] [':' RWX] [':' MODS]   hardware breakpoint
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from hwprof.errors import HwprofError
from hwprof.events import generic, tracefs
from hwprof.events.modifiers import ModifierError, ModifierState, apply_modifier
from hwprof.events.pmu import CPU_PMU_NAMES, Pmu, PmuAlias, PmuError, PmuRegistry
from hwprof.events.spec import EventGroup, EventSpec
from hwprof.perf.abi import PerfType
from hwprof.perf.attr import PerfEventAttr


class EventParseError(HwprofError):
    """A bad event string: the message names the string and, where possible, what was meant."""


def _close_matches(word: str, options, n: int = 3, cutoff: float = 0.6) -> list[str]:
    """difflib's nearest names, for the error of a misspelt event; difflib is imported only then (start-up)."""
    import difflib

    return difflib.get_close_matches(word, options, n=n, cutoff=cutoff)


_RAW_RE = re.compile(r"^r([0-9a-fA-F]+)$")
_CONFIG_TERMS = ("config", "config1", "config2", "config3")
_BP_TYPES = {"r": 1, "w": 2, "x": 4}
_BP_LENGTHS = (1, 2, 4, 8)
PERF_PMU_TYPE_SHIFT = 32


@dataclass
class _Draft:
    """An event while it is being built; frozen into an EventSpec at the end."""

    name: str
    attr: PerfEventAttr
    pmu: str
    scale: float = 1.0
    unit: str = ""
    is_hardware: bool = False
    is_tracepoint: bool = False
    cpus: tuple[int, ...] | None = None
    sample_period: int | None = None
    sample_freq: int | None = None
    has_modifiers: bool = False
    state: ModifierState = field(default_factory=ModifierState)

    def freeze(self) -> EventSpec:
        return EventSpec(name=self.name, attr=self.attr, pmu=self.pmu, scale=self.scale, unit=self.unit,
                         is_hardware=self.is_hardware, is_tracepoint=self.is_tracepoint, cpus=self.cpus,
                         sample_period=self.sample_period, sample_freq=self.sample_freq,
                         sample_read=self.state.sample_read, weak_group=self.state.weak,
                         precise_max=self.state.precise_max)


def _new_attr(type_: int, config: int = 0) -> PerfEventAttr:
    # event_attr_init(): perf counts the host only unless told otherwise.
    return PerfEventAttr(type=type_, config=config, exclude_guest=1)


def _parse_int(text: str, what: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise EventParseError(f"{what}: {text!r} is not a number") from None


# --- splitting ---------------------------------------------------------------------------------------------

def split_items(text: str) -> list[str]:
    """Split at top-level commas; commas inside `{...}` and inside `pmu/terms/` stay."""
    items: list[str] = []
    depth = 0
    in_terms = False
    start = 0
    for i, c in enumerate(text):
        if c == "{" and not in_terms:
            if depth:
                raise EventParseError(f"nested groups are not allowed: '{text}'")
            depth = 1
        elif c == "}" and not in_terms:
            if not depth:
                raise EventParseError(f"unbalanced '}}' in '{text}'")
            depth = 0
        elif c == "/" and not _is_breakpoint_at(text, i):
            in_terms = not in_terms
        elif c == "," and not in_terms and not depth:
            items.append(text[start:i])
            start = i + 1
    if depth:
        raise EventParseError(f"unbalanced '{{' in '{text}'")
    if in_terms:
        raise EventParseError(f"unterminated PMU terms (missing '/') in '{text}'")
    items.append(text[start:])
    return items


def _is_breakpoint_at(text: str, index: int) -> bool:
    """A '/' inside `mem:ADDR/LEN` is a length, not a PMU-term delimiter."""
    begin = max(text.rfind(",", 0, index), text.rfind("{", 0, index)) + 1
    return text[begin:index].strip().startswith("mem:")


# --- the parser --------------------------------------------------------------------------------------------

class EventParser:
    def __init__(self, pmus: PmuRegistry | None = None, tracefs_path: str | None = None, vendor=None) -> None:
        self.pmus = pmus or PmuRegistry()
        self._tracefs = tracefs_path
        self._vendor = False if vendor is None else vendor
        self._synthetic_pmus: dict[str, Pmu] = {}

    @property
    def tracefs(self) -> str:
        if self._tracefs is None:
            try:
                self._tracefs = tracefs.require_tracefs()
            except tracefs.TracefsError as exc:
                raise EventParseError(str(exc)) from None
        return self._tracefs

    def parse(self, text: str | Iterable[str]) -> list[EventGroup]:
        texts = [text] if isinstance(text, str) else list(text)
        groups: list[EventGroup] = []
        for one in texts:
            if not one.strip():
                raise EventParseError("empty event list")
            for item in split_items(one):
                groups.extend(self._parse_item(item.strip(), one))
        return groups

    def _parse_item(self, item: str, whole: str) -> list[EventGroup]:
        if not item:
            raise EventParseError(f"empty event in '{whole}' (stray ',')")
        if item.startswith("{"):
            return [self._parse_group(item)]
        if item.startswith("}") or "{" in item or "}" in item:
            raise EventParseError(f"misplaced brace in '{item}'")
        return [EventGroup((d.freeze(),), False) for d in self._parse_event(item)]

    def _parse_group(self, item: str) -> EventGroup:
        close = item.index("}")
        inner, tail = item[1:close], item[close + 1:]
        group_mods = ""
        if tail:
            if not tail.startswith(":"):
                raise EventParseError(f"unexpected '{tail}' after group '{item[:close + 1]}'")
            group_mods = tail[1:]
        members: list[_Draft] = []
        for event in split_items(inner):
            if not event.strip():
                raise EventParseError(f"empty event in group '{item}'")
            members.extend(self._parse_event(event.strip()))
        if not members:
            raise EventParseError(f"empty group '{item}'")
        if group_mods:
            for index, member in enumerate(members):
                self._apply_group_modifier(member, group_mods, leader=index == 0)
        return EventGroup(tuple(m.freeze() for m in members), True)

    # --- modifiers ---------------------------------------------------------------------------------------

    @staticmethod
    def _apply_event_modifier(draft: _Draft, mods: str) -> None:
        try:
            state = apply_modifier(mods, ModifierState())
        except ModifierError as exc:
            raise EventParseError(f"'{draft.name}': {exc}") from None
        state.apply_to(draft.attr)
        draft.state = state
        draft.has_modifiers = True
        draft.name = f"{draft.name}{mods}" if draft.name.endswith("/") else f"{draft.name}:{mods}"

    @staticmethod
    def _apply_group_modifier(draft: _Draft, mods: str, leader: bool) -> None:
        try:
            start = ModifierState.from_attr(draft.attr, draft.state.exclude_GH)
            start.sample_read, start.weak = draft.state.sample_read, draft.state.weak
            state = apply_modifier(mods, start)
        except ModifierError as exc:
            raise EventParseError(f"group modifier: {exc}") from None
        pinned, exclusive = draft.attr.pinned, draft.attr.exclusive
        state.apply_to(draft.attr)
        if not leader:
            draft.attr.pinned, draft.attr.exclusive = pinned, exclusive
        draft.state = state
        if draft.has_modifiers or draft.name.endswith("/"):
            draft.name += mods
        else:
            draft.name += ":" + mods
        draft.has_modifiers = True

    # --- one event ---------------------------------------------------------------------------------------

    def _parse_event(self, text: str) -> list[_Draft]:
        if text.startswith("mem:"):
            return [self._breakpoint(text)]
        if "/" in text:
            return self._pmu_event(text)
        parts = text.split(":")
        if len(parts) == 1:
            return self._named(text)
        # Tracepoint systems have no '.', vendor event names (MEM_LOAD_RETIRED.L3_MISS:pp) do.
        if len(parts) == 2 and (self._is_known_name(parts[0]) or not parts[1] or "." in parts[0]):
            drafts = self._named(parts[0])
            for draft in drafts:
                self._apply_event_modifier(draft, parts[1])
            return drafts
        if len(parts) in (2, 3):
            drafts = self._tracepoints(parts[0], parts[1])
            if len(parts) == 3:
                for draft in drafts:
                    self._apply_event_modifier(draft, parts[2])
            return drafts
        raise EventParseError(f"cannot parse event '{text}' (too many ':')")

    def _is_known_name(self, name: str) -> bool:
        if name in generic.SYMBOLIC_EVENTS or _RAW_RE.match(name):
            return True
        try:
            if generic.parse_cache_event(name) is not None:
                return True
        except generic.CacheNameError:
            return True
        return bool(self.pmus.alias_owners(name)) or bool(self._vendor_events(name))

    # --- vendor events (hwprof.events.vendor): perfmon / perf JSON names for this CPU model ---------------

    @property
    def vendor(self):
        """The vendor data of this CPU model (PERF_CPUID overrides it); None where no source describes it."""
        if self._vendor is False:
            from hwprof.events.cpuid import CpuidError
            from hwprof.events.vendor import VendorDataError, current_model

            try:
                self._vendor = current_model()
            except CpuidError as exc:
                raise EventParseError(str(exc)) from None
            except VendorDataError:
                self._vendor = None
        return self._vendor

    def _vendor_events(self, name: str, any_word: bool = False) -> list:
        if "." not in name and "_" not in name and not any_word:
            return []  # most vendor event names have one: plain words do not load the data until nothing else fits
        model = self.vendor
        return model.find(name) if model is not None else []

    def _core_pmu(self, name: str) -> Pmu:
        """The core PMU `name` of this machine, or the vendor's formats where this machine has none."""
        pmu = self.pmus.get(name) or self._synthetic_pmus.get(name)
        if pmu is None and name.startswith("armv"):  # arm64: this machine's PMUv3 under whatever name it has
            pmu = next((p for n, p in self.pmus.pmus.items() if n.startswith(("armv8", "armv9"))), None)
        if pmu is None and self.vendor is not None and name in self.vendor.core_pmus + ("cpu",):
            from hwprof.events.vendor import VendorCorePmu

            pmu = self._synthetic_pmus[name] = VendorCorePmu(name, self.vendor.vendor)
        if pmu is None:
            raise EventParseError(self._unknown_pmu_message(name, name + "/"))
        return pmu

    def _vendor_drafts(self, name: str) -> list[_Draft]:
        events = self._vendor_events(name, any_word=True)
        drafts = []
        for event in events:
            pmu = self._core_pmu(event.pmu)
            label = f"{event.pmu}/{name}/" if len(events) > 1 else name
            draft = self._pmu_draft(pmu, event.term_string.split(","), label)
            drafts.append(draft)
        return drafts

    def _named(self, name: str) -> list[_Draft]:
        symbolic = generic.SYMBOLIC_EVENTS.get(name)
        if symbolic is not None:
            if symbolic.tool:
                pmu = "tool"
            elif symbolic.type == PerfType.HARDWARE:
                pmu = "cpu"
            else:
                pmu = "software"
            if symbolic.type == PerfType.HARDWARE:
                return self._hardware(name, PerfType.HARDWARE, symbolic.config)
            return [_Draft(name, _new_attr(symbolic.type, symbolic.config), pmu, unit=symbolic.unit)]
        raw = _RAW_RE.match(name)
        if raw:
            return self._hardware(name, PerfType.RAW, int(raw.group(1), 16))
        try:
            cache = generic.parse_cache_event(name)
        except generic.CacheNameError as exc:
            raise EventParseError(str(exc)) from None
        if cache is not None:
            return self._hardware(name, PerfType.HW_CACHE, cache)
        owners = self.pmus.alias_owners(name)
        if owners:
            return [self._pmu_draft(pmu, [name], name) for pmu, _ in owners]
        drafts = self._vendor_drafts(name)
        if drafts:
            return drafts
        raise EventParseError(self._unknown_message(name))

    def _hardware(self, name: str, type_: int, config: int) -> list[_Draft]:
        """A CPU event; on a hybrid CPU (cpu_core + cpu_atom) one per core type, as perf does: generic and cache
        events carry the PMU's type in config bits 32-63 (PERF_PMU_TYPE_SHIFT), raw events take the PMU's type."""
        hybrid = self.pmus.hybrid_core_pmus()
        if not hybrid:
            return [_Draft(name, _new_attr(type_, config), "cpu", is_hardware=True)]
        drafts = []
        for pmu in hybrid:
            if type_ == PerfType.RAW:
                attr = _new_attr(pmu.type, config)
            else:
                attr = _new_attr(type_, config | pmu.type << PERF_PMU_TYPE_SHIFT)
            drafts.append(_Draft(f"{pmu.name}/{name}/", attr, pmu.name, is_hardware=True))
        return drafts

    def _unknown_message(self, name: str) -> str:
        candidates = set(generic.SYMBOLIC_EVENTS)
        candidates.update(n for n, _ in generic.cache_events())
        for pmu in self.pmus.pmus.values():
            candidates.update(pmu.aliases)
            candidates.update(f"{pmu.name}/{alias}/" for alias in pmu.aliases)
        model = self.vendor if ("." in name or "_" in name) else None
        if model is not None:
            from hwprof.events.vendor import all_event_names

            other = all_event_names().get(name.upper())
            mine = {"amd": "AMD", "arm": "Arm"}.get(model.vendor, "Intel")
            if other is not None and other != mine:
                return (f"'{name}' is an {other} event; this CPU model ({model.cpuid.text}, {model.name}) is "
                        f"{mine}: see 'hwprof list' for its events")
            # Vendor names are matched in any case: suggest in the case the user wrote.
            lower = name.islower()
            candidates.update(n.lower() if lower else n for n in model.event_names())
        close = _close_matches(name, sorted(candidates), n=3, cutoff=0.6)
        if close:
            return f"unknown event '{name}' (did you mean: {', '.join(close)}?)"
        if model is not None:
            other = "" if model.find(name) else f" for {model.cpuid.text} ({model.name})"
            return f"unknown event '{name}'{other} (run 'hwprof list' to see the events of this CPU model)"
        return f"unknown event '{name}' (run 'hwprof list' to see the events on this machine)"

    # --- PMU events ----------------------------------------------------------------------------------------

    def _pmu_event(self, text: str) -> list[_Draft]:
        m = re.match(r"^([^/]+)/([^/]*)/(.*)$", text)
        if not m:
            raise EventParseError(f"cannot parse PMU event '{text}' (expected pmu/term,term=value/[:modifiers])")
        pmu_name, term_text, mods = m.groups()
        if mods.startswith(":"):
            # perf's grammar has no ':' after the closing '/'; say how to write it instead of guessing.
            raise EventParseError(f"'{text}': write PMU event modifiers right after the closing '/' "
                                  f"({text[: len(text) - len(mods)]}{mods[1:]})")
        terms = [t.strip() for t in term_text.split(",")] if term_text.strip() else []
        if any(not t for t in terms):
            raise EventParseError(f"empty term in '{text}'")
        name = text[: len(text) - len(m.group(3))]
        if self._is_symbolic(pmu_name):
            drafts = [self._symbolic_with_terms(pmu_name, terms, name)]
        else:
            matching = self.pmus.matching(pmu_name)
            if not matching and self.vendor is not None and (
                    pmu_name in CPU_PMU_NAMES and self.vendor.cpuid.overridden
                    and (pmu_name in self.vendor.core_pmus or pmu_name == "cpu")
                    or pmu_name.startswith("armv") and pmu_name in self.vendor.core_pmus):
                # PERF_CPUID names a model this machine is not: encode with that vendor's core PMU formats.
                matching = [self._core_pmu(pmu_name)]
            if not matching:
                raise EventParseError(self._unknown_pmu_message(pmu_name, text))
            drafts = [self._pmu_draft(pmu, terms, name) for pmu in matching]
        if mods:
            for draft in drafts:
                self._apply_event_modifier(draft, mods)
        return drafts

    @staticmethod
    def _is_symbolic(name: str) -> bool:
        if name in generic.SYMBOLIC_EVENTS or _RAW_RE.match(name):
            return True
        try:
            return generic.parse_cache_event(name) is not None
        except generic.CacheNameError:
            return True

    def _unknown_pmu_message(self, pmu_name: str, text: str) -> str:
        here = ", ".join(sorted(self.pmus.pmus)) or "none"
        if pmu_name in ("cpu", "cpu_core", "cpu_atom") and not self.pmus.has_core_pmu():
            return (f"'{text}': this machine has no CPU PMU (typical of VMs without PMU passthrough), "
                    f"so no raw CPU events; PMUs here: {here}")
        close = _close_matches(pmu_name, sorted(self.pmus.pmus), n=3, cutoff=0.6)
        hint = f"did you mean: {', '.join(close)}? " if close else ""
        return f"unknown PMU '{pmu_name}' in '{text}' ({hint}PMUs here: {here})"

    def _symbolic_with_terms(self, base: str, terms: list[str], name: str) -> _Draft:
        """`cpu-clock/period=1000/`: a named event with perf's generic config terms."""
        draft = self._named(base)[0]
        draft.name = name
        for term in terms:
            key, _, value = term.partition("=")
            if not self._apply_config_term(draft, key, value, term, base):
                raise EventParseError(f"term '{key}' is not valid for '{base}' "
                                      "(generic events take config, config1-3, name, period and freq)")
        return draft

    def _apply_config_term(self, draft: _Draft, key: str, value: str, term: str, owner: str) -> bool:
        """perf's config terms shared by every PMU; False if `key` is not one of them."""
        if key in _CONFIG_TERMS:
            if not value:
                raise EventParseError(f"term '{key}' needs a value in '{owner}'")
            setattr(draft.attr, key, _parse_int(value, f"term '{term}'") & ((1 << 64) - 1))
        elif key == "name":
            if not value:
                raise EventParseError(f"term 'name' needs a value in '{owner}'")
            draft.name = value
        elif key in ("period", "freq"):
            number = _parse_int(value, f"term '{term}'") if value else 0
            if number <= 0:
                raise EventParseError(f"term '{key}' needs a positive value in '{owner}'")
            if key == "period":
                draft.sample_period = number
            else:
                draft.sample_freq = number
        else:
            return False
        return True

    def _pmu_draft(self, pmu: Pmu, terms: list[str], name: str) -> _Draft:
        draft = _Draft(name, _new_attr(pmu.type), pmu.name, is_hardware=pmu.is_core, cpus=pmu.cpus)
        format_terms: list[tuple[str, int, str]] = []
        self._collect_terms(pmu, terms, draft, format_terms, depth=0)
        # Config terms were applied as found; format terms go in after them, in order, each replacing its bits.
        for key, value, _term in format_terms:
            fmt = pmu.formats[key]
            try:
                encoded = fmt.encode(value)
            except PmuError as exc:
                raise EventParseError(f"'{name}': {exc}") from None
            current = getattr(draft.attr, fmt.target)
            setattr(draft.attr, fmt.target, (current & ~fmt.mask()) | encoded)
        return draft

    def _apply_legacy_term(self, pmu: Pmu, key: str, draft: _Draft) -> bool:
        """`cpu_core/cycles/`, `cpu/L1-dcache-load-misses/`: a generic event on a named core PMU where sysfs has
        no alias of that name. On a hybrid CPU the PMU's type goes to config bits 32-63, as perf encodes it."""
        symbolic = generic.SYMBOLIC_EVENTS.get(key)
        if symbolic is not None and symbolic.type == PerfType.HARDWARE:
            type_, config = PerfType.HARDWARE, symbolic.config
        else:
            try:
                config = generic.parse_cache_event(key)
            except generic.CacheNameError as exc:
                raise EventParseError(str(exc)) from None
            if config is None:
                return False
            type_ = PerfType.HW_CACHE
        extended = pmu.type << PERF_PMU_TYPE_SHIFT if pmu in self.pmus.hybrid_core_pmus() else 0
        draft.attr.type, draft.attr.config = type_, config | extended
        return True

    def _collect_terms(self, pmu: Pmu, terms: list[str], draft: _Draft,
                       format_terms: list[tuple[str, int, str]], depth: int) -> None:
        if depth > 4:
            raise EventParseError(f"PMU '{pmu.name}': event aliases refer to each other in a loop")
        for term in terms:
            key, eq, value = term.partition("=")
            key = key.strip()
            value = value.strip()
            if key in pmu.formats:
                number = 1 if not eq else _parse_int(value, f"term '{term}' of PMU '{pmu.name}'")
                format_terms.append((key, number, term))
                continue
            alias = pmu.find_alias(key) if not eq or value == "?" else None
            if alias is None and not eq and pmu.is_core:
                alias = self._vendor_alias(pmu, key)
            if alias is not None:
                draft.scale, draft.unit = alias.scale, alias.unit
                alias_terms = [t.strip() for t in alias.terms.split(",") if t.strip()]
                self._collect_terms(pmu, alias_terms, draft, format_terms, depth + 1)
                continue
            if self._apply_config_term(draft, key, value, term, f"{pmu.name}/"):
                continue
            if not eq and pmu.is_core and depth == 0 and self._apply_legacy_term(pmu, key, draft):
                continue
            valid = sorted({*pmu.formats, *pmu.aliases, *_CONFIG_TERMS, "name", "period", "freq"})
            close = _close_matches(key, valid, n=3, cutoff=0.6)
            hint = f"did you mean: {', '.join(close)}? " if close else ""
            raise EventParseError(f"unknown term '{key}' for PMU '{pmu.name}' ({hint}"
                                  f"valid: {', '.join(valid)})")

    def _vendor_alias(self, pmu: Pmu, key: str) -> PmuAlias | None:
        """`cpu/mem_load_retired.l3_miss,cmask=1/`: a vendor event used as a term of its core PMU."""
        events = [e for e in self._vendor_events(key) if e.pmu == pmu.name or len(self._vendor_events(key)) == 1]
        if not events:
            return None
        return PmuAlias(events[0].name, events[0].term_string)

    # --- tracepoints ---------------------------------------------------------------------------------------

    def _tracepoints(self, system: str, name: str) -> list[_Draft]:
        if not system or not name:
            raise EventParseError(f"cannot parse '{system}:{name}' (tracepoints are SYSTEM:NAME)")
        try:
            root = self.tracefs
        except EventParseError:
            # Without tracefs, 'cyles:u' is far likelier a typo of an event than a tracepoint.
            names = _close_matches(system, sorted(generic.SYMBOLIC_EVENTS), n=1, cutoff=0.75)
            if names:
                raise EventParseError(f"unknown event '{system}' (did you mean: {names[0]}?)") from None
            raise
        drafts = []
        for sys_name, event in tracefs.expand(root, system, name):
            ident = tracefs.tracepoint_id(root, sys_name, event)
            if ident is None:
                raise EventParseError(self._unknown_tracepoint(root, sys_name, event))
            drafts.append(_Draft(f"{sys_name}:{event}", _new_attr(PerfType.TRACEPOINT, ident), "tracepoint",
                                 is_tracepoint=True))
        if not drafts:
            raise EventParseError(f"no tracepoint matches '{system}:{name}'")
        return drafts

    @staticmethod
    def _unknown_tracepoint(root: str, system: str, event: str) -> str:
        systems = tracefs.list_systems(root)
        if system not in systems:
            if not systems:
                return f"unknown tracepoint '{system}:{event}': no tracepoint is readable in {root}/events"
            close = _close_matches(system, systems, n=3, cutoff=0.6)
            names = _close_matches(system, sorted(generic.SYMBOLIC_EVENTS), n=1, cutoff=0.75)
            if names:
                return f"unknown event '{system}' (did you mean: {names[0]}?)"
            hint = f" (did you mean: {', '.join(c + ':' + event for c in close)}?)" if close else ""
            if "_" in system:
                from hwprof.events.vendor import all_event_names

                vendor = all_event_names().get(system.upper())
                if vendor is not None:
                    return f"'{system}' is an {vendor} event, not one of this CPU model's (see 'hwprof list')"
            return f"unknown tracepoint system '{system}' in '{system}:{event}'{hint}"
        close = _close_matches(event, tracefs.list_events(root, system), n=3, cutoff=0.6)
        hint = f" (did you mean: {', '.join(system + ':' + c for c in close)}?)" if close else ""
        return f"unknown tracepoint '{system}:{event}'{hint}"

    # --- breakpoints ---------------------------------------------------------------------------------------

    def _breakpoint(self, text: str) -> _Draft:
        parts = text.split(":")
        if len(parts) < 2 or not parts[1]:
            raise EventParseError(f"'{text}': a breakpoint is mem:ADDR[/LEN][:rwx][:modifiers]")
        address_text, _, length_text = parts[1].partition("/")
        address = _parse_int(address_text, f"breakpoint address in '{text}'")
        rest = parts[2:]
        bp_type = 0
        if rest and rest[0] and all(c in _BP_TYPES for c in rest[0]):
            access = rest.pop(0)
            if len(set(access)) != len(access):
                raise EventParseError(f"'{text}': repeated access type")
            for c in access:
                bp_type |= _BP_TYPES[c]
            if bp_type & 4 and bp_type & 3:
                raise EventParseError(f"'{text}': an execute breakpoint cannot also watch reads or writes")
        if len(rest) > 1:
            raise EventParseError(f"cannot parse breakpoint '{text}'")
        if not bp_type:
            bp_type = _BP_TYPES["r"] | _BP_TYPES["w"]
        if length_text:
            length = _parse_int(length_text, f"breakpoint length in '{text}'")
            if length not in _BP_LENGTHS:
                raise EventParseError(f"'{text}': breakpoint length must be 1, 2, 4 or 8")
        else:
            length = 8 if bp_type == _BP_TYPES["x"] else 4
        attr = _new_attr(PerfType.BREAKPOINT)
        attr.bp_type, attr.bp_addr, attr.bp_len = bp_type, address, length
        name = text[: len(text) - len(rest[0]) - 1] if rest else text
        draft = _Draft(name, attr, "breakpoint")
        if rest:
            self._apply_event_modifier(draft, rest[0])
        return draft


def parse_events(text: str | Iterable[str], pmus: PmuRegistry | None = None,
                 tracefs_path: str | None = None) -> list[EventGroup]:
    """Parse `-e` strings (one string or several, each a comma list) into groups, leader first.

    `pmus`/`tracefs_path` point the parser at another sysfs/tracefs tree (tests); by default the machine's.
    """
    return EventParser(pmus, tracefs_path).parse(text)


def parse_event(text: str, **kwargs) -> EventSpec:
    """Exactly one event (no group, no list, no glob that expands to several)."""
    groups = parse_events(text, **kwargs)
    if len(groups) != 1 or len(groups[0].events) != 1:
        raise EventParseError(f"'{text}' names {sum(len(g) for g in groups)} events; expected exactly one")
    return groups[0].events[0]
