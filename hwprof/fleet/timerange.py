"""`--time START,END` for the fleet store: absolute times, times relative to now, or `hwprof report`'s own form.

Each side may be empty (open), `now`, `-1h` / `-30m` / `-90s` / `-2d` (before now), unix seconds, or an ISO-8601
date-time (UTC unless it names a zone). Plain small numbers and percentages keep the local report's meaning:
seconds from the first stored sample that matches, or a share of the matching span.
"""

from __future__ import annotations

import datetime as dt
import re
import time

from hwprof.errors import HwprofError

_AGO = re.compile(r"^-(\d+(?:\.\d+)?)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
ABSOLUTE_FROM = 1_000_000_000  # unix seconds (2001-09-09); smaller numbers are offsets from the first sample


def needs_bounds(text: str) -> bool:
    """Whether the range is relative to the stored data (so the caller must look up its first/last time)."""
    return any(_is_relative(p.strip()) for p in text.split(","))


def _is_relative(part: str) -> bool:
    if part.endswith("%"):
        return True
    try:
        return 0 <= float(part) < ABSOLUTE_FROM
    except ValueError:
        return False


def parse_time_range(text: str, first_s: float = 0.0, last_s: float = 0.0,
                     now: float | None = None) -> tuple[float | None, float | None]:
    parts = text.split(",")
    if len(parts) != 2:
        raise HwprofError(f"--time expects START,END (e.g. -1h,now or 2026-01-01T14:00,2026-01-01T14:10), "
                          f"got {text!r}")
    now = time.time() if now is None else now
    out: list[float | None] = []
    for part in (p.strip() for p in parts):
        if not part:
            out.append(None)
        elif part == "now":
            out.append(now)
        elif match := _AGO.match(part):
            out.append(now - float(match.group(1)) * _UNIT[match.group(2)])
        elif part.endswith("%"):
            try:
                out.append(first_s + (last_s - first_s) * float(part[:-1]) / 100.0)
            except ValueError:
                raise HwprofError(f"--time: {part!r} is not a percentage") from None
        else:
            try:
                value = float(part)
                out.append(value if value >= ABSOLUTE_FROM else first_s + value)
            except ValueError:
                try:
                    moment = dt.datetime.fromisoformat(part)
                except ValueError:
                    raise HwprofError(f"--time: {part!r} is not a time (now, -1h, unix seconds, ISO date-time, "
                                      f"seconds from the first sample, or N%)") from None
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=dt.UTC)
                out.append(moment.timestamp())
    start, end = out
    if start is not None and end is not None and start > end:
        raise HwprofError(f"--time: start {parts[0]} is after end {parts[1]}")
    return start, end
