"""Turn store entries into what the pages draw: Profiles (and their payloads) and stat runs.

Decoding a perf.data and symbolizing it is the slow part of opening a recording, so the decoded Profile is cached
by hwprof.pipeline in the store's cache/ and the page payload next to it (`<id>.web.json.gz`), both keyed by the data
file's mtime: a second visit, or a restarted server, answers from disk.
"""

from __future__ import annotations

import gzip
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Callable

from hwprof.web.payload import PAYLOAD_VERSION, SampleFilter, build_payload, build_preview, dumps_payload

from hwprof.errors import HwprofError
from hwprof.profile import Profile
from hwprof.store import ProfileStore, StoreEntry

MAX_STAT_FILE = 64 * 1024 * 1024


def default_symbolizer():
    from hwprof.symbolize import Symbolizer

    return Symbolizer()


class EntrySource:
    """Loads profiles and payloads for entries of one store, with a small in-memory LRU on top of the disk cache."""

    def __init__(self, store: ProfileStore, symbolizer_factory: Callable[[], object] = default_symbolizer,
                 memory_entries: int = 4, filtered_entries: int = 16) -> None:
        self.store = store
        self.symbolizer_factory = symbolizer_factory
        self._memory: OrderedDict[tuple[str, float], tuple[bytes, bytes]] = OrderedDict()
        self._memory_entries = memory_entries
        self._filtered: OrderedDict[tuple[str, float, SampleFilter], bytes] = OrderedDict()
        self._filtered_entries = filtered_entries
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}  # one build per entry at a time (warm-up vs a request)

    def entry(self, entry_id: str) -> StoreEntry:
        return self.store.get(entry_id)

    def profile(self, entry: StoreEntry) -> Profile:
        path = self.store.data_path(entry)
        if not path.exists():
            raise HwprofError(f"the data file of {entry.id} is missing from the store")
        if path.suffix == ".npz":
            return Profile.load(path)
        if entry.kind == "stat":
            raise HwprofError(f"{entry.id} is a stat run (counts, no samples): open it as a stat page")
        if path.suffix == ".json":
            raise HwprofError(f"{entry.id} holds counts, not samples: there is no flame graph to draw")
        try:
            from hwprof.pipeline import load_profile
        except ImportError:
            raise HwprofError("this hwprof cannot decode perf.data recordings (hwprof.pipeline is missing)") from None
        from hwprof.offcpu.stage import stages_for

        return load_profile(self.store, entry, self.symbolizer_factory(), stages=stages_for(path))

    def payload_gzip(self, entry: StoreEntry, sample_filter: SampleFilter | None = None) -> bytes:
        """The payload as gzip-compressed JSON (HTML-safe), from memory, the disk cache, or built now.

        Stored compressed: the big profiles compress about 3:1 and most browsers take gzip as is.
        A filtered payload (one process or thread) lives only in a bounded in-memory LRU: users flip between a
        few threads, and one file per thread ever viewed would grow the store's cache without bound.
        """
        if sample_filter:
            return self._filtered_blob(entry, sample_filter)
        return self._blobs(entry)[0]

    def _filtered_blob(self, entry: StoreEntry, sample_filter: SampleFilter) -> bytes:
        data = self.store.data_path(entry)
        stamp = data.stat().st_mtime if data.exists() else 0.0
        key = (entry.id, stamp, sample_filter)
        with self._lock:
            cached = self._filtered.get(key)
            if cached is not None:
                self._filtered.move_to_end(key)
                return cached
            build_lock = self._building.setdefault(f"{entry.id}\0filtered", threading.Lock())
        with build_lock:
            with self._lock:
                cached = self._filtered.get(key)
            if cached is not None:
                return cached
            profile = self.profile(entry)
            if not sample_filter.mask(profile).any():
                raise HwprofError(f"{entry.id} has no samples of {sample_filter.describe()}")
            payload = build_payload(profile, title=entry.name or entry.target, entry=entry_summary(entry),
                                    sample_filter=sample_filter)
            blob = gzip.compress(dumps_payload(payload).encode(), compresslevel=1)
        with self._lock:
            self._filtered[key] = blob
            while len(self._filtered) > self._filtered_entries:
                self._filtered.popitem(last=False)
        return blob

    def preview_gzip(self, entry: StoreEntry) -> bytes:
        """The small first picture of the profile (payload.build_preview), gzip-compressed JSON."""
        return self._blobs(entry)[1]

    def _blobs(self, entry: StoreEntry) -> tuple[bytes, bytes]:
        data = self.store.data_path(entry)
        stamp = data.stat().st_mtime if data.exists() else 0.0
        key = (entry.id, stamp)
        with self._lock:
            cached = self._memory.get(key)
            if cached is not None:
                self._memory.move_to_end(key)
                return cached
            build_lock = self._building.setdefault(entry.id, threading.Lock())
        with build_lock:
            return self._load_or_build(entry, key, stamp)

    def _load_or_build(self, entry: StoreEntry, key: tuple[str, float], stamp: float) -> tuple[bytes, bytes]:
        with self._lock:
            cached = self._memory.get(key)
        if cached is not None:
            return cached
        paths = (self.store.cache_path(entry.id, "web.json.gz"), self.store.cache_path(entry.id, "web-preview.json.gz"))
        blobs = None
        if all(p.exists() and p.stat().st_mtime >= stamp for p in paths):
            blobs = (paths[0].read_bytes(), paths[1].read_bytes())
            if not _current_version(blobs[1]):
                blobs = None  # written by an older hwprof: its ratios (or shape) would be wrong now
        if blobs is None:
            payload = build_payload(self.profile(entry), title=entry.name or entry.target, entry=entry_summary(entry))
            self._fill_index(entry, payload)
            # level 1: half the time of level 5 for ~7% more bytes (measured on the 1M-sample benchmark profile)
            blobs = (gzip.compress(dumps_payload(payload).encode(), compresslevel=1),
                     gzip.compress(dumps_payload(build_preview(payload)).encode(), compresslevel=6))
            for path, blob in zip(paths, blobs, strict=True):
                tmp = path.with_name(path.name + ".tmp")
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp.write_bytes(blob)
                    tmp.replace(path)
                except OSError:
                    pass  # a read-only store still serves, it just rebuilds next time
        with self._lock:
            self._memory[key] = blobs
            while len(self._memory) > self._memory_entries:
                self._memory.popitem(last=False)
        return blobs

    def _fill_index(self, entry: StoreEntry, payload: dict) -> None:
        """An entry imported without its numbers (e.g. a perf.data copied in) gets them once it is decoded, so the
        store page can show samples, duration, lost records and stack quality."""
        meta, quality = payload["meta"], payload["quality"]
        if entry.samples or not meta.get("n_samples"):
            return
        try:
            self.store.update(entry.id, samples=int(meta["n_samples"]), lost=int(meta.get("lost") or 0),
                              duration_ns=int(entry.duration_ns or meta.get("duration_ns") or 0),
                              stack_quality=quality.get("score"))
        except (HwprofError, OSError):
            pass  # a read-only store: the page still shows the numbers, the list just lacks them

    def warm(self, limit: int = 3) -> None:
        """Build the payloads of the newest recordings that have none yet, so their first view is quick.

        Runs in a background thread of `hwprof serve`; failures are left for the page to report.
        """
        for entry in [e for e in self.store.list() if e.kind != "stat"][:limit]:
            if not self.store.cache_path(entry.id, "web.json.gz").exists():
                try:
                    self.payload_gzip(entry)
                except Exception:  # noqa: BLE001 - a broken entry shows its error when opened
                    continue

    def payload_json(self, entry: StoreEntry, sample_filter: SampleFilter | None = None) -> str:
        return gzip.decompress(self.payload_gzip(entry, sample_filter)).decode()

    def forget(self, entry_id: str) -> None:
        with self._lock:
            for key in [k for k in self._memory if k[0] == entry_id]:
                del self._memory[key]
            for key in [k for k in self._filtered if k[0] == entry_id]:
                del self._filtered[key]
        for suffix in ("web.json.gz", "web-preview.json.gz"):
            self.store.cache_path(entry_id, suffix).unlink(missing_ok=True)

    def stat_run(self, entry: StoreEntry) -> dict:
        path = self.store.data_path(entry)
        try:
            if path.stat().st_size > MAX_STAT_FILE:
                raise HwprofError(f"{entry.id}: stat file is larger than {MAX_STAT_FILE >> 20} MiB")
            raw = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise HwprofError(f"cannot read stat run {entry.id}: {exc}") from None
        run = normalize_stat(raw)
        run["entry"] = entry_summary(entry)
        return run


def entry_summary(entry: StoreEntry) -> dict:
    data = entry.to_json()
    data.pop("file", None)
    return data


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _text(value, limit: int = 500) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _event(raw) -> dict | None:
    if not isinstance(raw, dict):
        return None
    enabled, running = _number(raw.get("enabled_ns")), _number(raw.get("running_ns"))
    out = {
        "name": _text(raw.get("name")) or "?",
        "value": _number(raw.get("value")),
        "unit": _text(raw.get("unit")),
        "enabled_ns": enabled,
        "running_ns": running,
        "supported": raw.get("supported") is not False,
        "running_pct": (100.0 * running / enabled) if enabled and running is not None else None,
    }
    for key in ("stddev", "variance_pct", "time_ns", "interval_ns"):
        if _number(raw.get(key)) is not None:
            out[key] = _number(raw.get(key))
    return out


def _metric(raw) -> dict | None:
    if not isinstance(raw, dict):
        return None
    out = {"name": _text(raw.get("name")) or "?", "value": _number(raw.get("value")), "unit": _text(raw.get("unit"))}
    for key in ("error", "stddev", "low", "high"):
        if _number(raw.get(key)) is not None:
            out[key] = _number(raw.get(key))
    if _number(raw.get("uncertainty")) is not None:  # relative, as hwprof.metrics computes it
        out["uncertainty_pct"] = 100.0 * _number(raw["uncertainty"])
    if isinstance(raw.get("description"), str):
        out["description"] = _text(raw["description"])
    return out


def normalize_stat(raw) -> dict:
    """Read a `hwprof stat --json` document defensively: keep the fields the page uses, typed, bounded.

    Interval series may come as `intervals` (a list of {time_ns, events: [...]}) or as per-event lists; both end up
    as one list of points per event name, with time in ns since the start.
    """
    if not isinstance(raw, dict):
        raise HwprofError("a stat run must be a JSON object")
    events = [e for e in map(_event, raw.get("events") or []) if e]
    metrics = [m for m in map(_metric, raw.get("metrics") or []) if m]
    series: dict[str, list[tuple[float, float]]] = {}
    intervals = raw.get("intervals") or raw.get("interval") or raw.get("series") or []
    if isinstance(intervals, list):
        for i, point in enumerate(intervals[:100_000]):
            if not isinstance(point, dict):
                continue
            t = _number(point.get("time_ns")) or _number(point.get("t_ns")) or _number(point.get("time"))
            if t is None:
                t = float(i)
            for ev in point.get("events") or []:
                ev = _event(ev)
                if ev and ev["value"] is not None:
                    series.setdefault(ev["name"], []).append((t, ev["value"]))
            for m in point.get("metrics") or []:
                m = _metric(m)
                if m and m["value"] is not None:
                    series.setdefault(m["name"], []).append((t, m["value"]))
            if "name" in point and _number(point.get("value")) is not None:
                series.setdefault(_text(point["name"]), []).append((t, _number(point["value"])))
    slices = []
    for key, label in (("per_thread", "thread"), ("per_cpu", "cpu")):
        rows = raw.get(key) or []
        for row in rows[:4096] if isinstance(rows, list) else []:
            if not isinstance(row, dict):
                continue
            if label == "thread":
                comm = _text(row.get("comm"), 64)
                name = f"tid {_number(row.get('tid')) or 0:.0f}" + (f" ({comm})" if comm else "")
            else:
                name = f"cpu {_number(row.get('cpu')) or 0:.0f}"
            slices.append({"kind": label, "name": name,
                           "events": [e for e in map(_event, row.get("events") or []) if e]})
    return {
        "target": _text(raw.get("target")) or _text(" ".join(map(str, raw.get("command") or []))),
        "slices": slices,
        "duration_ns": _number(raw.get("duration_ns")),
        "events": events,
        "metrics": metrics,
        "series": [{"name": name, "t": [p[0] for p in points], "v": [p[1] for p in points]}
                   for name, points in series.items()],
        "notes": [_text(n) for n in raw.get("notes") or [] if isinstance(n, str)][:50],
        "topdown": _topdown(raw.get("topdown")),
    }


def _topdown(raw) -> dict | None:
    """`hwprof stat --topdown-level N`'s tree (hwprof.events.metricplan), typed and bounded for the page."""
    if not isinstance(raw, dict) or not isinstance(raw.get("nodes"), list):
        return None
    nodes = []
    for node in raw["nodes"][:2000]:
        if not isinstance(node, dict):
            continue
        level = _number(node.get("level"))
        nodes.append({
            "name": _text(node.get("name"), 120) or "?", "parent": _text(node.get("parent"), 120) or None,
            "level": int(min(max(level or 1, 1), 6)), "value": _number(node.get("value")),
            "unit": _text(node.get("unit"), 20), "uncertainty": _number(node.get("uncertainty")),
            "over_threshold": node.get("over_threshold") if isinstance(node.get("over_threshold"), bool) else None,
            "bottleneck": node.get("bottleneck") is True, "reason": _text(node.get("reason")),
        })
    return {"model": _text(raw.get("model"), 60), "cpuid": _text(raw.get("cpuid"), 60),
            "level": int(_number(raw.get("level")) or 0), "nodes": nodes}


def _current_version(preview_gzip: bytes) -> bool:
    """Whether a cached payload has this hwprof's shape (its small preview carries the version)."""
    try:
        return json.loads(gzip.decompress(preview_gzip)).get("version") == PAYLOAD_VERSION
    except (OSError, ValueError, EOFError):
        return False
