"""`make demo`: the main job end to end on a small workload, then the web view.

Each step runs the real CLI, as a user would type it, and the commands are echoed so they can be copied.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
HWPROF = [sys.executable, "-m", "hwprof"]


def step(title: str, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
    typed = ["hwprof", *argv[len(HWPROF):]] if argv[: len(HWPROF)] == HWPROF else argv
    shown = " ".join(map(shlex.quote, typed))
    print(f"\n=== {title}\n$ {shown}", flush=True)
    result = subprocess.run(argv)
    if check and result.returncode != 0:
        sys.exit(f"demo step failed ({result.returncode}): {shown}")
    return result


def build_workload(workdir: Path) -> Path:
    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        sys.exit("the demo needs a C compiler: apt-get install gcc")
    binary = workdir / "demo-workload"
    # Frame pointers everywhere, and no sibling calls or shrink-wrapping, which would hide callers from
    # a frame-pointer unwind (see workload.c).
    flags = ["-O2", "-g", "-fno-omit-frame-pointer", "-fno-optimize-sibling-calls", "-fno-shrink-wrap"]
    subprocess.run([cc, *flags, "-o", str(binary), str(HERE / "workload.c")], check=True)
    return binary


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="hwprof-demo-"))
    store = Path(os.environ.setdefault("HWPROF_HOME", str(Path.home() / ".local" / "share" / "hwprof")))
    workload = build_workload(workdir)
    step("What can this machine measure?", [*HWPROF, "check"])
    step("Count events on a command (hardware events show 'not supported' on a PMU-less VM)",
         [*HWPROF, "stat", "--", str(workload), "0.5"])
    step("Sample stacks with a counter group, into the profile store",
         [*HWPROF, "record", "-g", "-F", "999", "-e", "{cpu-clock,page-faults}", "--", str(workload), "1"])
    step("Top functions, with per-function page-faults per ms of CPU", [*HWPROF, "report", "--limit", "15"])
    step("The same as folded stacks (FlameGraph format)", [*HWPROF, "report", "--folded"])
    step("The profile store", [*HWPROF, "ls"])
    newest = subprocess.run([*HWPROF, "ls", "--kind", "record", "--json", "--limit", "1"], capture_output=True,
                            text=True, check=True).stdout
    entry_id = json.loads(newest)[0]["id"]
    port = os.environ.get("HWPROF_DEMO_PORT", "8080")
    print(f"\nStore: {store}\nFlame graph: http://127.0.0.1:{port}/profile/{entry_id}")
    if sys.stdin.isatty() and os.environ.get("HWPROF_DEMO_SERVE", "1") == "1":
        print("Serving the web view; press Ctrl-C to stop.", flush=True)
        try:
            subprocess.run([*HWPROF, "serve", "--port", port])
        except KeyboardInterrupt:
            pass
    else:
        print(f"Serve it with: .venv/bin/hwprof serve --port {port}")


if __name__ == "__main__":
    main()
