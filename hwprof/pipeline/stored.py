"""The decoded, symbolized Profile of a stored recording, cached next to it in the store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from hwprof.definitions import stack_quality
from hwprof.errors import HwprofError
from hwprof.pipeline.decode import decode_file
from hwprof.pipeline.stacks import Symbolizer
from hwprof.pipeline.stages import Stage
from hwprof.profile import Profile


def load_profile(store, entry, symbolizer: Symbolizer | None, event: str | None = None,
                 stages: Sequence[Stage] = (), stacks: str = "full") -> Profile:
    """The decoded, symbolized Profile of a stored recording, cached next to it in the store."""
    from hwprof.store import validate_id

    suffix = "npz" if event is None else f"{_safe(event)}.npz"
    cache = store.cache_path(validate_id(entry.id), suffix)
    data = store.data_path(entry)
    if not data.exists():
        raise HwprofError(f"the capture file of {entry.id} is missing from the store ({data})")
    if cache.exists() and cache.stat().st_mtime >= data.stat().st_mtime:
        try:
            return Profile.load(cache)
        except HwprofError:
            pass  # stale or damaged cache: decode again
    if stacks != "full":  # a partial decode (decode_file's `stacks`) is never cached as the recording's profile
        return decode_file(data, symbolizer, event, stages=stages, stacks=stacks)
    profile = decode_file(data, symbolizer, event, stages=stages)
    profile = replace(profile, meta=replace(profile.meta, target=entry.target or profile.meta.target))
    if event is None and profile.n_samples and symbolizer is not None:
        # The index keeps the stack-quality score, so `hwprof ls` and the web list can show it.
        try:
            store.update(entry.id, stack_quality=stack_quality(profile).score)
        except HwprofError:
            pass  # a read-only store still reports
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        profile.save(cache)
    except OSError:
        pass  # a read-only store still reports
    return profile


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:60]
