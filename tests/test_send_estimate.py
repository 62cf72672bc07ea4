"""The preview says how long a send takes at the configured rate: recipients x segments / rate."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.broadcasts.plan import LanguagePlan, Plan

from .test_dashboard import ACTIVITY, SENDER, families, post, sign_in, staff, token  # noqa: F401  (fixtures)


def _plan(sms_segments: int, whatsapp: int, unreachable: int = 0) -> Plan:
    row = LanguagePlan("es", "es", sms=sms_segments, whatsapp=whatsapp, whatsapp_template=0,
                       whatsapp_unreachable=unreachable, sms_segments=None, total_segments=sms_segments)
    return Plan("b", (row,), (), recipients=sms_segments + whatsapp, messages=sms_segments + whatsapp,
                total_segments=sms_segments)


@pytest.mark.parametrize(("segments", "whatsapp", "unreachable", "rate", "seconds"), [
    (2000, 0, 0, 100, 20.0),     # 2,000 one-segment SMS at 100 segments a second
    (4000, 1000, 0, 50, 100.0),  # WhatsApp messages are paced one each
    (0, 1000, 400, 10, 60.0),    # those outside the window with no template are not sent
])
def test_send_seconds_are_segments_and_whatsapp_messages_over_the_rate(segments, whatsapp, unreachable, rate, seconds):
    assert _plan(segments, whatsapp, unreachable).send_seconds(rate) == seconds


def test_no_estimate_without_a_rate_of_avisos_own():
    assert _plan(100, 0).send_seconds(0) is None and _plan(100, 0).send_time(0) is None
    assert _plan(1, 0).send_time(100) == timedelta(seconds=1)  # never "0 seconds"


@pytest.fixture
def settings(settings, request):
    """The suite's settings, with AVISO_RATE_LIMIT_SEGMENTS_PER_SECOND when a test asks for one."""
    return settings.with_overrides(rate_limit_segments_per_second=getattr(request, "param", 0))


@pytest.mark.parametrize("settings", [1], indirect=True)
def test_the_preview_says_how_long_the_send_takes(client, aviso, staff, families):  # noqa: F811
    sign_in(client, aviso, SENDER)
    response = client.post("/dashboard/broadcasts/preview.json", data=ACTIVITY,
                           headers={"X-CSRF-Token": token(client, "/dashboard/")})
    data = response.get_json()
    paced = data["plan"]["total_segments"]  # four SMS families at Belmont (Korean in UCS-2), none on WhatsApp
    assert paced > 4 and data["plan"]["send_seconds"] == paced and data["plan"]["segments_per_second"] == 1
    assert f"Sending takes about {paced} seconds at 1 SMS segment per second." in data["html"]


def test_the_preview_says_when_twilio_paces_the_send(client, aviso, staff, families):  # noqa: F811
    sign_in(client, aviso, SENDER)
    page = post(client, "/dashboard/broadcasts/new", {**ACTIVITY, "action": "preview"}).text
    assert "No send rate is set (AVISO_RATE_LIMIT_SEGMENTS_PER_SECOND)" in page
