"""Every behaviour stays: reports of a fixed set of real captures are byte-identical to the committed outputs.

The captures (golden/, made by golden/make_fixtures.py from golden/work.c): hwprof's `record -g`, perf's
`record -g`, a `{cpu-clock,page-faults}` group with reads in every sample from each tool, and the raw result of a
`probe --stacks` session. Each is reported the way a user asks for it (`hwprof report` default table,
`--no-children`, `--folded`, `--json`, `--call-graph`, `--sort dso,symbol`, `--raw`, `--weight`), stdout and stderr.

Symbolization is made deterministic by a symbolizer that names the workload's frames from its committed symbol
table (golden/work.syms, with part of `main` reported as an inlined call), every other module's frames by their
4 KiB page, and kernel addresses by theirs: the test then depends on the decoder, stack resolution and the
renderers, not on this machine's libc or kernel.

A change of behaviour that is meant (a fix) re-creates the expected files with HWPROF_REGEN_GOLDEN=1 and shows the
diff in its commit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from hwprof.symbolize.frame import SymbolizedFrame

GOLDEN = Path(__file__).parent / "golden"
EXPECTED = GOLDEN / "expected"
WORK = "/tmp/hwprof-golden/work"
REGEN = os.environ.get("HWPROF_REGEN_GOLDEN") == "1"


def _work_symbols() -> list[tuple[int, str]]:
    out = []
    for line in (GOLDEN / "work.syms").read_text().splitlines():
        addr, _, name = line.split()
        out.append((int(addr, 16), name))
    return out


class GoldenSymbolizer:
    """The Symbolizer protocol with fixed answers (see the module docstring)."""

    def __init__(self, **_options: object) -> None:
        self.work = _work_symbols()
        self.starts = np.array([a for a, _ in self.work], dtype=np.uint64)

    def symbolize_offsets(self, path, file_offsets, build_id=None):
        out = []
        for off in np.asarray(file_offsets, dtype=np.uint64).tolist():
            if path == WORK:
                i = int(np.searchsorted(self.starts, off, side="right")) - 1
                if i < 0 or off >= 0x13FD:
                    out.append(())
                    continue
                start, name = self.work[i]
                line = 100 + (off - start) // 8
                real = SymbolizedFrame(name, "work.c", line, False, path, off, off - start)
                if name == "main" and off - start >= 0x60:
                    out.append((SymbolizedFrame("round_body", "work.c", 200 + (off - start) // 8, True, path, off),
                                real))
                else:
                    out.append((real,))
            else:
                page = off & ~0xFFF
                out.append((SymbolizedFrame(f"{Path(path).name}@{page:#x}", None, None, False, path, off,
                                            off - page),))
        return out

    def symbolize_kernel(self, addrs):
        return [(SymbolizedFrame(f"k@{a & ~0xFFF:x}", None, None, False, "[kernel.kallsyms]", a),)
                for a in np.asarray(addrs, dtype=np.uint64).tolist()]

    def symbolize_jit(self, pid, addrs, perf_map_path=None):
        return [() for _ in np.asarray(addrs).tolist()]


CAPTURES = ("hwprof", "perf", "group", "perf-group")
MODES: dict[str, list[str]] = {
    "table": [],
    "no-children": ["--no-children"],
    "folded": ["--folded"],
    "json": ["--json"],
    "call-graph": ["--call-graph"],
    "sort-dso": ["--sort", "dso,symbol", "--no-children"],
    "raw": ["--raw", "--no-children"],
}
GROUP_MODES: dict[str, list[str]] = {
    "weight-folded": ["--folded", "--weight", "page-faults"],
    "weight-table": ["--weight", "page-faults"],
}


def _check(name: str, text: str) -> None:
    path = EXPECTED / name
    if REGEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"{path} is missing: re-create the expected outputs (see the module docstring)"
    expected = path.read_text()
    assert text == expected, f"{name} differs from the golden output"


def _cases() -> list[tuple[str, str, list[str]]]:
    cases = [(capture, mode, argv) for capture in CAPTURES for mode, argv in MODES.items()]
    cases += [(capture, mode, argv) for capture in ("group", "perf-group") for mode, argv in GROUP_MODES.items()]
    return cases


@pytest.mark.parametrize(("capture", "mode", "argv"), _cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_report_is_unchanged(capture, mode, argv, monkeypatch, capsys):
    import hwprof.symbolize

    from hwprof.cli import main

    monkeypatch.setattr(hwprof.symbolize, "Symbolizer", GoldenSymbolizer)
    monkeypatch.chdir(GOLDEN)
    code = main(["report", "-i", f"{capture}.perf.data", *argv])
    out, err = capsys.readouterr()
    _check(f"{capture}.{mode}.out", f"exit {code}\n{out}")
    _check(f"{capture}.{mode}.err", err)


def _probe_result():
    from hwprof.collectors.probe_spec import Probe, ProbeKind, parse_spec
    from hwprof.collectors.probes import Hit, Mode, ProbeCounts, SessionResult, Target

    from hwprof.perf.records import Mmap

    data = json.loads((GOLDEN / "probe.json").read_text())
    probes = []
    for p in data["probes"]:
        kind = ProbeKind(p["kind"])
        probes.append(ProbeCounts(Probe(parse_spec(kind, p["spec"]), kind, p["label"]), "tracefs"))
    result = SessionResult(Mode.STACKS, Target(command=tuple(data["target"])), probes,
                           duration_ns=data["duration_ns"], lost=data["lost"])
    result.comms.update({int(k): v for k, v in data["comms"].items()})
    result.hits.extend(Hit(probe, pid, tid, time, cpu, tuple(chain)) for probe, pid, tid, time, cpu, chain
                       in data["hits"])
    result.maps.extend(Mmap(**m) for m in data["maps"])
    result.proc_maps.update({int(pid): [tuple(m) for m in maps] for pid, maps in data["proc_maps"].items()})
    return result


def test_probe_stacks_profile_is_unchanged():
    from hwprof.collectors.probe_stacks import build_profile

    from hwprof.folded import profile_folded
    from hwprof.report import ReportOptions, build_report, render_call_graph, render_text

    profile = build_profile(_probe_result(), GoldenSymbolizer())
    mask = np.ones(profile.n_samples, dtype=bool)
    weights = np.ones(profile.n_samples, dtype=np.float64)
    _check("probe.folded", "".join(line + "\n" for line in profile_folded(profile)))
    _check("probe.table", render_text(build_report(profile, ReportOptions(children=True), "probe")))
    _check("probe.no-children", render_text(build_report(profile, ReportOptions(children=False), "probe")))
    _check("probe.json", json.dumps(build_report(profile, ReportOptions(), "probe").to_json(), indent=1) + "\n")
    _check("probe.call-graph", render_call_graph(profile, mask, weights, 0.5))
