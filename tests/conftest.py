"""Fixtures shared by every test tier."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOBODY = 65534


def _nobody_prefix() -> list[str]:
    """Run as uid/gid 65534 with no capabilities but CAP_DAC_READ_SEARCH.

    Why that one capability: the checkout and the venv's interpreter may sit under a root-only directory
    (pyenv in /root, a CI clone in /root/...). Reading files is not what is under test; perf_event_open's
    permission checks look at CAP_PERFMON/CAP_SYS_ADMIN/CAP_SYS_PTRACE and the paranoid level, none of
    which this grants, so perf sees an ordinary unprivileged user.
    """
    return [
        "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
        "--inh-caps=-all,+dac_read_search", "--ambient-caps=-all,+dac_read_search", "--",
    ]


@pytest.fixture
def run_unprivileged() -> Callable[..., subprocess.CompletedProcess]:
    """Run argv as an unprivileged user; skips (saying why) when the tests are not running as root."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user (tests already run unprivileged)")
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) is not installed")

    def run(argv: Sequence[str], **kwargs) -> subprocess.CompletedProcess:
        env = {**os.environ, "HOME": "/tmp", "PYTHONPATH": str(REPO)}
        env.update(kwargs.pop("env", {}))
        kwargs.setdefault("timeout", 120)
        kwargs.setdefault("cwd", "/tmp")
        return subprocess.run([*_nobody_prefix(), *argv], capture_output=True, text=True, env=env, **kwargs)

    return run


@pytest.fixture
def hwprof_cmd() -> list[str]:
    """The hwprof CLI as a subprocess argv, using this interpreter (the venv's)."""
    return [sys.executable, "-m", "hwprof"]


@pytest.fixture(scope="session")
def compile_c_programs(tmp_path_factory) -> Callable[..., dict[str, Path]]:
    """Compile every .c file of a folder once per session with the given gcc flags: name -> binary.

    One builder for the record, unwind and stat tiers: they differ only in flags (frame pointers on or off, the
    optimisation level), which are what their tests are about."""

    def build(sources: Path, label: str, flags: Sequence[str], libs: Sequence[str] = ()) -> dict[str, Path]:
        if not shutil.which("gcc"):
            pytest.skip("gcc is not installed (make apt-test installs it)")
        out = tmp_path_factory.mktemp(label)
        os.chmod(out, 0o755)  # unprivileged tests run these binaries too
        built = {}
        for source in sorted(sources.glob("*.c")):
            binary = out / source.stem
            subprocess.run(["gcc", *flags, "-o", str(binary), str(source), *libs], check=True)
            built[source.stem] = binary
        return built

    return build


class CgroupDir:
    """A cgroup v2 directory a test made: `name` is what -G/--cgroup take (relative to the hierarchy)."""

    def __init__(self, mount: Path, name: str) -> None:
        self.mount = mount
        self.name = name
        self.path = mount / name

    def child(self, name: str) -> CgroupDir:
        sub = CgroupDir(self.mount, f"{self.name}/{name}")
        sub.path.mkdir()
        return sub

    def move(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def start(self, argv: Sequence[str], **kwargs) -> subprocess.Popen:
        """Start argv inside this cgroup: a shell moves itself in, then execs argv (so argv's exec, mappings
        and every instruction happen inside)."""
        return subprocess.Popen(["sh", "-c", f'echo $$ > "{self.path}/cgroup.procs" && exec "$@"', "sh", *argv],
                                **kwargs)

    def pids(self) -> list[int]:
        return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]

    def remove(self) -> None:
        """Kill what is left inside (depth first) and remove the directories."""
        import signal
        import time

        for sub in sorted((p for p in self.path.iterdir() if p.is_dir()), reverse=True):
            CgroupDir(self.mount, f"{self.name}/{sub.name}").remove()
        deadline = time.monotonic() + 10
        while True:
            pids = self.pids()
            if not pids or time.monotonic() > deadline:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        self.path.rmdir()


@pytest.fixture
def cgroup_v2():
    """A fresh cgroup directory in the hierarchy that perf's -G names (cgroup v2 with perf_event), removed at the
    end of the test even when it fails, with whatever still runs inside killed."""
    import uuid

    from hwprof.errors import HwprofError
    from hwprof.system.cgroups import perf_cgroup_mount

    if os.geteuid() != 0:
        pytest.skip("creating a cgroup needs root")
    try:
        mount = perf_cgroup_mount()
    except HwprofError as exc:
        pytest.skip(str(exc))
    if mount.version != 2:
        pytest.skip(f"perf_event is bound to a cgroup v1 hierarchy here ({mount.path}); these tests use cgroup v2")
    group = CgroupDir(Path(mount.path), f"hwprof-test-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    group.path.mkdir()
    try:
        yield group
    finally:
        group.remove()
