"""Dynamic PMUs from sysfs (/sys/bus/event_source/devices/<pmu>): type number, `format/` term layouts,
`events/` aliases with their `.scale` and `.unit`, and the `cpumask` of package-scoped PMUs.

perf builds `msr/tsc/`, `power/energy-pkg/` or `cpu/event=0xc0,umask=0x1/` from exactly these files.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cached_property

from hwprof.perf.syscall import read_text
from hwprof.system.cpus import expand_cpu_list

SYSFS_PMU_ROOT = "/sys/bus/event_source/devices"
CPU_PMU_NAMES = ("cpu", "cpu_core", "cpu_atom")

_FORMAT_RE = re.compile(r"^(config[0-9]?):([0-9]+(?:-[0-9]+)?(?:,[0-9]+(?:-[0-9]+)?)*)$")


class PmuError(ValueError):
    pass


@dataclass(frozen=True)
class FormatField:
    """One `format/<term>` file: which attr field and which bits (LSB first) the term's value goes to."""

    name: str
    target: str  # config, config1, config2, config3
    bits: tuple[tuple[int, int], ...]  # inclusive (low, high) ranges, in value order

    @classmethod
    def parse(cls, name: str, text: str) -> FormatField:
        m = _FORMAT_RE.match(text.strip())
        if not m:
            raise PmuError(f"cannot read PMU format '{name}': {text.strip()!r}")
        ranges = []
        for part in m.group(2).split(","):
            lo, _, hi = part.partition("-")
            ranges.append((int(lo), int(hi or lo)))
        return cls(name, m.group(1), tuple(ranges))

    @property
    def width(self) -> int:
        return sum(hi - lo + 1 for lo, hi in self.bits)

    def encode(self, value: int) -> int:
        """Spread `value` over the field's bits; perf refuses values that do not fit, so do we."""
        if value < 0 or value >> self.width:
            raise PmuError(f"value {value:#x} is too big for term '{self.name}' ({self.width} bits)")
        out = 0
        shift = 0
        for lo, hi in self.bits:
            width = hi - lo + 1
            out |= ((value >> shift) & ((1 << width) - 1)) << lo
            shift += width
        return out

    def mask(self) -> int:
        return self.encode((1 << self.width) - 1)


@dataclass(frozen=True)
class PmuAlias:
    """An `events/<name>` file: terms like `event=0x3c,umask=0x0`, plus scale and unit for printing."""

    name: str
    terms: str
    scale: float = 1.0
    unit: str = ""
    per_pkg: bool = False


@dataclass(frozen=True)
class Pmu:
    name: str
    type: int
    path: str = field(repr=False)

    @cached_property
    def formats(self) -> dict[str, FormatField]:
        out = {}
        directory = os.path.join(self.path, "format")
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return {}
        for name in names:
            text = read_text(os.path.join(directory, name))
            if text is not None:
                out[name] = FormatField.parse(name, text)
        return out

    @cached_property
    def aliases(self) -> dict[str, PmuAlias]:
        directory = os.path.join(self.path, "events")
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return {}
        out = {}
        for name in names:
            if "." in name:
                continue  # .scale, .unit, .per-pkg, .snapshot belong to an alias
            terms = read_text(os.path.join(directory, name))
            if terms is None:
                continue
            scale_text = read_text(os.path.join(directory, name + ".scale"))
            try:
                scale = float(scale_text) if scale_text else 1.0
            except ValueError:
                scale = 1.0
            unit = (read_text(os.path.join(directory, name + ".unit")) or "").strip()
            per_pkg = (read_text(os.path.join(directory, name + ".per-pkg")) or "0").strip() == "1"
            out[name] = PmuAlias(name, terms.strip(), scale, unit, per_pkg)
        return out

    @cached_property
    def cpus(self) -> tuple[int, ...] | None:
        """CPUs a package- or socket-scoped PMU must be opened on (sysfs cpumask); None for core PMUs."""
        if self.name in CPU_PMU_NAMES:
            return None
        for leaf in ("cpumask", "cpus"):
            text = read_text(os.path.join(self.path, leaf))
            if text is not None and text.strip():
                try:
                    return tuple(expand_cpu_list(text))
                except ValueError:
                    return None
        return None

    @property
    def is_core(self) -> bool:
        return self.name in CPU_PMU_NAMES or self.name.startswith("armv")

    def find_alias(self, name: str) -> PmuAlias | None:
        """perf matches alias names case-insensitively (`msr/TSC/` works)."""
        aliases = self.aliases
        if name in aliases:
            return aliases[name]
        lowered = name.lower()
        for alias_name, alias in aliases.items():
            if alias_name.lower() == lowered:
                return alias
        return None


class PmuRegistry:
    """The PMUs under one sysfs root (a fixture directory in unit tests, the real one otherwise)."""

    def __init__(self, root: str = SYSFS_PMU_ROOT) -> None:
        self.root = root
        self._pmus: dict[str, Pmu] | None = None

    @property
    def pmus(self) -> dict[str, Pmu]:
        if self._pmus is None:
            out = {}
            try:
                names = sorted(os.listdir(self.root))
            except OSError:
                names = []
            for name in names:
                path = os.path.join(self.root, name)
                text = read_text(os.path.join(path, "type"))
                if text is None:
                    continue
                try:
                    out[name] = Pmu(name, int(text), path)
                except ValueError:
                    continue
            self._pmus = out
        return self._pmus

    def get(self, name: str) -> Pmu | None:
        return self.pmus.get(name)

    def matching(self, name: str) -> list[Pmu]:
        """`name` exactly, else perf's uncore convention: `uncore_imc` means uncore_imc_0, uncore_imc_1, ..."""
        if name in self.pmus:
            return [self.pmus[name]]
        pattern = re.compile(re.escape(name) + r"_[0-9]+$")
        return [pmu for pmu_name, pmu in self.pmus.items() if pattern.match(pmu_name)]

    def hybrid_core_pmus(self) -> list[Pmu]:
        """The core PMUs of a hybrid CPU (Intel cpu_core and cpu_atom), empty on an ordinary one."""
        hybrid = [self.pmus[n] for n in ("cpu_core", "cpu_atom") if n in self.pmus]
        return hybrid if len(hybrid) > 1 else []

    def has_core_pmu(self) -> bool:
        return any(pmu.is_core for pmu in self.pmus.values())

    def alias_owners(self, alias: str) -> list[tuple[Pmu, PmuAlias]]:
        """Every PMU that has an `events/<alias>` file: what a bare name like `tsc` resolves to."""
        out = []
        for pmu in self.pmus.values():
            found = pmu.find_alias(alias)
            if found is not None:
                out.append((pmu, found))
        return out
