"""The shared faults speak Anthropic in this dialect (refused calls, lost answers, dropped connections), and only the
holder of the simulator's key gets in, as ``x-api-key`` or as the SDK's bearer key."""

from __future__ import annotations

import anthropic
import pytest

from tests.simulator.anthropic.helpers import base_url, client_for, request, wait_ended
from tests.simulator.helpers import add_fault, raw

BATCHES = "/messages/batches"


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        (529, anthropic.InternalServerError, "overloaded_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
    ],
)
def test_a_refused_create_makes_nothing(sim_url, claude, status, error, kind):
    add_fault(sim_url, status=status, method="POST", path=BATCHES)
    with pytest.raises(error) as caught:
        claude.messages.batches.create(requests=[request("a", "x")])
    assert caught.value.status_code == status and caught.value.body["error"]["type"] == kind
    assert list(claude.messages.batches.list()) == []


@pytest.mark.parametrize(
    ("fault", "error"),
    [({"status": 500}, anthropic.InternalServerError), ({"reset": True}, anthropic.APIConnectionError)],
    ids=["500 after the work", "connection reset after the work"],
)
def test_a_lost_answer_to_create_leaves_the_batch_made(sim_url, claude, fault, error):
    add_fault(sim_url, method="POST", path=BATCHES, after=True, **fault)
    with pytest.raises(error):
        claude.messages.batches.create(requests=[request("a", "x"), request("b", "y")])
    (made,) = claude.messages.batches.list()
    assert made.request_counts.processing == 2
    assert wait_ended(claude, made.id).request_counts.succeeded == 2


def test_the_sdk_retries_through_an_overload(sim_url):
    add_fault(sim_url, status=529, method="GET", path_prefix=BATCHES, count=1)
    claude = client_for(sim_url, max_retries=2)
    batch = claude.messages.batches.create(requests=[request("a", "x")])
    assert claude.messages.batches.retrieve(batch.id).id == batch.id  # the 529 (retry-after: 0) was retried


def test_results_that_answer_404_for_a_moment(sim_url, claude):
    batch = wait_ended(claude, claude.messages.batches.create(requests=[request("a", "x")]).id)
    add_fault(sim_url, status=404, method="GET", path=f"{BATCHES}/*/results", count=1)
    with pytest.raises(anthropic.NotFoundError):
        list(claude.messages.batches.results(batch.id))
    assert [line.custom_id for line in claude.messages.batches.results(batch.id)] == ["a"]


def test_a_wrong_key_is_refused(sim_url):
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client_for(sim_url, key="guess").messages.batches.list()
    assert caught.value.body["error"]["type"] == "authentication_error"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"x-api-key": "sim", "anthropic-version": "2023-06-01"}, 200),
        ({"Authorization": "Bearer sim", "anthropic-version": "2023-06-01"}, 200),
        ({"anthropic-version": "2023-06-01"}, 401),
        ({"x-api-key": "SIM", "anthropic-version": "2023-06-01"}, 401),
        ({"x-api-key": "sim"}, 400),
    ],
    ids=["x-api-key", "bearer", "no key", "wrong case", "no version"],
)
def test_every_call_needs_the_key_and_a_version(sim_url, headers, status):
    got, _, body = raw(f"{base_url(sim_url)}/v1{BATCHES}", headers={"Authorization": None, **headers})
    assert got == status
    if status != 200:
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}


def test_an_unknown_path_is_anthropic_shaped_404(sim_url):
    status, headers, body = raw(
        f"{base_url(sim_url)}/v1/files", headers={"Authorization": None, "x-api-key": "sim", "anthropic-version": "1"}
    )
    assert status == 404 and body["error"]["type"] == "not_found_error" and headers["request-id"].startswith("req_")
