"""`hwprof list` entries for the named vendor events and metrics of this CPU model (or PERF_CPUID's)."""

from __future__ import annotations

from hwprof.errors import HwprofError
from hwprof.events.catalog import CatalogEntry
from hwprof.events.pmu import PmuRegistry
from hwprof.perf.attr import PerfEventAttr


def _source(model) -> str:
    return "Intel perfmon" if model.vendor == "intel" else "Linux perf AMD JSON"


def vendor_entries(pmus: PmuRegistry, topics: tuple[str, ...] = ()
                   ) -> tuple[list[tuple[CatalogEntry, PerfEventAttr | None]], str | None]:
    """Every core event of the model with its encoding, and, when they should not be opened here (PERF_CPUID
    names another model), the reason they are not probed."""
    from hwprof.events.cpuid import CpuidError, machine_cpuid
    from hwprof.events.vendor import VendorDataError, current_model

    try:
        model = current_model()
    except CpuidError as exc:
        raise HwprofError(str(exc), exit_code=2) from None
    except VendorDataError:
        return [], None
    if model is None:
        return [], None
    out: list[tuple[CatalogEntry, PerfEventAttr | None]] = []
    reason = None
    here = machine_cpuid()
    if model.cpuid.overridden and (here is None or here.without_stepping != model.cpuid.without_stepping):
        reason = (f"PERF_CPUID={model.cpuid.text} ({model.name}) is not this CPU "
                  f"({here.text if here else 'unknown'}): its events are listed, not opened")
    wanted = {t.lower() for t in topics}
    for event in model.events():
        if wanted and event.topic.lower() not in wanted:
            continue
        name = f"{event.pmu}/{event.name}/" if model.is_hybrid else event.name
        description = event.description + (" [deprecated]" if event.deprecated else "")
        if event.precise:
            description += " [precise]"
        # attrs are made when an entry is opened (catalog._probe): most listings open one or none of them
        out.append((CatalogEntry(name, "vendor", description, (), event.pmu, "", event.config_terms,
                                 topic=event.topic), None))
    return out, reason


def metric_entries() -> list[CatalogEntry]:
    from hwprof.events.cpuid import CpuidError
    from hwprof.events.vendor import VendorDataError, current_model

    try:
        model = current_model()
    except CpuidError as exc:
        raise HwprofError(str(exc), exit_code=2) from None
    except VendorDataError:
        return []
    if model is None:
        return []
    out = []
    for metric in model.metrics():
        topic = metric.groups[0] if metric.groups else (metric.category or "metrics")
        label = metric.description if len(metric.description) <= 140 else metric.description[:137] + "..."
        if metric.level and metric.is_tma:
            topic = "Top-down (TMA tree; hwprof stat --topdown-level N)"
            label = f"[level {metric.level}" + (f" under {metric.parent}] " if metric.parent else "] ") + label
        out.append(CatalogEntry(metric.name, "metric", label, metric.groups, metric.pmu, metric.unit,
                                metric.expression, topic=topic))
    return out


def model_title(kind: str) -> str:
    """Section title naming the model and the data source."""
    from hwprof.events.vendor import current_model

    model = current_model()
    if model is None:
        return kind
    what = "events" if kind == "vendor" else "metrics"
    return f"{model.cpuid.text} ({model.name}) {what} [{_source(model)}]"
