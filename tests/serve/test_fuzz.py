"""Fuzzing the request body: anything a client can send gets a JSON 4xx (or a run, when it is valid),
never a 5xx and never a hang."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import Served

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
FIELDS = st.sampled_from(["task", "conversation_id", "metadata", "mode", "Task", "extra", ""])
OBJECTS = st.dictionaries(FIELDS, JSON_VALUES, max_size=5) | st.dictionaries(st.text(max_size=12), JSON_VALUES)
BODIES = st.one_of(
    st.binary(max_size=300),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    OBJECTS.map(lambda v: json.dumps(v).encode()),
    OBJECTS.map(lambda v: json.dumps(v).encode()[:-1]),  # truncated
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES, content_type=st.sampled_from(["application/json", "text/plain", "", "application/x-www-form"]))
def test_any_body_gets_a_4xx_or_a_run_never_a_5xx(served: Served, body: bytes, content_type: str) -> None:
    with served.client() as c:  # the client's 30 s timeout turns a hang into a failure
        response = c.post("/v1/runs", content=body, headers={"Content-Type": content_type} if content_type else {})
    assert response.status_code in {200, 400, 413, 422, 501}, (response.status_code, response.text, body)
    if response.status_code != 200:
        assert set(response.json()["error"]) == {"type", "message"}
