"""Staff message one workshop's registrants through the broadcast pipeline."""

from __future__ import annotations

import pytest

from bot.broadcasts.compose import BroadcastRequest
from bot.cli.main import cli
from bot.content.encoding import for_sms
from bot.people.staff import NotAllowed

from .conftest import Phone
from .test_desk import NOON, outbox_for, work
from .workshops_support import publish, workshop


@pytest.fixture
def settings(settings):
    return settings.with_overrides(quiet_hours=None)


@pytest.fixture
def registered(aviso, client, shipped_content):
    """A Belmont workshop far in the future; two families signed up by text, one who did not."""
    entry = dict(workshop("kyr-test", "2030-03-05T18:00", title="KYR"), school="Belmont High School")
    publish(aviso, shipped_content, entry)
    for number in ("+12135550171", "+12135550172"):
        phone = Phone(client, number)
        phone.text("TALLERES")
        phone.text("1")
    Phone(client, "+12135550173").text("DERECHOS")
    return ["+12135550171", "+12135550172"]


@pytest.fixture
def staff(aviso, shipped_content):
    known = set(shipped_content.schools.by_code)
    return {"belmont": aviso.roster.add("+13105550121", "Ms. Ortiz", "sender", ["BELMONT"], known),
            "venice": aviso.roster.add("+13105550122", "Mr. Cho", "sender", ["VENICE"], known)}


MESSAGE = BroadcastRequest((), "update", custom_texts={"en": "Room changed to the library.",
                                                        "es": "El taller cambio a la biblioteca."},
                           workshop="kyr-test")


def test_message_reaches_exactly_the_workshops_registrants_in_their_language(app, aviso, staff, registered):
    sent = aviso.desk().create(staff["belmont"], MESSAGE, now=NOON)
    work(app, aviso)
    for number in registered:
        expected = sent.texts["es"] if number.startswith("whatsapp:") else for_sms(sent.texts["es"], "es")
        assert outbox_for(aviso, number)[-1] == expected
    assert "KYR (es)" in sent.texts["es"]
    assert not any("biblioteca" in body for body in outbox_for(aviso, "+12135550173"))
    assert aviso.broadcasts.outcomes(sent.id).sent == 2


def test_only_staff_of_the_workshops_school_may_message_it(aviso, staff, registered):
    with pytest.raises(NotAllowed):
        aviso.desk().create(staff["venice"], MESSAGE, now=NOON)


def test_workshops_message_command(runner, cli_env, app, aviso, staff, registered):
    result = runner.invoke(cli, ["workshops", "message", "kyr-test", "--as", staff["belmont"].id,
                                 "--text", "en=Bring an ID.", "--text", "es=Traiga una identificacion."],
                           env=cli_env)
    assert result.exit_code == 0, result.output
    work(app, aviso)
    assert outbox_for(aviso, registered[0])[-1].count("Traiga una identificacion.") == 1


def test_dashboard_workshops_page_leads_to_a_message_for_the_registrants(app, aviso, client, staff, registered):
    from .test_dashboard import create, sign_in

    sign_in(client, aviso, "+13105550121")
    page = client.get("/dashboard/workshops").get_data(as_text=True)
    assert "/dashboard/broadcasts/new?workshop=kyr-test" in page
    compose = client.get("/dashboard/broadcasts/new?workshop=kyr-test").get_data(as_text=True)
    assert 'name="workshop" value="kyr-test"' in compose and 'name="schools"' not in compose
    broadcast_id = create(client, {"workshop": "kyr-test", "kind": "update", "source": "custom",
                                   "text.en": "Room changed.", "text.es": "Cambio de salon.", "when": "now"})
    work(app, aviso)
    assert aviso.broadcasts.get(broadcast_id).workshop == "kyr-test"
    assert outbox_for(aviso, registered[0])[-1].count("Cambio de salon.") == 1
