"""GET /metrics: Prometheus's text format after real traffic through the signed webhook and a real worker,
for this machine, a private network or the bearer token only; never a number or a family's words."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot import create_app
from tests.conftest import PARENT, Phone

TOKEN = "metrics-token-5f1c9a7e2b8d4036a1e9c7b2d4f6a8e0"
PUBLIC = {"REMOTE_ADDR": "203.0.113.9"}


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a scrape: (name, labels) -> value."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(scrape: dict, name: str, **labels: str) -> float:
    return scrape.get((name, frozenset(labels.items())), 0.0)


def scrape(client, **kwargs) -> dict:
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.data
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return samples(response.get_data(as_text=True))


def test_messages_through_the_webhook_show_as_answers_by_language_latency_and_queue_depths(client, aviso):
    before = scrape(client)
    phone = Phone(client, PARENT)
    phone.text("DERECHOS")
    phone.text("zzqx wibble")  # not understood, answered in the Spanish the contact chose
    client.post("/twilio/messages", data={"From": PARENT})  # unsigned: refused, but still timed
    response = client.get("/metrics")
    text = response.get_data(as_text=True)
    after = samples(text)

    assert value(after, "aviso_replies_total", answer="rights", language="es", source="redis") == \
        value(before, "aviso_replies_total", answer="rights", language="es", source="redis") + 1
    assert value(after, "aviso_not_understood_total", language="es") == \
        value(before, "aviso_not_understood_total", language="es") + 1
    assert value(after, "aviso_webhook_duration_seconds_count", endpoint="/twilio/messages") == \
        value(before, "aviso_webhook_duration_seconds_count", endpoint="/twilio/messages") + 3
    assert value(after, "aviso_webhook_requests_total", endpoint="/twilio/messages", status="403") >= 1
    assert value(after, "aviso_redis_up") == 1
    for queue in ("urgent", "default", "low"):
        assert ("aviso_queue_jobs", frozenset({("queue", queue)})) in after
        assert ("aviso_queue_scheduled_jobs", frozenset({("queue", queue)})) in after
    assert PARENT[2:] not in text and "wibble" not in text and "DERECHOS" not in text


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "172.20.0.4",
                                     "192.168.0.20", "::1", "fd00::5", "::ffff:10.0.0.3"])
def test_this_machine_and_private_networks_may_scrape_without_a_token(client, address):
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": address}).status_code == 200


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x"])
def test_a_public_address_is_refused_without_the_right_bearer_token(settings, authorization):
    client = create_app(settings.with_overrides(metrics_token=TOKEN)).test_client()
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/metrics", environ_base=PUBLIC, headers=headers)
    assert response.status_code == 403 and b"aviso_" not in response.data


@pytest.mark.parametrize("address", ["198.51.100.7", "100.64.0.1", "172.32.0.1", "2001:db8::1", "::ffff:8.8.8.8"])
def test_public_and_shared_addresses_are_not_private(client, address):
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": address}).status_code == 403


def test_a_public_address_with_the_bearer_token_may_scrape(settings):
    client = create_app(settings.with_overrides(metrics_token=TOKEN)).test_client()
    response = client.get("/metrics", environ_base=PUBLIC, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and b"aviso_queue_jobs" in response.data


def test_a_request_through_an_undeclared_proxy_on_a_private_network_is_refused(client):
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": "10.0.0.2"},
                          headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status_code == 403


def test_a_scrape_while_redis_is_down_says_so_instead_of_failing(settings, tmp_path):
    client = create_app(settings.with_overrides(redis_url=f"unix://{tmp_path}/nothing.sock")).test_client()
    assert value(scrape(client), "aviso_redis_up") == 0
