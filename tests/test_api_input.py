"""The JSON API refuses bodies it cannot use with a clear 4xx JSON answer: unknown fields, wrong types,
broken or oversized JSON, unknown routes and methods, unknown ids and languages."""

from __future__ import annotations

import json

import pytest

from bot.broadcasts.store import PENDING_APPROVAL

ALL_CLEAR = {"schools": ["BELMONT"], "kind": "all_clear", "template": "all_clear", "variables": {"time": "8 am"}}


@pytest.fixture
def settings(settings):
    """No quiet hours: a broadcast sent in a test goes out at once."""
    return settings.with_overrides(quiet_hours=None)


@pytest.fixture
def token(aviso):
    """An API token of a sender at Belmont."""
    known = set(aviso.active_content().schools.by_code)
    member = aviso.roster.add("+13105550131", "Ms. Rivera", "sender", ["BELMONT"], known)
    return aviso.roster.issue_token(member.id)


def call(client, token, method, path, payload=None, **kwargs):
    return client.open(path, method=method, json=payload, headers={"Authorization": f"Bearer {token}"}, **kwargs)


def raw(client, token, path, body: bytes | str):
    return client.post(path, data=body, content_type="application/json", headers={"Authorization": f"Bearer {token}"})


def test_misspelt_field_is_refused_by_name_instead_of_sending_at_once(client, aviso, token):
    response = call(client, token, "POST", "/api/broadcasts", {**ALL_CLEAR, "send_time": "2030-01-01T07:00:00-08:00"})
    assert response.status_code == 400
    assert "send_time" in response.get_json()["error"]
    assert aviso.broadcasts.list_recent(10) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("urgent", "false"), ("urgent", 1), ("verified_by", {"name": "Kim"}), ("kind", ["update"]),
     ("template", ["x"]), ("template", {}), ("corrects", 123), ("corrects", {}), ("workshop", ["a"]),
     ("fallback_language", 7), ("send_at", 20301201), ("variables", ["time"]), ("texts", {"en": 5}),
     ("languages", [1]), ("schools", {"BELMONT": True})],
)
def test_wrong_type_is_refused_naming_the_field(client, aviso, token, field, value):
    response = call(client, token, "POST", "/api/broadcasts", {**ALL_CLEAR, field: value})
    assert response.status_code == 400
    assert field in response.get_json()["error"]
    assert aviso.broadcasts.list_recent(10) == []


def test_urgent_false_is_not_urgent(client, token):
    response = call(client, token, "POST", "/api/broadcasts", {**ALL_CLEAR, "urgent": False})
    assert response.status_code == 201 and response.get_json()["urgent"] is False


@pytest.mark.parametrize("body", ['{"kind": ', "not json", "[" * 100_000 + "]" * 100_000])
def test_broken_or_absurdly_nested_json_is_refused_as_not_valid_json(client, token, body):
    response = raw(client, token, "/api/broadcasts", body)
    assert response.status_code == 400
    assert "not valid JSON" in response.get_json()["error"]


@pytest.mark.parametrize("body", ["[1]", '"why"', '{"reason": 5}', '{"reasn": "typo"}'])
def test_reject_with_a_body_that_is_not_a_reason_object_is_a_clear_400(client, token, body):
    created = call(client, token, "POST", "/api/broadcasts", {
        **ALL_CLEAR, "kind": "verified", "template": "activity_verified",
        "variables": {"location": "3rd & Loma", "time": "7:45 am"}, "verified_by": "LAUSD School Police"})
    assert created.get_json()["status"] == PENDING_APPROVAL
    response = raw(client, token, f"/api/broadcasts/{created.get_json()['id']}/reject", body)
    assert response.status_code == 400 and response.get_json()["error"]


def test_body_over_a_megabyte_is_refused_with_413_json(client, aviso, token):
    huge = json.dumps({**ALL_CLEAR, "texts": {"en": "x" * 2_000_000}})
    response = raw(client, token, "/api/broadcasts", huge)
    assert response.status_code == 413
    assert "larger than" in response.get_json()["error"]
    assert aviso.broadcasts.list_recent(10) == []


def test_unknown_api_route_and_wrong_method_answer_json(client, token):
    missing = call(client, token, "GET", "/api/nothing-here")
    assert missing.status_code == 404 and missing.is_json and "/api/nothing-here" in missing.get_json()["error"]
    wrong = call(client, token, "DELETE", "/api/broadcasts")
    assert wrong.status_code == 405 and wrong.is_json and "POST" in wrong.headers["Allow"]


def test_pages_outside_the_api_keep_their_html_error_pages(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404 and not response.is_json


def test_unknown_language_is_refused_listing_the_supported_ones(client, token):
    response = call(client, token, "POST", "/api/broadcasts/preview", {**ALL_CLEAR, "languages": ["xx"]})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert "xx" in error and "supported" in error and "es" in error


def test_overlong_verified_by_is_refused(client, token):
    payload = {**ALL_CLEAR, "kind": "verified", "template": "activity_verified",
               "variables": {"location": "3rd & Loma", "time": "7:45 am"}, "verified_by": "LAUSD " * 400}
    response = call(client, token, "POST", "/api/broadcasts/preview", payload)
    assert response.status_code == 400 and "verified_by is too long" in response.get_json()["error"]


def test_corrects_on_an_update_is_refused_at_preview(client, token):
    response = call(client, token, "POST", "/api/broadcasts/preview",
                    {**ALL_CLEAR, "kind": "update", "corrects": "0123456789abcdef"})
    assert response.status_code == 400 and "only for a correction" in response.get_json()["error"]


@pytest.mark.parametrize(("method", "path"), [("GET", "/api/broadcasts/deadbeef"),
                                               ("POST", "/api/broadcasts/0123456789abcdef/cancel")])
def test_unknown_broadcast_id_says_no_broadcast_with_that_id(client, token, method, path):
    response = call(client, token, method, path)
    broadcast_id = path.split("/")[3]
    assert response.status_code == 404
    assert response.get_json()["error"] == f"no broadcast with id {broadcast_id}"
