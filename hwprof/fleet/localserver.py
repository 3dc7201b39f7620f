"""A throwaway ClickHouse server: Debian's `clickhouse-server` binary with its config in a temporary directory.

No service manager is involved: the server runs as a child process on a free loopback port, keeps its data, logs
and config under `root`, and is stopped (SIGTERM, then SIGKILL after a grace period) by `stop()`. The test suite,
the benchmarks and anyone trying the fleet backend on one machine use it. A second user with a password exists
so wrong-credential handling can be tested against the real server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from hwprof.errors import HwprofError

SERVER_BINARIES = ("/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server", "/usr/bin/clickhouse")
START_TIMEOUT_S = 60

_CONFIG = """<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{root}/log/server.log</log><errorlog>{root}/log/server.err.log</errorlog>
    <size>10M</size><count>1</count></logger>
  <tcp_port>{port}</tcp_port>
  <http_port>{http_port}</http_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{root}/data/</path>
  <tmp_path>{root}/tmp/</tmp_path>
  <user_files_path>{root}/user_files/</user_files_path>
  <format_schema_path>{root}/format_schemas/</format_schema_path>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>64</max_concurrent_queries>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
</yandex>
"""

_USERS = """<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>{max_memory}</max_memory_usage></default></profiles>
  <users>
    <default><password></password><networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile><quota>default</quota></default>
    <{user}><password>{password}</password><networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile><quota>default</quota></{user}>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
"""


def _die_with_parent() -> None:
    """In the server's child process before exec: SIGTERM when the process that started it dies, so a test run
    killed by a timeout (no fixture teardown) leaves no server behind."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


def server_binary() -> str | None:
    for path in SERVER_BINARIES:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("clickhouse-server")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalClickHouse:
    root: Path
    port: int = 0
    http_port: int = 0           # the HTTP interface (bulk loads in FORMAT Native: benchmarks/fleet_ingest.py)
    user: str = "hwprof"
    password: str = "hwprof-test-password"
    max_memory: int = 2_000_000_000
    process: subprocess.Popen | None = None

    def url(self, database: str = "hwprof", *, with_password: bool = True) -> str:
        if with_password:
            return f"clickhouse://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"
        return f"clickhouse://127.0.0.1:{self.port}/{database}"

    def start(self) -> LocalClickHouse:
        binary = server_binary()
        if binary is None:
            raise HwprofError("clickhouse-server is not installed (apt-get install clickhouse-server)")
        self.root = Path(self.root)
        for sub in ("data", "tmp", "log", "user_files", "format_schemas"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        while not self.http_port or self.http_port == self.port:
            self.http_port = free_port()
        (self.root / "config.xml").write_text(_CONFIG.format(root=escape(str(self.root)), port=self.port,
                                                             http_port=self.http_port))
        (self.root / "users.xml").write_text(_USERS.format(user=self.user, password=escape(self.password),
                                                           max_memory=self.max_memory))
        log = open(self.root / "log" / "stdout.log", "ab")
        self.process = subprocess.Popen([binary, f"--config-file={self.root / 'config.xml'}"], cwd=self.root,
                                        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True, preexec_fn=_die_with_parent)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise HwprofError(f"clickhouse-server exited with {self.process.returncode}: "
                                  f"{self._log_tail()}")
            if self._answers():
                return self
            time.sleep(0.2)
        self.stop()
        raise HwprofError(f"clickhouse-server did not answer on port {self.port} within {START_TIMEOUT_S} s")

    def _answers(self) -> bool:
        import logging

        from clickhouse_driver import Client

        client = Client("127.0.0.1", port=self.port, connect_timeout=1, send_receive_timeout=5)
        # The driver logs every refused connection with its traceback; while the server starts, that is expected.
        driver_log = logging.getLogger("clickhouse_driver.connection")
        was_disabled, driver_log.disabled = driver_log.disabled, True
        try:
            client.execute("SELECT 1")
            return True
        except Exception:  # noqa: BLE001 -- any failure here only means "not ready yet"
            return False
        finally:
            driver_log.disabled = was_disabled
            client.disconnect()

    def _log_tail(self) -> str:
        for name in ("server.err.log", "stdout.log"):
            with contextlib.suppress(OSError):
                lines = (self.root / "log" / name).read_text(errors="replace").strip().splitlines()
                if lines:
                    return lines[-1][-300:]
        return "(no log)"

    def stop(self) -> None:
        """Stop the server and wait for it (its whole process group)."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def pause(self) -> None:
        """Make the server unreachable without losing its data (an outage): SIGSTOP would leave connections
        hanging until timeouts, so the server is stopped; resume() starts it again on the same port."""
        self.stop()

    def resume(self) -> None:
        self.process = None
        self.start()

    def __enter__(self) -> LocalClickHouse:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
