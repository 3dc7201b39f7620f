"""The page payload: merged call tree, time cells, ratios, stack quality, HTML-safe JSON."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
from hwprof.web.payload import (
    NO_STACK_LABEL,
    build_payload,
    decode_column,
    dumps_payload,
    int_column,
    node_parents,
    ratio_specs,
    stack_depths,
)
from hwprof.web.synthetic import JIT_NAME, SCRIPT_NAME, TEMPLATE_NAME, small_profile

from hwprof.profile import FrameKind, ProfileBuilder, ProfileMeta, StackEnd


def tree_of(payload: dict) -> tuple[list[str], np.ndarray, dict[int, float]]:
    names = decode_column(payload["funcs"]["name"])
    func = decode_column(payload["nodes"]["func"])
    parent = node_parents(payload["nodes"])
    labels = [payload["strings"][names[f]] for f in func]
    self_ = Counter()
    node = decode_column(payload["cells"]["node"])
    counts = decode_column(payload["cells"]["weights"][0])
    for n, c in zip(node, counts, strict=True):
        self_[int(n)] += float(c)
    return labels, parent, self_


def path(labels, parent, node) -> tuple[str, ...]:
    out = []
    while node >= 0:
        out.append(labels[node])
        node = parent[node]
    return tuple(reversed(out))


def test_merged_tree_matches_brute_force_per_function_paths(profile):
    payload = build_payload(profile)
    labels, parent, self_ = tree_of(payload)
    assert all(parent[i] < i for i in range(len(parent))), "parents must precede children"
    expected = Counter()
    for stack in profile.sample_stack:
        frames = profile.stack_frames(int(stack)) if stack >= 0 else []
        expected[tuple(profile.frame_label(f) for f in frames) or (NO_STACK_LABEL,)] += 1
    got = Counter()
    for node, count in self_.items():
        got[path(labels, parent, node)] += count
    assert got == expected
    # compute at two addresses (lines 8 and 9) is one node: 300 samples
    assert expected[("_start", "main", "work", "compute")] == 300
    assert len({path(labels, parent, n) for n in range(len(labels))}) == len(labels), "no duplicate call paths"


def test_preview_keeps_heavy_paths_with_exact_totals(profile):
    from hwprof.web.payload import build_preview

    preview = build_preview(build_payload(profile), min_share=0.05)
    paths = {}
    for i, label in enumerate(preview["labels"]):
        chain, p = [label], preview["parent"][i]
        while p >= 0:
            chain.append(preview["labels"][p])
            p = preview["parent"][p]
        paths[";".join(reversed(chain))] = preview["total"][0][i]
    # >= 5% of 520 samples = 26: the 20-sample libc frame and the 10 stackless samples are left out
    assert paths == {"_start": 510, "_start;main": 510, "_start;main;work": 420, "_start;main;work;compute": 300,
                     f"_start;main;work;{TEMPLATE_NAME}": 100, "_start;main;read": 50,
                     "_start;main;read;entry_SYSCALL_64": 50, "_start;main;read;entry_SYSCALL_64;ksys_read": 50,
                     f"_start;main;{JIT_NAME}": 40, f"_start;main;{JIT_NAME};{SCRIPT_NAME}": 40}
    assert preview["total"][3][preview["labels"].index(TEMPLATE_NAME)] == 200_000_000  # instructions


def test_cells_add_up_per_weight_and_bins_are_ordered(profile):
    payload = build_payload(profile, max_bins=16)
    offsets = decode_column(payload["cells"]["bin_offsets"])
    assert payload["time"]["n_bins"] == 16 and len(offsets) == 17
    assert offsets[0] == 0 and np.all(np.diff(offsets) >= 0)
    weights = [decode_column(w) for w in payload["cells"]["weights"]]
    assert payload["weights"] == ["samples", "cpu-clock", "cycles", "instructions"]
    assert weights[0].sum() == profile.n_samples
    assert weights[1].sum() == profile.sample_period.sum()
    assert np.isclose(weights[3].sum(), profile.counters[:, 1].sum())
    # bins cover the capture: the samples in bin b are those with start + b*w <= t < start + (b+1)*w
    start, width = payload["time"]["start_ns"], payload["time"]["bin_ns"]
    bins = (profile.sample_time.astype(np.int64) - start) // width
    per_bin = np.bincount(bins, minlength=16)
    got = [weights[0][offsets[b]:offsets[b + 1]].sum() for b in range(16)]
    assert got == list(per_bin)


def test_stack_quality_counts_and_reasons(profile):
    q = build_payload(profile)["quality"]
    assert q["samples"] == 520
    assert q["truncated"] == 20 and q["no_stack"] == 10 and q["unsymbolized_leaf"] == 20
    assert abs(q["score"] - 490 / 520) < 1e-9
    assert any("maximum depth" in r for r in q["reasons"]) and any("callchain" in r for r in q["reasons"])


def test_ratios_are_the_reports_over_the_pages_columns():
    # columns: samples, the sampling event's period, then the group members
    specs = {s["name"]: s for s in ratio_specs(["cycles:u", "instructions:u", "cache-misses", "cache-references"])}
    assert (specs["IPC"]["num"], specs["IPC"]["den"]) == (3, 2) and specs["CPI"]["num"] == 2
    miss = specs["cache-miss %"]
    assert miss["scale"] == 100.0 and (miss["num"], miss["den"]) == (4, 5)
    assert specs["cache-misses MPKI"]["den"] == 3
    # Software groups: each member per the leader, once, per ms of a clock leader (report's page-faults/ms).
    soft = ratio_specs(["cpu-clock", "page-faults", "context-switches"])
    assert [(s["name"], s["num"], s["den"], s["scale"]) for s in soft] == [
        ("page-faults/ms", 3, 2, 1e6), ("context-switches/ms", 4, 2, 1e6)]
    assert ratio_specs(["cpu-clock"]) == [] and ratio_specs([]) == []


def test_json_is_html_safe_and_names_survive(profile):
    text = dumps_payload(build_payload(profile))
    for raw in ("<", ">", "&", "\u2028"):
        assert raw not in text
    strings = json.loads(text)["strings"]
    assert TEMPLATE_NAME in strings and JIT_NAME in strings and SCRIPT_NAME in strings


def test_empty_and_stackless_profiles():
    empty = ProfileBuilder(ProfileMeta(events=["cpu-clock"])).build()
    payload = build_payload(empty)
    assert payload["quality"]["samples"] == 0 and payload["quality"]["score"] is None
    b = ProfileBuilder(ProfileMeta(events=["page-faults"]))
    for i in range(5):
        b.sample(time=i, pid=1, tid=1, cpu=0, stack=-1, period=1.0, end=StackEnd.NO_STACK)
    labels, parent, self_ = tree_of(build_payload(b.build()))
    assert labels == [NO_STACK_LABEL] and self_[0] == 5


def test_unknown_frames_keep_module_offset_labels_and_do_not_merge():
    b = ProfileBuilder(ProfileMeta(events=["cpu-clock"]))
    f1 = b.frame(function=None, module="/lib/libx.so", address=0x10, kind=FrameKind.USER)
    f2 = b.frame(function=None, module="/lib/libx.so", address=0x20, kind=FrameKind.USER)
    for f in (f1, f2):
        b.sample(time=0, pid=1, tid=1, cpu=0, stack=b.stack([f]), period=1.0)
    labels, _, _ = tree_of(build_payload(b.build()))
    assert sorted(labels) == [NO_STACK_LABEL, "libx.so+0x10", "libx.so+0x20"]


def test_int_columns_pick_the_narrowest_type():
    assert int_column(np.array([0, 255]))["dtype"] == "u1"
    assert int_column(np.array([-1, 100]))["dtype"] == "i1"
    assert int_column(np.array([-1, 40000]))["dtype"] == "i4"
    assert int_column(np.array([0, 40000]))["dtype"] == "u2"
    assert list(decode_column(int_column(np.array([-1, 7, 300])))) == [-1, 7, 300]


def test_stack_depths_vectorised():
    parent = np.array([-1, 0, 1, 0, 3, 4, -1])
    assert list(stack_depths(parent)) == [0, 1, 2, 1, 2, 3, 0]


def test_payload_size_is_bounded_by_bins_times_paths_not_samples():
    mid = build_payload(small_profile(scale=20), max_bins=50)
    big = build_payload(small_profile(scale=60), max_bins=50)
    n_nodes = len(decode_column(big["nodes"]["func"]))
    assert len(decode_column(big["cells"]["node"])) <= 50 * n_nodes
    assert len(dumps_payload(big)) < 1.1 * len(dumps_payload(mid))
