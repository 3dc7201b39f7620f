"""The vdso has no file on disk: copy this kernel's image out of our own address space once.

Every process on one kernel maps the same vdso, so our copy symbolizes any process's [vdso] frames.
"""

from __future__ import annotations

import hashlib
import os
import tempfile


def vdso_image_path(cache_dir: str | None) -> str | None:
    try:
        with open("/proc/self/maps") as maps:
            line = next((ln for ln in maps if ln.rstrip().endswith("[vdso]")), None)
        if line is None:
            return None
        low, high = (int(x, 16) for x in line.split()[0].split("-"))
        with open("/proc/self/mem", "rb") as mem:
            mem.seek(low)
            data = mem.read(high - low)
    except (OSError, ValueError, OverflowError):
        return None
    digest = hashlib.sha1(data).hexdigest()[:16]
    folder = os.path.join(cache_dir, "symbolize") if cache_dir else tempfile.gettempdir()
    path = os.path.join(folder, f"vdso-{digest}.so")
    if os.path.exists(path):
        return path
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-vdso-")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except OSError:
        return None
    return path
