"""A debuginfod client: fetch a debug file by build-id the way elfutils' client does.

Same environment (DEBUGINFOD_URLS, DEBUGINFOD_CACHE_PATH, DEBUGINFOD_TIMEOUT) and the same cache
layout (<cache>/<build-id>/debuginfo), so files fetched by gdb, perf or eu-* are reused and the
other way round. Every failure means "no debug info" to the caller, never an exception.
"""

from __future__ import annotations

import logging
import os
import tempfile

log = logging.getLogger("hwprof.symbolize")

DEFAULT_TIMEOUT_S = 10.0


def server_urls() -> list[str]:
    return [url.rstrip("/") for url in os.environ.get("DEBUGINFOD_URLS", "").split() if url]


def cache_root() -> str:
    explicit = os.environ.get("DEBUGINFOD_CACHE_PATH")
    if explicit:
        return explicit
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "debuginfod_client")


def _timeout() -> float:
    try:
        value = float(os.environ.get("DEBUGINFOD_TIMEOUT", DEFAULT_TIMEOUT_S))
    except ValueError:
        return DEFAULT_TIMEOUT_S
    return value if value > 0 else DEFAULT_TIMEOUT_S


def fetch_debuginfo(build_id: bytes) -> tuple[str | None, str | None]:
    """(path of the cached debug file, None) or (None, why it could not be had)."""
    hex_id = build_id.hex()
    cached = os.path.join(cache_root(), hex_id, "debuginfo")
    if os.path.isfile(cached) and os.path.getsize(cached) > 0:
        return cached, None
    urls = server_urls()
    if not urls:
        return None, "DEBUGINFOD_URLS is not set"
    # urllib costs ~45 ms to import: only a run that really asks a server pays it.
    import urllib.error
    import urllib.request

    reasons = []
    for base in urls:
        url = f"{base}/buildid/{hex_id}/debuginfo"
        try:
            with urllib.request.urlopen(url, timeout=_timeout()) as response:  # noqa: S310 - user's servers
                payload = response.read()
        except urllib.error.HTTPError as exc:
            reasons.append(f"{base}: HTTP {exc.code}")
            continue
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            reasons.append(f"{base}: {reason}")
            continue
        if not payload.startswith(b"\x7fELF"):
            reasons.append(f"{base}: answer is not an ELF file")
            continue
        try:
            os.makedirs(os.path.dirname(cached), exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(cached), prefix=".tmp")
            with os.fdopen(fd, "wb") as out:
                out.write(payload)
            os.replace(tmp, cached)
            return cached, None
        except OSError:
            # A read-only cache still lets this run use the file.
            fd, tmp = tempfile.mkstemp(prefix="hwprof-debuginfo-")
            with os.fdopen(fd, "wb") as out:
                out.write(payload)
            return tmp, None
    return None, "; ".join(reasons)
