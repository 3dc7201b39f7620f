"""Rule: no input to the web API makes the server fail (HTTP 500); every refusal under /api/ is JSON.

Hypothesis drives the Flask test client with hostile ids, query values and bodies. Seeded (derandomize) and bounded
(max_examples, no per-example deadline but a small store), so CI stays fast and a failure reproduces.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from hwprof.web import create_app
from hwprof.web.synthetic import small_profile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwprof.store import ProfileStore, StoreEntry

FUZZ = settings(derandomize=True, max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# Text as an attacker sends it: control characters, lone surrogates, path tricks, huge digits.
hostile_text = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["..", "../../etc/passwd", "%00", "\x00", "\ud800", "9" * 400, "-1", "1e9", "0x10", "١٢",
                     "1_000", " 7", "+3", "NaN", "\x1b]0;pwned\x07", "a;b;c", ";", "", "record-" + "x" * 64]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | hostile_text,
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
                           max_leaves=12)
QUERY_KEYS = ["pid", "tid", "start", "end", "focus", "a", "b", "token"]


@pytest.fixture(scope="module")
def client_and_id(tmp_path_factory):
    store = ProfileStore(tmp_path_factory.mktemp("fuzz") / "store")
    entry_id, path = store.reserve("record", "npz")
    profile = small_profile()
    profile.save(path)
    store.add(StoreEntry(id=entry_id, kind="record", file=path.name, created=1.0, name="fuzzed",
                         target=profile.meta.target, events=list(profile.meta.events), samples=profile.n_samples))
    return create_app(store).test_client(), entry_id


def url_quote(text: str) -> str:
    """Percent-encode as raw bytes on the wire would be (a lone surrogate becomes the bytes a client could send)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def check(response, url: str) -> None:
    assert response.status_code < 500, (url, response.status_code, response.data[:300])
    if url.startswith("/api/") and response.status_code >= 400:
        assert "error" in response.get_json(), (url, response.data[:300])


@FUZZ
@given(entry=hostile_text, fmt=st.sampled_from(["folded", "speedscope", "pprof", "svg", ""]),
       query=st.dictionaries(st.sampled_from(QUERY_KEYS), hostile_text, max_size=4))
def test_get_routes_never_fail(client_and_id, entry, fmt, query):
    client, real_id = client_and_id
    query_string = "&".join(f"{key}={url_quote(value)}" for key, value in query.items())
    for entry_id in (url_quote(entry), real_id):
        for url in (f"/api/profile/{entry_id}", f"/api/profile/{entry_id}/export/{fmt}", f"/api/entries/{entry_id}",
                    f"/api/stat/{entry_id}", f"/profile/{entry_id}", "/diff"):
            check(client.get(url, query_string=query_string), url)


@FUZZ
@given(body=st.one_of(json_values.map(json.dumps), st.binary(max_size=200),
                      st.integers(min_value=1, max_value=12_000).map(lambda depth: "[" * depth + "]" * depth),
                      st.integers(min_value=1, max_value=12_000).map(lambda d: '{"name":' + "{" * d + "}" * d + "}"),
                      hostile_text.map(lambda name: json.dumps({"name": name})),
                      st.sampled_from(['{"name": "\\ud800"}', '{"name": "ok\\udfff"}', '{"confirm": "\\ud800"}'])))
def test_state_changes_never_fail(client_and_id, body):
    client, real_id = client_and_id
    for url in (f"/api/entries/{real_id}/rename", f"/api/entries/{real_id}/delete"):
        if "delete" in url and real_id in (body if isinstance(body, str) else ""):
            continue  # a body that really confirms the deletion would empty the store for the next examples
        check(client.post(url, data=body, content_type="application/json"), url)
