"""GET /healthz: ok or 503 for anyone (load balancers); Redis, content version and queue depths only for
this machine or a signed-in admin."""

from __future__ import annotations

import pytest

from bot import create_app

from .test_dashboard import ADMIN, SENDER, sign_in

ELSEWHERE = {"REMOTE_ADDR": "203.0.113.9"}


@pytest.fixture
def staff(aviso):
    """An admin and a sender."""
    known = set(aviso.active_content().schools.by_code)
    aviso.roster.add(ADMIN, "District Admin", "admin", ["BELMONT"], known)
    aviso.roster.add(SENDER, "Ms. Rivera", "sender", ["BELMONT"], known)


def test_healthz_from_this_machine_reports_redis_content_and_queues(client, aviso):
    data = client.get("/healthz").get_json()
    assert data["ok"] is True and data["redis"] is True
    assert data["content_version"] == aviso.content.active_version()
    assert set(data["queues"]) == {"urgent", "default", "low"}


@pytest.mark.parametrize("address", ["203.0.113.9", "10.0.0.7", "2001:db8::1"])
def test_healthz_from_elsewhere_says_only_ok(client, address):
    response = client.get("/healthz", environ_base={"REMOTE_ADDR": address})
    assert response.status_code == 200 and response.get_json() == {"ok": True}
    assert "Set-Cookie" not in response.headers


def test_a_proxy_on_this_machine_does_not_make_every_visitor_local(settings, aviso):
    app = create_app(settings.with_overrides(trusted_proxies=1))
    response = app.test_client().get("/healthz", headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.get_json() == {"ok": True}


def test_a_signed_in_admin_sees_the_details_from_anywhere_and_a_sender_does_not(app, aviso, staff):
    admin = sign_in(app.test_client(), aviso, ADMIN)
    assert "queues" in admin.get("/healthz", environ_base=ELSEWHERE).get_json()
    sender = sign_in(app.test_client(), aviso, SENDER)
    assert sender.get("/healthz", environ_base=ELSEWHERE).get_json() == {"ok": True}


def test_healthz_is_503_when_redis_is_unreachable(settings, tmp_path):
    app = create_app(settings.with_overrides(redis_url=f"unix://{tmp_path}/nothing.sock"))
    for environ in ({}, ELSEWHERE):
        response = app.test_client().get("/healthz", environ_base=environ)
        assert response.status_code == 503 and response.get_json() == {"ok": False}
