"""The compose flow's steps: "Send to N families?" before an update goes out, "write it again" keeping
everything after a send-back, corrections as urgent as their original and saying when they go out, times
shown with their zone."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.broadcasts.compose import BroadcastRequest
from bot.broadcasts.desk import Desk
from bot.broadcasts.store import APPROVED, PENDING_APPROVAL, SCHEDULED, SENDING

from . import test_dashboard
from .test_dashboard import ACTIVITY, APPROVER, ROUTE, SENDER, create, post, sign_in, work

# the dashboard tests' fixtures: no quiet hours, Belmont's staff and four families
settings, staff, families, make_client = (test_dashboard.settings, test_dashboard.staff, test_dashboard.families,
                                          test_dashboard.make_client)

GAS = {"var.correction.en": "It was the gas company.", "var.correction.es": "Era la compañía de gas.",
       "var.correction.ko": "가스 회사였습니다."}


def GAS_LANG(field: str) -> str:  # noqa: N802
    return field.rsplit(".", 1)[-1]


LA = ZoneInfo("America/Los_Angeles")
ZONED = r"\d{4}-\d\d-\d\d \d\d:\d\d P[SD]T"  # a time as pages show it: with its zone


def test_an_update_asks_send_to_n_families_before_it_goes_out(client, aviso, staff, families):
    sign_in(client, aviso, SENDER)
    asked = post(client, "/dashboard/broadcasts/new", {**ROUTE, "action": "send"}, "/dashboard/broadcasts/new")
    assert asked.status_code == 200 and "Send to 4 families?" in asked.text and "Yes, send to 4 families" in asked.text
    assert aviso.broadcasts.list_recent(5) == []  # nothing stored or sent yet
    sent = post(client, "/dashboard/broadcasts/new", {**ROUTE, "action": "send", "confirmed": "1"},
                "/dashboard/broadcasts/new")
    assert sent.status_code == 302 and len(aviso.broadcasts.list_recent(5)) == 1
    # A verified alert goes to an approver, who reads the preview: no second question for the sender.
    waiting = post(client, "/dashboard/broadcasts/new", {**ACTIVITY, "action": "send"}, "/dashboard/broadcasts/new")
    assert waiting.status_code == 302


def test_a_scheduled_update_says_when_it_goes_out_with_the_zone(client, aviso, staff, families, settings):
    sign_in(client, aviso, SENDER)
    later = (datetime.now(settings.timezone) + timedelta(days=2)).replace(hour=10, minute=0)
    broadcast_id = create(client, {**ROUTE, "when": "later", "send_at": later.strftime("%Y-%m-%dT%H:%M")})
    page = client.get(f"/dashboard/broadcasts/{broadcast_id}").text
    assert re.search(r"Scheduled\. It goes out at " + ZONED, page)
    assert re.search(r"Created</dt><dd>" + ZONED, page)


def test_write_it_again_keeps_the_texts_languages_and_urgency(make_client, aviso, staff, families):
    sender = sign_in(make_client(), aviso, SENDER)
    form = {"schools": "BELMONT", "kind": "verified", "verified_by": "LAUSD School Police", "source": "custom",
            "text.en": "Avoid 3rd & Loma this morning.", "text.es": "Eviten 3rd y Loma esta mañana.",
            "fallback_language": "en", "urgent": "1", "when": "now"}
    first = create(sender, form)
    approver = sign_in(make_client(), aviso, APPROVER)
    post(approver, f"/dashboard/broadcasts/{first}/reject", {"reason": "Say which gate"},
         f"/dashboard/broadcasts/{first}")
    again = sender.get(f"/dashboard/broadcasts/new?again={first}").text
    assert "Avoid 3rd &amp; Loma this morning.</textarea>" in again
    assert html.escape("Eviten 3rd y Loma esta mañana.", quote=False) + "</textarea>" in again
    assert re.search(r'name="urgent" value="1" checked', again)
    assert re.search(r'<option value="en" selected>', again) and 'value="LAUSD School Police"' in again
    assert re.search(r'value="custom" checked', again)
    second = create(sender, {**form, "text.en": "Avoid 3rd & Loma this morning: use the Beaudry gate."})
    written = aviso.broadcasts.get(second)
    assert written.urgent and written.fallback_language == "en" and written.bodies["es"] == form["text.es"]
    assert sender.get(f"/dashboard/broadcasts/new?again={'0' * 16}").status_code == 404
    only_spanish = aviso.desk().create(staff["sender"], BroadcastRequest(
        ("BELMONT",), "verified", custom_texts={"es": "Eviten 3rd y Loma."}, languages=("es",),
        verified_by="LAUSD School Police"))
    again = sender.get(f"/dashboard/broadcasts/new?again={only_spanish.id}").text
    assert '<input type="hidden" name="languages" value="es">' in again and "Only families who read Español." in again
    kept = create(sender, {**form, "languages": "es", "text.en": "", "fallback_language": ""})
    assert aviso.broadcasts.get(kept).languages == ("es",)


def _sent_original(app, aviso, staff, urgent: bool):
    """An update to Belmont's families that went out."""
    texts = {"en": "Gate B is closed.", "es": "Puerta B cerrada."}
    request = BroadcastRequest(("BELMONT",), "update", custom_texts=texts, fallback_language="en", urgent=urgent)
    original = aviso.desk().create(staff["sender"], request)
    work(app, aviso)
    return aviso.broadcasts.get(original.id)


def test_a_correction_is_as_urgent_as_its_original_and_not_held_for_quiet_hours(app, aviso, staff, families,
                                                                                 settings):
    quiet = Desk(aviso.broadcasts, aviso.active_content(), replace(settings, quiet_hours=(time(21), time(7))),
                 aviso.audit)
    evening = datetime(2026, 12, 3, 21, 5, tzinfo=LA)
    for urgent in (True, False):
        original = _sent_original(app, aviso, staff, urgent)
        said = {"correction": {GAS_LANG(k): v for k, v in GAS.items()}}
        request = BroadcastRequest((), "correction", "correction", said, corrects=original.id)
        correction = quiet.create(staff["sender"], request, now=evening)
        assert correction.status == PENDING_APPROVAL and correction.urgent is urgent
        approved = quiet.approve(staff["approver"], correction.id, now=evening)
        if urgent:
            assert approved.status in (SENDING, APPROVED)  # queued at once, not at 07:00
        else:
            assert approved.status == SCHEDULED and approved.starts_at == datetime(2026, 12, 4, 7, tzinfo=LA)
    assert quiet.goes_out(None, False, evening) == datetime(2026, 12, 4, 7, tzinfo=LA)
    assert quiet.goes_out(None, True, evening) == evening


def test_the_correction_page_and_approval_say_when_it_goes_out(make_client, app, aviso, staff, families):
    original = _sent_original(app, aviso, staff, urgent=True)
    sender = sign_in(make_client(), aviso, SENDER)
    form = sender.get(f"/dashboard/broadcasts/new?kind=correction&corrects={original.id}").text
    assert "this correction is too: once approved, it goes out at once" in form
    correction = create(sender, {"kind": "correction", "corrects": original.id, "source": "template",
                                 "template": "correction", **GAS})
    approver = sign_in(make_client(), aviso, APPROVER)
    page = approver.get(f"/dashboard/broadcasts/{correction}").text
    assert "Approved now, it goes out at once." in page
    done = post(approver, f"/dashboard/broadcasts/{correction}/approve", page=f"/dashboard/broadcasts/{correction}")
    assert done.status_code == 302
    assert "Approved. It is going out now." in approver.get(done.location).text
