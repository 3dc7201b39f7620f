"""The payload API's thread/process filter through Flask's test client: exact totals of the kept samples, the whole
capture's time bins and thread list in every filtered payload, the export agreeing, and bad ids refused."""

from __future__ import annotations

import numpy as np
import pytest
from hwprof.web import create_app
from hwprof.web.payload import decode_column, node_parents
from web_fixtures import add_profile

from hwprof.folded import parse_folded
from hwprof.profile import FrameKind, ProfileBuilder, ProfileMeta
from hwprof.store import ProfileStore

# (pid, tid, leaf function, samples, cycles per sample): two processes, the first with two threads.
GROUPS = (
    (200, 200, "accept_loop", 30, 10.0),
    (200, 201, "parse_request", 70, 20.0),
    (300, 300, "send_query", 45, 40.0),
)
COMMS = {200: "server", 201: "server-io", 300: "client"}


def threaded_profile():
    meta = ProfileMeta(target="./server", events=["task-clock"], weight_names=["cycles"],
                       start_time_ns=1_000_000_000, duration_ns=1_000_000_000)
    b = ProfileBuilder(meta)
    b.threads = dict(COMMS)
    main = b.frame(function="main", module="/usr/bin/server", address=0x100, kind=FrameKind.USER)
    rows = []
    for i, (pid, tid, leaf, count, cycles) in enumerate(GROUPS):
        stack = b.stack([main, b.frame(function=leaf, module="/usr/bin/server", address=0x200 + 0x10 * i,
                                       kind=FrameKind.USER)])
        rows += [(pid, tid, stack, cycles)] * count
    rng = np.random.default_rng(3)
    for n, idx in enumerate(rng.permutation(len(rows))):
        pid, tid, stack, cycles = rows[idx]
        b.sample(time=meta.start_time_ns + n * 5_000_000, pid=pid, tid=tid, cpu=0, stack=stack, period=250_000.0,
                 counters=[cycles])
    return b.build()


@pytest.fixture
def client_and_id(tmp_path):
    store = ProfileStore(tmp_path / "store")
    entry = add_profile(store, threaded_profile(), "server", 1.0)
    return create_app(store).test_client(), entry.id


def leaf_samples(payload) -> dict[str, float]:
    """Samples per leaf function name, summed from the payload's cells."""
    funcs = decode_column(payload["funcs"]["name"])
    node_func = decode_column(payload["nodes"]["func"])
    parent = node_parents(payload["nodes"])
    counts = np.bincount(decode_column(payload["cells"]["node"]).astype(np.int64),
                         weights=decode_column(payload["cells"]["weights"][0]), minlength=len(node_func))
    has_child = np.zeros(len(node_func), dtype=bool)
    has_child[parent[parent >= 0]] = True
    return {payload["strings"][funcs[node_func[n]]]: float(counts[n]) for n in range(len(node_func))
            if counts[n] and not has_child[n]}


def test_thread_and_process_filters_give_exact_totals(client_and_id):
    client, entry_id = client_and_id
    full = client.get(f"/api/profile/{entry_id}").get_json()
    assert full["filter"] == {"pid": None, "tid": None} and full["meta"]["n_samples"] == 145
    assert full["thread_list"] == [
        {"pid": 200, "tid": 201, "comm": "server-io", "samples": 70},
        {"pid": 300, "tid": 300, "comm": "client", "samples": 45},
        {"pid": 200, "tid": 200, "comm": "server", "samples": 30},
    ]
    cases = {"tid=201": {"parse_request": 70}, "tid=300": {"send_query": 45},
             "pid=200": {"accept_loop": 30, "parse_request": 70}, "pid=200&tid=200": {"accept_loop": 30}}
    for query, leaves in cases.items():
        payload = client.get(f"/api/profile/{entry_id}?{query}").get_json()
        n = sum(leaves.values())
        assert payload["meta"]["n_samples"] == n and payload["quality"]["samples"] == n, query
        assert leaf_samples(payload) == leaves, query
        weights = [decode_column(w).astype(np.float64).sum() for w in payload["cells"]["weights"]]
        cycles = sum(count * c for _, _, leaf, count, c in GROUPS if leaf in leaves)
        assert weights == [n, n * 250_000.0, cycles], query
        # the time axis and the selector's choices are the whole capture's, whatever the filter
        assert payload["time"] == full["time"] and payload["thread_list"] == full["thread_list"], query
        # the export of the same filter holds the same samples
        folded = parse_folded(client.get(f"/api/profile/{entry_id}/export/folded?{query}").data.decode().splitlines())
        assert {stack[-1]: count for stack, count in folded} == leaves, query
    assert client.get(f"/api/profile/{entry_id}?tid=201").get_json()["filter"] == {"pid": None, "tid": 201}
    # a cached filtered payload answers with the same bytes, gzip or not
    first = client.get(f"/api/profile/{entry_id}?pid=300")
    assert client.get(f"/api/profile/{entry_id}?pid=300").data == first.data


@pytest.mark.parametrize("query", ["tid=abc", "tid=-1", "tid=1.5", "pid=0x10", "tid=%20201", "pid=\u0661\u0662",
                                   "tid=99999999999", "pid=2147483648"])
def test_bad_thread_ids_are_refused_with_a_clear_error(client_and_id, query):
    client, entry_id = client_and_id
    response = client.get(f"/api/profile/{entry_id}?{query}")
    assert response.status_code == 400
    message = response.get_json()["error"]
    assert message.startswith(query.split("=")[0] + " must be a process/thread id"), message


def test_a_thread_without_samples_is_a_clear_error(client_and_id):
    client, entry_id = client_and_id
    for query, what in (("tid=4242", "tid 4242"), ("pid=300&tid=201", "pid 300 tid 201")):
        response = client.get(f"/api/profile/{entry_id}?{query}")
        assert response.status_code == 400 and response.get_json()["error"] == f"{entry_id} has no samples of {what}"
