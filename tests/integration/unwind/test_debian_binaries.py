"""Debian's own binaries, built without frame pointers, under `--call-graph dwarf`: hwprof's stacks reach main at
least as often as perf's on the same command, and where both reach it they are the same call path as `perf script`
unwinds from the same file, frame for frame, in at least 95% of the samples.

Known gap, allowed exactly where it occurs: a sample inside ld.so's lazy-binding `_dl_runtime_resolve_xsavec`, whose
CFA is rbx-based after it realigns the stack (hwprof evaluates rsp/rbp-based rules only, and says "no CFI"; perf
follows it). It shows up in one or two samples of about one python3.11 run in three: a sample perf unwinds through
that function and hwprof does not is not counted against hwprof; any other difference is. Both directions: hwprof's
capture unwound by both tools, and perf's capture unwound by both."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from perf_oracle import compare, hwprof_stacks, perf_stacks

PY_WORK = """
import json, re
def work(n):
    d = {}
    for i in range(n):
        s = json.dumps({"k": i, "v": [i, str(i)]})
        d[i % 97] = re.sub(r"\\d", "x", s)
    return sorted(d.values())
for _ in range(12): work(20000)
"""
SQL_WORK = """
create table t(a integer, b text);
with recursive c(x) as (select 1 union all select x+1 from c where x < 600000)
    insert into t select x, hex(randomblob(16)) from c;
create index ti on t(b);
select count(*), sum(length(b)) from t where b like '%AB%';
select a % 100, count(*) from t group by 1 order by 2 desc limit 3;
"""


def _perf() -> str:
    perf = shutil.which("perf")
    if perf is None:
        pytest.skip("perf is not installed (make apt-test installs linux-perf)")
    return perf


def _workload(name: str, tmp_path: Path) -> tuple[list[str], str, Path | None]:
    """(command, --call-graph value, stdin file)."""
    if name == "xz":
        data = tmp_path / "input.txt"
        data.write_bytes(subprocess.run(["base64"], input=bytes(range(256)) * 36000, capture_output=True,
                                        check=True).stdout * 2)
        return ["/usr/bin/xz", "-6", "-T1", "-c", str(data)], "dwarf", None
    if name == "python3.11":
        script = tmp_path / "work.py"
        script.write_text(PY_WORK)
        return ["/usr/bin/python3.11", str(script)], "dwarf", None
    sql = tmp_path / "work.sql"
    sql.write_text(SQL_WORK)
    # sqlite's parser and VDBE frames are large: 8 KiB holds the stack of under 1% of its samples (either tool)
    return ["/usr/bin/sqlite3", ":memory:"], "dwarf,32768", sql


@pytest.mark.parametrize("name", ["xz", "python3.11", "sqlite3"])
def test_debian_binary_stacks_match_perf(name, tmp_path):
    perf = _perf()
    command, mode, stdin = _workload(name, tmp_path)
    if not Path(command[0]).exists():
        pytest.skip(f"{command[0]} is not installed (make apt-test installs it)")
    ours_file, perf_file = tmp_path / "hwprof.data", tmp_path / "perf.data"

    def run(argv: list[str]) -> None:
        with open(stdin, "rb") if stdin else open("/dev/null", "rb") as feed:
            proc = subprocess.run(argv, stdin=feed, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")

    run([sys.executable, "-m", "hwprof", "record", "-q", "--call-graph", mode, "-F", "999", "-o", str(ours_file),
         "--", *command])
    run([perf, "record", "-q", "--call-graph", mode, "-F", "999", "-e", "cpu-clock", "-o", str(perf_file), "--",
         *command])
    for path in (ours_file, perf_file):
        result = compare(hwprof_stacks(path), perf_stacks(perf, path))
        assert result["samples"] > 200, result
        assert result["perf_main"] > 0.9, result  # the workload is one perf unwinds: a meaningful comparison
        assert result["ours_main"] * result["samples"] >= (
            result["perf_main"] * result["samples"] - result["known_gap"] - 0.01), (
            path.name, result)
        assert result["agree"] >= 0.95, (path.name, result)
