"""The web view over a fleet store: pick labels and a time range, see the merged profile on the usual pages.

A selection (labels + time range + event) becomes a *view* with an id `fleet-<hex>`, kept in a bounded in-memory
table. The profile and diff pages then load `/api/profile/fleet-<hex>` like any stored recording, so the merged
flame graph, its time strip (samples, period and every counter over time), the top-functions table, the thread
(here: per-command) selector and the exports all come from the same pages and the same payload code. The merge
runs in ClickHouse (hwprof.fleet.clickhouse.merged_profile); the server only shapes its aggregated rows.

`/fleet` is the picker: label keys and values with their sample counts, the stored time span, top functions of
the selection computed in ClickHouse, and links to the flame graph of selection A and the diff A -> B.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from flask import Blueprint, jsonify, render_template, request
from hwprof.web.payload import SampleFilter, build_payload, build_preview, dumps_payload

from hwprof.errors import HwprofError
from hwprof.fleet.clickhouse import ClickHouseStore, Selector
from hwprof.fleet.timerange import parse_time_range
from hwprof.profile import Profile
from hwprof.store import StoreEntry

VIEW_PREFIX = "fleet-"
MAX_VIEWS = 64
MAX_LABELS = 8
_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class FleetView:
    id: str
    selector: Selector
    title: str
    event: str | None


def selection_from_query(args, prefix: str = "") -> tuple[Selector, str, str | None]:
    """A selection from query parameters: `{prefix}label=KEY:VALUE` (repeatable), `{prefix}from`, `{prefix}to`
    (now, -1h, unix seconds, ISO date-time), `{prefix}event`."""
    labels: dict[str, list[str]] = {}
    for item in args.getlist(f"{prefix}label")[:MAX_LABELS]:
        key, sep, value = item.partition(":")
        if not sep or not _KEY.match(key) or len(value) > 256:
            raise HwprofError(f"label filter must be KEY:VALUE (key of letters, digits, _ . -), got {item[:80]!r}")
        labels.setdefault(key, []).append(value)
    start_text, end_text = args.get(f"{prefix}from", "-1h"), args.get(f"{prefix}to", "now")
    if len(start_text) > 40 or len(end_text) > 40 or "," in start_text + end_text:
        raise HwprofError("from/to must be times such as -1h, now, 2026-01-15T14:00 or unix seconds")
    start, end = parse_time_range(f"{start_text},{end_text}")
    event = args.get(f"{prefix}event") or None
    if event is not None and len(event) > 200:
        raise HwprofError("event name too long")
    title = " ".join(f"{k}={v}" for k, vs in sorted(labels.items()) for v in vs) or "all hosts"
    title += f" [{start_text} .. {end_text}]"
    return Selector(start_s=start, end_s=end, labels={k: tuple(v) for k, v in labels.items()}), title, event


class FleetSource:
    """Views of one fleet store, with the interface of web.sources.EntrySource for `fleet-` ids."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._store: ClickHouseStore | None = None
        self._lock = threading.Lock()          # one query at a time: a driver connection is not thread-safe
        self._views: OrderedDict[str, FleetView] = OrderedDict()
        self._blobs: OrderedDict[tuple[str, SampleFilter], tuple[bytes, bytes]] = OrderedDict()
        self._profiles: OrderedDict[str, Profile] = OrderedDict()

    @staticmethod
    def owns(entry_id: str) -> bool:
        return entry_id.startswith(VIEW_PREFIX)

    def query(self, fn):
        """Run `fn(store)` under the connection lock, reconnecting once if the server went away meanwhile."""
        from hwprof.fleet.clickhouse import StoreUnavailable

        with self._lock:
            for attempt in (0, 1):
                if self._store is None:
                    self._store = ClickHouseStore.open(self.url)
                try:
                    return fn(self._store)
                except StoreUnavailable:
                    self._store = None
                    if attempt:
                        raise
        raise AssertionError("unreachable")

    def create_view(self, selector: Selector, title: str, event: str | None) -> FleetView:
        # Relative times ("-1h") are resolved now: a view is a fixed range, so its payload can be cached.
        digest = hashlib.blake2b(repr((selector, event)).encode(), digest_size=8).hexdigest()
        view = FleetView(f"{VIEW_PREFIX}{digest}", selector, title, event)
        with self._lock:
            self._views[view.id] = view
            self._views.move_to_end(view.id)
            while len(self._views) > MAX_VIEWS:
                self._views.popitem(last=False)
        return view

    def view(self, entry_id: str) -> FleetView:
        with self._lock:
            view = self._views.get(entry_id)
        if view is None:
            raise HwprofError(f"no profile {entry_id}: fleet views last while the server runs; pick the selection "
                              f"again on /fleet")
        return view

    # --- the EntrySource interface ---------------------------------------------------------------------
    def entry(self, entry_id: str) -> StoreEntry:
        view = self.view(entry_id)
        return StoreEntry(id=view.id, kind="record", file="", created=time.time(), name=view.title,
                          target=view.title)

    def profile(self, entry: StoreEntry) -> Profile:
        view = self.view(entry.id)
        with self._lock:
            cached = self._profiles.get(view.id)
        if cached is not None:
            return cached
        profile = self.query(lambda s: s.merged_profile(view.selector, event=view.event, max_bins=100))
        if not profile.total_samples:
            raise HwprofError(f"no stored samples match {view.title}")
        with self._lock:
            self._profiles[view.id] = profile
            while len(self._profiles) > 8:
                self._profiles.popitem(last=False)
        return profile

    def _built(self, entry: StoreEntry, sample_filter: SampleFilter) -> tuple[bytes, bytes]:
        key = (entry.id, sample_filter)
        with self._lock:
            cached = self._blobs.get(key)
        if cached is not None:
            return cached
        profile = self.profile(entry)
        if sample_filter and not sample_filter.mask(profile).any():
            raise HwprofError(f"{entry.id} has no samples of {sample_filter.describe()}")
        payload = build_payload(profile, title=entry.name, entry={"id": entry.id, "name": entry.name,
                                                                   "kind": "fleet"}, sample_filter=sample_filter)
        blobs = (gzip.compress(dumps_payload(payload).encode(), compresslevel=1),
                 gzip.compress(dumps_payload(build_preview(payload)).encode(), compresslevel=6))
        with self._lock:
            self._blobs[key] = blobs
            while len(self._blobs) > 16:
                self._blobs.popitem(last=False)
        return blobs

    def payload_gzip(self, entry: StoreEntry, sample_filter: SampleFilter | None = None) -> bytes:
        return self._built(entry, sample_filter or SampleFilter())[0]

    def payload_json(self, entry: StoreEntry, sample_filter: SampleFilter | None = None) -> str:
        return gzip.decompress(self.payload_gzip(entry, sample_filter)).decode()

    def preview_gzip(self, entry: StoreEntry) -> bytes:
        return self._built(entry, SampleFilter())[1]

    def forget(self, entry_id: str) -> None:
        raise HwprofError("fleet views cannot be renamed or deleted (the data lives in ClickHouse)")

    def stat_run(self, entry: StoreEntry) -> dict:
        raise HwprofError(f"{entry.id} is a fleet profile, not a stat run")

    def warm(self, limit: int = 3) -> None:
        return None


class RoutedSource:
    """The local store's EntrySource, with `fleet-` ids answered by the FleetSource."""

    def __init__(self, local, fleet: FleetSource) -> None:
        self.local = local
        self.fleet = fleet

    def _for(self, entry_or_id):
        entry_id = entry_or_id if isinstance(entry_or_id, str) else entry_or_id.id
        return self.fleet if self.fleet.owns(entry_id) else self.local

    def entry(self, entry_id: str):
        return self._for(entry_id).entry(entry_id)

    def profile(self, entry):
        return self._for(entry).profile(entry)

    def payload_gzip(self, entry, sample_filter=None):
        return self._for(entry).payload_gzip(entry, sample_filter)

    def payload_json(self, entry, sample_filter=None):
        return self._for(entry).payload_json(entry, sample_filter)

    def preview_gzip(self, entry):
        return self._for(entry).preview_gzip(entry)

    def forget(self, entry_id: str) -> None:
        self._for(entry_id).forget(entry_id)

    def stat_run(self, entry):
        return self._for(entry).stat_run(entry)

    def warm(self, limit: int = 3) -> None:
        self.local.warm(limit)


def fleet_blueprint(fleet: FleetSource) -> Blueprint:
    bp = Blueprint("fleet", __name__)

    @bp.get("/fleet")
    def fleet_page():
        return render_template("fleet.html", store_url=fleet.query(lambda s: s.url.display()))

    @bp.get("/api/fleet/summary")
    def api_summary():
        def run(store: ClickHouseStore) -> dict:
            out = store.summary()
            out["store"] = store.url.display()
            out["label_keys"] = store.label_keys()
            out["events"] = store.events()
            return out

        return jsonify(fleet.query(run))

    @bp.get("/api/fleet/labels/<key>")
    def api_label_values(key: str):
        if not _KEY.match(key):
            raise HwprofError(f"bad label key {key[:80]!r}")
        selector, _, _ = selection_from_query(request.args)
        values = fleet.query(lambda s: s.label_values(key, selector))
        return jsonify({"key": key, "values": [{"value": v, "samples": n} for v, n in values]})

    @bp.get("/api/fleet/top")
    def api_top():
        selector, title, event = selection_from_query(request.args)
        if event:
            selector = Selector(selector.start_s, selector.end_s, {**selector.labels, "event": (event,)})
        limit = min(max(int(request.args.get("limit", "50") or 50), 1), 500) \
            if (request.args.get("limit", "50") or "50").isdigit() else 50
        return jsonify({"title": title, "functions": fleet.query(lambda s: s.top_functions(selector, limit)),
                        "total": fleet.query(lambda s: s.total_samples(selector))})

    @bp.get("/api/fleet/series")
    def api_series():
        selector, title, _ = selection_from_query(request.args)
        return jsonify({"title": title, **fleet.query(lambda s: s.series(selector))})

    @bp.get("/api/fleet/view")
    def api_view():
        """Pin a selection (and optionally a second one, prefixed b_) as views the profile/diff pages can load."""
        selector, title, event = selection_from_query(request.args)
        view = fleet.create_view(selector, title, event)
        out = {"a": view.id, "title": title, "profile": f"/profile/{view.id}"}
        if request.args.get("b_from") or request.args.getlist("b_label"):
            b_selector, b_title, b_event = selection_from_query(request.args, "b_")
            b_view = fleet.create_view(b_selector, b_title, b_event or event)
            out.update({"b": b_view.id, "b_title": b_title, "diff": f"/diff?a={b_view.id}&b={view.id}"})
        return jsonify(out)

    return bp
