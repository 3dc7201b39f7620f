"""Turn a copy of Intel's perfmon repository (github.com/intel/perfmon, BSD-3-Clause) into hwprof's shipped form.

What is kept: `mapfile.csv` rows for core events, hybrid core events and metrics, every event of those files
(encoding fields, counters, PEBS/precise, descriptions) and every metric (formula, events, constants,
threshold, TMA parent/level, groups). Uncore files are not shipped (their PMU names vary by kernel and their
data is several times the core data). Each source file becomes one xz-compressed JSON file, so a process
only decompresses the models it needs; `index.json` holds the mapfile rows and where the data came from.

    python -m hwprof.events.perfmon_build PERFMON_DIR [--out DIR]     # PERFMON_DIR: a checkout or a git dir
    hwprof list --refresh-perfmon PERFMON_DIR                         # same, into the user's data folder

A git directory without a work tree (a mirror) is read through `git show HEAD:path`.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import lzma
import os
import re
import subprocess
import sys
from collections.abc import Callable

from hwprof.errors import HwprofError

SHIPPED_TYPES = ("core", "hybridcore", "metrics")
# Event fields kept, under short keys (the loader reads these keys).
EVENT_FIELDS = {
    "EventName": "name", "EventCode": "code", "UMask": "umask", "UMaskExt": "umask_ext", "CounterMask": "cmask",
    "Invert": "inv", "EdgeDetect": "edge", "AnyThread": "any", "MSRIndex": "msr", "MSRValue": "msr_value",
    "Counter": "counter", "TakenAlone": "alone", "PEBS": "pebs", "Precise": "precise", "Data_LA": "data_la",
    "SampleAfterValue": "period", "BriefDescription": "brief", "PublicDescription": "public",
    "Deprecated": "deprecated", "Errata": "errata", "Speculative": "speculative", "PDISTCounter": "pdist",
}
_ZERO = {"", "0", "0x0", "0x00", "0x00000000", "na", "null", "none"}


def _reader(source: str) -> Callable[[str], bytes]:
    if os.path.isfile(os.path.join(source, "mapfile.csv")):
        def read(path: str) -> bytes:
            with open(os.path.join(source, path.lstrip("/")), "rb") as f:
                return f.read()
        return read
    if os.path.isdir(os.path.join(source, "objects")) or os.path.isfile(os.path.join(source, "HEAD")):
        def read_git(path: str) -> bytes:
            return subprocess.run(["git", "--git-dir", source, "show", f"HEAD:{path.lstrip('/')}"],
                                  check=True, capture_output=True).stdout
        return read_git
    raise HwprofError(f"'{source}' is not a perfmon checkout (no mapfile.csv) nor a git directory")


def _revision(source: str) -> str:
    git_dir = source if os.path.isdir(os.path.join(source, "objects")) else os.path.join(source, ".git")
    try:
        return subprocess.run(["git", "--git-dir", git_dir, "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _compact_event(raw: dict) -> dict:
    out = {}
    for key, short in EVENT_FIELDS.items():
        value = raw.get(key)
        if value is None:
            continue
        value = str(value).strip()
        if short in ("public", "brief", "name", "counter", "pdist"):
            if short == "public" and value == raw.get("BriefDescription", "").strip():
                continue
            if value:
                out[short] = value
        elif value.lower() not in _ZERO:
            out[short] = value
    return out


def _compact_metric(raw: dict) -> dict:
    keep = ("MetricName", "LegacyName", "ParentCategory", "Level", "BriefDescription", "UnitOfMeasure", "Events",
            "Constants", "Formula", "Category", "CountDomain", "Threshold", "MetricGroup", "LocateWith")
    out = {k: raw[k] for k in keep if k in raw and raw[k] not in ("", None, [])}
    threshold = out.get("Threshold")
    if isinstance(threshold, dict):
        threshold = {k: v for k, v in threshold.items() if k in ("Formula", "ThresholdMetrics") and v}
        if threshold.get("Formula"):
            out["Threshold"] = threshold
        else:
            out.pop("Threshold")
    return out


def _stem(filename: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", filename.strip("/").replace("/", "__").removesuffix(".json"))


def build(source: str, out_dir: str) -> dict:
    """Write the shipped form of `source` into `out_dir`; returns the index it wrote."""
    read = _reader(source)
    rows = list(csv.DictReader(io.StringIO(read("mapfile.csv").decode("utf-8-sig"))))
    os.makedirs(out_dir, exist_ok=True)
    entries = []
    written: dict[str, str] = {}
    for row in rows:
        kind = row.get("EventType", "").strip()
        if kind not in SHIPPED_TYPES:
            continue
        filename = row["Filename"].strip()
        if filename not in written:
            document = json.loads(read(filename))
            if kind == "metrics":
                body = {"metrics": [_compact_metric(m) for m in document.get("Metrics", [])]}
            else:
                body = {"events": [_compact_event(e) for e in document.get("Events", [])]}
            body["header"] = {k: v for k, v in document.get("Header", {}).items() if k in ("Info", "Version",
                                                                                          "DatePublished")}
            stem = _stem(filename)
            _write_xz(os.path.join(out_dir, stem + ".json.xz"), body)
            written[filename] = stem
        entries.append({"cpuid": row["Family-model"].strip(), "version": row.get("Version", "").strip(),
                        "kind": kind, "file": written[filename],
                        "core_type": (row.get("Core Type") or "").strip(),
                        "role": (row.get("Core Role Name") or "").strip()})
    index = {"source": "https://github.com/intel/perfmon", "revision": _revision(source),
             "license": "BSD-3-Clause (see LICENSE)", "mapfile": entries}
    with open(os.path.join(out_dir, "index.json"), "w") as f:
        json.dump(index, f, indent=0)
    license_text = read("LICENSE")
    with open(os.path.join(out_dir, "LICENSE"), "wb") as f:
        f.write(license_text)
    names = sorted({e["name"] for stem in written.values() if "metrics" not in stem
                    for e in json.loads(lzma.decompress(open(os.path.join(out_dir, stem + ".json.xz"), "rb").read()))
                    .get("events", [])})
    _write_xz(os.path.join(out_dir, "names.json.xz"), names)
    for name in os.listdir(out_dir):
        if name.endswith(".json.xz") and name != "names.json.xz" and \
                name.removesuffix(".json.xz") not in written.values():
            os.unlink(os.path.join(out_dir, name))  # a file the newer mapfile no longer names
    return index


def _write_xz(path: str, body) -> None:
    with open(path, "wb") as f:
        f.write(lzma.compress(json.dumps(body, separators=(",", ":")).encode(), preset=9))


# AMD core events and metrics from Linux perf's JSON (tools/perf/pmu-events/arch/x86/amdzen*): every JSON file of
# a model's folder is one of perf's topics, named by the file (cache.json on Zen 1-4; load-store.json, decode.json,
# branch-prediction.json on Zen 5); events with a Unit belong to uncore PMUs (L3, data fabric, memory controller)
# and are left out.
AMD_EVENT_KEYS = ("EventName", "EventCode", "UMask", "BriefDescription", "PublicDescription", "CounterMask", "Invert",
                  "EdgeDetect", "SampleAfterValue")
AMD_METRIC_KEYS = ("MetricName", "MetricExpr", "MetricGroup", "ScaleUnit", "BriefDescription", "MetricThreshold")


def _amd_model(model_dir: str) -> dict:
    """The shipped form of one model's folder: {"events": [...], "metrics": [...]}, files read in name order."""
    events, metrics = [], []
    for name in sorted(os.listdir(model_dir) if os.path.isdir(model_dir) else ()):
        path = os.path.join(model_dir, name)
        if not name.endswith(".json") or not os.path.isfile(path):
            continue
        topic = name.removesuffix(".json")
        with open(path) as jf:
            for item in json.load(jf):
                if "MetricExpr" in item:
                    metrics.append({k: v for k, v in item.items() if k in AMD_METRIC_KEYS})
                elif "EventName" in item and not item.get("Unit"):
                    kept = {k: v for k, v in item.items() if k in AMD_EVENT_KEYS}
                    kept["_topic"] = topic
                    events.append(kept)
    return {"events": events, "metrics": metrics}


def build_perf_amd(linux_dir: str, out_dir: str) -> dict:
    """Write the AMD Zen models of a Linux source tree's perf JSON into `out_dir`."""
    arch = os.path.join(linux_dir, "tools", "perf", "pmu-events", "arch", "x86")
    if not os.path.isfile(os.path.join(arch, "mapfile.csv")):
        raise HwprofError(f"'{linux_dir}' is not a Linux source tree (no {arch}/mapfile.csv)")
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    all_names: set[str] = set()
    with open(os.path.join(arch, "mapfile.csv")) as f:
        for row in csv.reader(line for line in f if not line.startswith("#")):
            if len(row) < 4 or not row[0].startswith("AuthenticAMD") or row[3].strip() != "core":
                continue
            model = row[2].strip()
            body = _amd_model(os.path.join(arch, model))
            all_names.update(e["EventName"] for e in body["events"])
            _write_xz(os.path.join(out_dir, model + ".json.xz"), body)
            rows.append({"cpuid": row[0].strip(), "version": row[1].strip(), "model": model})
    index = {"source": "Linux tools/perf/pmu-events/arch/x86 (amdzen*)", "license": "GPL-2.0 (see LICENSE)",
             "mapfile": rows}
    with open(os.path.join(out_dir, "index.json"), "w") as f:
        json.dump(index, f, indent=0)
    _write_xz(os.path.join(out_dir, "names.json.xz"), sorted(all_names))
    notice = ("The files in this folder are derived from the AMD Zen event and metric JSON of Linux perf\n"
              "(tools/perf/pmu-events/arch/x86/amdzen*), part of the Linux kernel, which is provided under\n"
              "GPL-2.0 WITH Linux-syscall-note (see the kernel's COPYING). The GPL-2.0 text follows.\n\n")
    gpl = os.path.join(linux_dir, "LICENSES", "preferred", "GPL-2.0")
    with open(os.path.join(out_dir, "LICENSE"), "w") as f:
        f.write(notice + (open(gpl).read() if os.path.isfile(gpl) else "See https://www.gnu.org/licenses/"
                                                                         "old-licenses/gpl-2.0.txt\n"))
    return index


def build_perf_arm64(linux_dir: str, out_dir: str) -> dict:
    """arm64 core events and metrics of Linux perf's JSON (tools/perf/pmu-events/arch/arm64), with perf's
    `ArchStdEvent` references resolved against the architecture's standard events and metrics."""
    arch = os.path.join(linux_dir, "tools", "perf", "pmu-events", "arch", "arm64")
    if not os.path.isfile(os.path.join(arch, "mapfile.csv")):
        raise HwprofError(f"'{linux_dir}' is not a Linux source tree (no {arch}/mapfile.csv)")
    standard: dict[str, dict] = {}
    for name in sorted(os.listdir(arch)):
        if name.endswith(".json"):
            with open(os.path.join(arch, name)) as f:
                for item in json.load(f):
                    key = item.get("EventName") or item.get("MetricName")
                    if key:
                        standard.setdefault(key.upper(), item)
    os.makedirs(out_dir, exist_ok=True)
    rows, names, written = [], set(), {}
    with open(os.path.join(arch, "mapfile.csv")) as f:
        for row in csv.reader(line for line in f if not line.startswith("#")):
            if len(row) < 4 or row[3].strip() != "core" or not row[0].startswith("0x"):
                continue
            model = row[2].strip()
            stem = model.replace("/", "__")
            if stem not in written:
                events, metrics = [], []
                folder = os.path.join(arch, model)
                for file in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
                    if not file.endswith(".json"):
                        continue
                    with open(os.path.join(folder, file)) as jf:
                        for item in json.load(jf):
                            merged = {**standard.get(item.get("ArchStdEvent", "").upper(), {}), **item}
                            if "MetricExpr" in merged:
                                metrics.append({k: v for k, v in merged.items() if k in (
                                    "MetricName", "MetricExpr", "MetricGroup", "ScaleUnit", "BriefDescription",
                                    "MetricThreshold")})
                            elif merged.get("EventName") and merged.get("EventCode") and not merged.get("Unit"):
                                kept = {k: v for k, v in merged.items() if k in (
                                    "EventName", "EventCode", "BriefDescription", "PublicDescription")}
                                kept["_topic"] = file.removesuffix(".json")
                                events.append(kept)
                                names.add(merged["EventName"])
                _write_xz(os.path.join(out_dir, stem + ".json.xz"), {"events": events, "metrics": metrics})
                written[stem] = True
            rows.append({"cpuid": row[0].strip(), "version": row[1].strip(), "model": stem})
    _write_xz(os.path.join(out_dir, "names.json.xz"), sorted(names))
    with open(os.path.join(out_dir, "index.json"), "w") as f:
        json.dump({"source": "Linux tools/perf/pmu-events/arch/arm64", "license": "GPL-2.0 (see LICENSE)",
                   "mapfile": rows}, f, indent=0)
    with open(os.path.join(out_dir, "LICENSE"), "w") as f, open(os.path.join(os.path.dirname(out_dir), "perf_amd",
                                                                              "LICENSE")) as amd:
        f.write(amd.read().replace("AMD Zen event and metric JSON of Linux perf\n(tools/perf/pmu-events/arch/x86/"
                                   "amdzen*)", "arm64 event and metric JSON of Linux perf\n(tools/perf/pmu-events/"
                                   "arch/arm64)"))
    return {"mapfile": rows}


def main(argv: list[str] | None = None) -> int:
    from hwprof.events.vendor import AMD_DIR, ARM_DIR, SHIPPED_DIR

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="a checkout (or git directory) of github.com/intel/perfmon")
    parser.add_argument("--out", default=SHIPPED_DIR, help="where to write (default: the package's data folder)")
    parser.add_argument("--linux", metavar="LINUX_SRC", help="also rebuild the AMD data from this Linux source tree")
    args = parser.parse_args(argv)
    index = build(args.source, args.out)
    sys.stdout.write(f"{len(index['mapfile'])} mapfile rows from perfmon {index['revision'][:12]} -> {args.out}\n")
    if args.linux:
        amd = build_perf_amd(args.linux, AMD_DIR)
        sys.stdout.write(f"{len(amd['mapfile'])} AMD models from {args.linux} -> {AMD_DIR}\n")
        arm = build_perf_arm64(args.linux, ARM_DIR)
        sys.stdout.write(f"{len(arm['mapfile'])} arm64 mapfile rows from {args.linux} -> {ARM_DIR}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
