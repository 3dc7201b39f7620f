"""What a parsed event string becomes: events ready to open, in the groups the user asked for."""

from __future__ import annotations

from dataclasses import dataclass, field

from hwprof.perf.attr import PerfEventAttr
from hwprof.units import Cpu


@dataclass(frozen=True)
class EventSpec:
    """One event as perf would open it.

    `attr` carries only what the event string decides (type, config*, exclude bits, precise_ip, pinned,
    exclusive, breakpoint fields). Sampling and read-format fields are the caller's: copy() the attr and fill them.
    """

    name: str
    attr: PerfEventAttr = field(compare=False)
    pmu: str
    scale: float = 1.0
    unit: str = ""
    is_hardware: bool = False
    is_tracepoint: bool = False
    # Uncore-style PMUs (msr excepted, power, uncore_*) count per package: open them on these CPUs only,
    # system-wide. None means "any CPU / per task".
    cpus: tuple[Cpu, ...] | None = None
    # perf's `period=`/`freq=` terms: a request for the sampler, never applied to `attr` here.
    sample_period: int | None = None
    sample_freq: int | None = None
    # Modifier letters that are instructions to the tool rather than attr bits: S (sample the group by reading
    # it), W (weak group: split it when it cannot be scheduled), P (below).
    sample_read: bool = False
    weak_group: bool = False
    # `:P`: use the highest precise_ip the PMU accepts (the opener tries 3, 2, 1, 0).
    precise_max: bool = False

    @property
    def is_tool(self) -> bool:
        """duration_time, user_time, system_time: measured by the tool, not by a kernel counter."""
        return self.pmu == "tool"

    @property
    def type(self) -> int:
        return int(self.attr.type)

    @property
    def config(self) -> int:
        return int(self.attr.config)

    def attr_copy(self) -> PerfEventAttr:
        return self.attr.copy()

    def encoding(self) -> dict[str, int]:
        """The fields that identify the event (what the perf oracle test compares)."""
        a = self.attr
        return {
            "type": a.type, "config": a.config, "config1": a.config1, "config2": a.config2, "config3": a.config3,
            "exclude_user": a.exclude_user, "exclude_kernel": a.exclude_kernel, "exclude_hv": a.exclude_hv,
            "exclude_idle": a.exclude_idle, "exclude_host": a.exclude_host, "exclude_guest": a.exclude_guest,
            "precise_ip": a.precise_ip,
        }

    def __repr__(self) -> str:
        return f"EventSpec({self.name!r}, pmu={self.pmu!r}, {self.attr!r})"


@dataclass(frozen=True)
class EventGroup:
    """Events scheduled together (braces), or a lone event as a group of one. The leader comes first."""

    events: tuple[EventSpec, ...]
    is_group: bool = False

    @property
    def leader(self) -> EventSpec:
        return self.events[0]

    def __iter__(self):
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    @property
    def name(self) -> str:
        names = ",".join(e.name for e in self.events)
        return "{" + names + "}" if self.is_group else names
