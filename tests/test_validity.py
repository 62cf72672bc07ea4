"""ValidityPeriod: every broadcast message goes to Twilio with its kind's period (urgent: 30 minutes by
default), so one stuck in Twilio's queue expires instead of arriving hours late, and counts as expired."""

from __future__ import annotations

import threading
import time

import pytest
from werkzeug.serving import make_server

from bot import validity
from bot.broadcasts.store import KINDS, BroadcastStore
from bot.config import ConfigError, load_settings
from tests.test_broadcasts import make_broadcast
from tests.test_fanout import fake, family, public_port, send, settings  # noqa: F401  (fixtures: sending through the fake)


@pytest.mark.parametrize(("text", "expected"), [
    ("", {"urgent": 1800, "verified": 1800, "correction": 3600, "update": 14400, "all_clear": 14400}),
    ("urgent=10m, update=2h", {"urgent": 600, "verified": 1800, "correction": 3600, "update": 7200,
                               "all_clear": 14400}),
    ("all_clear=36000s,verified=1s", {"urgent": 1800, "verified": 1, "correction": 3600, "update": 14400,
                                      "all_clear": 36000}),
])
def test_periods_default_per_kind_and_can_be_changed_one_by_one(text, expected):
    assert validity.parse(text) == expected


@pytest.mark.parametrize(("text", "named"), [
    ("urgent=30", "urgent=30"), ("urgnet=30m", "urgnet"), ("update=11h", "10 hours"), ("update=0s", "10 hours"),
    ("update=2d", "update=2d"),
])
def test_a_bad_period_stops_startup_with_one_line_naming_it(text, named):
    with pytest.raises(ConfigError, match="AVISO_VALIDITY_PERIODS") as error:
        load_settings({"AVISO_ENV": "development", "AVISO_VALIDITY_PERIODS": text}, dotenv_path=None)
    assert named in str(error.value) and "\n" not in str(error.value)


def test_every_broadcast_kind_has_a_period_and_urgent_ones_the_urgent_period():
    periods = validity.parse("")
    assert set(KINDS) <= set(periods)
    assert validity.seconds_for("update", True, periods) == 1800
    assert validity.seconds_for("update", False, periods) == 14400


@pytest.mark.parametrize(("changes", "seconds"), [({"urgent": True, "kind": "update"}, "1800"),
                                                  ({"kind": "all_clear"}, "14400")])
def test_every_alert_reaches_twilio_with_its_kinds_validity_period(app, aviso, fake, changes, seconds):  # noqa: F811
    family(aviso, 3)
    send(app, aviso, make_broadcast(**changes))
    creates = [r for r in fake.requests() if r["path"].endswith("/Messages.json") and r["method"] == "POST"]
    assert len(creates) == 3 and {r["params"]["ValidityPeriod"] for r in creates} == {seconds}


def test_an_alert_stuck_in_twilios_queue_past_its_period_expires_and_counts_as_expired(
        app, aviso, fake, public_port, settings):  # noqa: F811
    family(aviso, 2)
    aviso.settings = settings.with_overrides(validity_periods=(("urgent", 1), *settings.validity_periods[1:]))
    fake.configure(status_callbacks=True, sent_delay_ms=1500)  # each message waits 1.5 s in Twilio's queue
    server = make_server("127.0.0.1", public_port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        broadcast = send(app, aviso, make_broadcast(urgent=True))
        store = BroadcastStore(aviso.connection)
        deadline = time.monotonic() + 10
        while store.outcomes(broadcast.id).expired < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        server.shutdown()
        thread.join()
    assert {(m["status"], m["error_code"]) for m in fake.messages()} == {("failed", 30036)}
    outcomes = store.outcomes(broadcast.id)
    assert (outcomes.sent, outcomes.expired, outcomes.delivered, outcomes.delivery_failed) == (2, 2, 0, 0)


def test_twilio_refuses_a_period_outside_one_second_to_ten_hours(fake):  # noqa: F811
    from twilio.base.exceptions import TwilioRestException

    from bot.twilio.client import make_client
    from tests.conftest import ACCOUNT_SID, AUTH_TOKEN

    client = make_client(ACCOUNT_SID, AUTH_TOKEN, api_base_url=fake.url)
    with pytest.raises(TwilioRestException) as refused:
        client.messages.create(to="+12135550100", from_="+12135550199", body="hola", validity_period=36001)
    assert refused.value.code == 21624
