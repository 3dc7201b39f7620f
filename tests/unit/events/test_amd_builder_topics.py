"""The AMD builder reads every JSON file of a model's folder (Zen 5 names its topics load-store.json,
decode.json, branch-prediction.json, ... where Zen 1-4 had cache.json, core.json, ...), and the shipped Zen 5
data has its core events, not only the floating-point ones."""

from __future__ import annotations

import collections
import json
from pathlib import Path

from hwprof.events.cpuid import parse_cpuid
from hwprof.events.perfmon_build import _amd_model
from hwprof.events.vendor import _perf_json_topic, all_event_names, model_for


def _write(path: Path, items: list[dict]) -> None:
    path.write_text(json.dumps(items, indent=2) + "\n")


def test_every_topic_file_of_a_model_folder_is_read(tmp_path):
    model = tmp_path / "amdzenX"
    model.mkdir()
    _write(model / "load-store.json", [
        {"EventName": "ls_not_halted_cyc", "EventCode": "0x76", "BriefDescription": "Core cycles not in halt."},
        {"EventName": "ls_dispatch.all", "EventCode": "0x29", "UMask": "0x07", "BriefDescription": "Dispatched."},
    ])
    _write(model / "decode.json", [
        {"EventName": "de_op_queue_empty", "EventCode": "0xa9", "BriefDescription": "Op queue empty.",
         "CounterMask": "0x1", "SomethingElse": "dropped"},
    ])
    _write(model / "l3-cache.json", [
        {"EventName": "l3_lookup_state.l3_miss", "EventCode": "0x04", "UMask": "0x01", "Unit": "L3PMC"},
    ])
    _write(model / "pipeline.json", [
        {"MetricName": "total_dispatch_slots", "MetricExpr": "8 * ls_not_halted_cyc", "ScaleUnit": "1slots",
         "PerPkg": "1"},
    ])
    (model / "README").write_text("not a topic\n")

    body = _amd_model(str(model))

    events = {e["EventName"]: e for e in body["events"]}
    assert set(events) == {"ls_not_halted_cyc", "ls_dispatch.all", "de_op_queue_empty"}  # the uncore one is out
    assert [e["_topic"] for e in body["events"]] == ["decode", "load-store", "load-store"]  # files in name order
    assert events["de_op_queue_empty"] == {"EventName": "de_op_queue_empty", "EventCode": "0xa9",
                                           "BriefDescription": "Op queue empty.", "CounterMask": "0x1",
                                           "_topic": "decode"}
    assert events["ls_dispatch.all"]["UMask"] == "0x07"
    assert body["metrics"] == [{"MetricName": "total_dispatch_slots", "MetricExpr": "8 * ls_not_halted_cyc",
                                "ScaleUnit": "1slots"}]


def test_a_missing_model_folder_builds_empty(tmp_path):
    assert _amd_model(str(tmp_path / "nowhere")) == {"events": [], "metrics": []}


def test_zen5_file_names_get_titles():
    assert _perf_json_topic("load-store") == "Load-store"
    assert _perf_json_topic("branch-prediction") == "Branch prediction"
    assert _perf_json_topic("decode") == "Decode"
    assert _perf_json_topic("inst-cache") == "Cache"
    assert _perf_json_topic("some-new-topic") == "Some new topic"  # a name not listed is still readable
    assert _perf_json_topic("cache") == "Cache" and _perf_json_topic("core") == "Pipeline"  # Zen 1-4 unchanged


def test_shipped_zen5_has_core_events_beyond_floating_point():
    model = model_for(parse_cpuid("AuthenticAMD-26-2-1"))
    assert model is not None and model.name == "amdzen5"
    events = model.events()
    topics = collections.Counter(e.topic for e in events)
    assert len(events) > 157, topics
    assert topics["Load-store"] > 0 and topics["Branch prediction"] > 0 and topics["Decode"] > 0, topics
    assert topics["Floating point"] == 157, topics
    cycles = model.find("ls_not_halted_cyc")
    assert cycles and cycles[0].config_terms == "event=0x76" and cycles[0].topic == "Load-store"
    assert not any(e.name.startswith(("l3_", "umc_")) for e in events)  # uncore stays out
    names = all_event_names()
    assert names["LS_NOT_HALTED_CYC"] == "AMD" and names["BP_REDIRECTS.ALL"] == "AMD"
