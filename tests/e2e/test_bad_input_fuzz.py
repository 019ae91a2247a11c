"""Bad input, thrown at every HTTP route of the real app under the dev host: malformed, binary,
oversized, deeply nested and wrongly typed bodies, forged and unreadable principals, odd route values
and query strings. Whatever arrives, the answer is never a server error: each route refuses bad input
with a 4xx that names the problem (property-based, hypothesis)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.web.identity import encode_principal
from tests.e2e.conftest import Stack

ADMIN = {"X-MS-CLIENT-PRINCIPAL": encode_principal("Ada Admin", "ada@contoso.example", ("Connector.Admin",)),
         "X-Requested-With": "XMLHttpRequest"}


def _http_routes(stack: Stack) -> list[tuple[str, str]]:
    """(method, route) of every HTTP function the app registers, as the host loaded them."""
    found = []
    for spec in stack.app.functions:
        if spec.trigger_type == "httpTrigger":
            found += [(str(getattr(m, "value", m)), str(spec.trigger.route)) for m in spec.trigger.methods]
    return sorted(found)


ROUTES = [
    ("GET", "api/health"), ("POST", "api/graph/notifications"), ("POST", "api/graph/lifecycle"),
    ("POST", "api/scheduler/notifications"), ("GET", "api/settings/me"), ("PUT", "api/settings/me"),
    ("GET", "api/admin/resources"), ("GET", "api/admin/resources/{resource_no}/settings"),
    ("PUT", "api/admin/resources/{resource_no}/settings"), ("GET", "api/admin/defaults"),
    ("PUT", "api/admin/defaults"), ("GET", "api/admin/activity"), ("GET", "api/admin/activity/{key}"),
    ("GET", "api/admin/queues"), ("POST", "api/admin/failed/{queue}/{message_id}/retry"),
    ("GET", "api/admin/holds"), ("POST", "api/admin/holds/{hold_id}/release"), ("DELETE", "api/admin/holds/{hold_id}"),
    ("GET", "api/ui/{*path}"),
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12)
nested = st.integers(min_value=30, max_value=20_000).map(lambda depth: b"[" * depth + b"]" * depth)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    nested,
    st.just(b"{"), st.just(b"\xff\xfe"), st.just(b"null"),
    st.builds(lambda n: json.dumps({"value": [{"subscriptionId": "s" * n, "clientState": "x"}]}).encode(),
              st.integers(min_value=1, max_value=6000)),
    st.builds(lambda extra: json.dumps({"AppointmentGuid": "0f0f0f0f-0000-4000-8000-000000000001",
                                        "StartDate": extra, "EndDate": extra, "Assignments": extra}).encode(),
              json_values),
)
header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)  # what HTTP carries
principals = st.one_of(
    st.none(),
    header_text,
    json_values.map(lambda v: base64.b64encode(json.dumps(v).encode()).decode()),
    nested.map(lambda b: base64.b64encode(b).decode()),
    st.just(ADMIN["X-MS-CLIENT-PRINCIPAL"]),
)
segments = st.one_of(st.text(min_size=1, max_size=30).map(lambda t: quote(t, safe="")),  # as a client encodes them
                     st.just("A" * 3000), st.just("..%2F..%2Fetc%2Fpasswd"), st.just("%00"), st.just("%ZZ"))
queries = st.dictionaries(st.sampled_from(["event", "secret", "validationToken", "limit", "before", "since",
                                           "until", "direction", "outcome", "resource"]),
                          st.text(max_size=50), max_size=3)


@pytest.fixture(scope="module")
def stack(start_stack: Callable[..., Stack]) -> Iterator[Stack]:
    yield start_stack()


def test_the_fuzzed_routes_are_every_route_of_the_app(stack: Stack) -> None:
    assert _http_routes(stack) == sorted(ROUTES)


@pytest.mark.timeout(600)
@pytest.mark.parametrize(("method", "route"), ROUTES, ids=[f"{m} {r}" for m, r in ROUTES])
def test_bad_input_never_gets_a_server_error(stack: Stack, method: str, route: str) -> None:
    client = httpx.Client(base_url=stack.app.url, timeout=30)
    seen: list[tuple[int, str]] = []

    @settings(max_examples=90, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(body=bodies, principal=principals, segment=segments, query=queries, admin=st.booleans())
    def probe(body: bytes, principal: str | None, segment: str, query: dict[str, str], admin: bool) -> None:
        path = "/" + route.replace("{*path}", segment).replace("{resource_no}", segment).replace(
            "{key}", segment).replace("{queue}", segment).replace("{message_id}", segment).replace("{hold_id}", segment)
        headers: dict[str, str] = dict(ADMIN) if admin else {}
        if principal is not None:
            headers["X-MS-CLIENT-PRINCIPAL"] = principal
        if method != "GET":
            headers["Content-Type"] = "application/json"
        response = client.request(method, path, params=query, headers=headers,
                                  content=body if method != "GET" else None)
        seen.append((response.status_code, response.text[:200]))
        assert response.status_code < 500, f"{method} {path} → {response.status_code}: {response.text[:300]}"

    try:
        probe()
    finally:
        client.close()
    refusals = [text for status, text in seen if 400 <= status < 500 and status not in (401, 403, 404, 405)]
    assert all(text.strip() for text in refusals), "every refusal says what was wrong"
    assert len(seen) >= 90
