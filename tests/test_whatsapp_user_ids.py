"""WhatsApp families who hide their number behind a username: known by their business-scoped user id (BSUID).

Through the real signed webhook, the real twilio library and the fake Twilio REST server.
"""

from __future__ import annotations

import time
import uuid

import pytest

from bot.broadcasts.store import DONE, BroadcastStore
from bot.conversation.engine import submenu_text
from bot.people.contacts import contact_redis_key, number_of
from bot.people.identity import WHATSAPP, Address
from bot.store import keys
from bot.twilio.fake import FakeTwilio
from bot.web.simulator import inbound_params
from bot.workshops import registrations

from .conftest import ACCOUNT_SID, AUTH_TOKEN, Phone, replies
from .test_broadcasts import ES_TEXT, make_broadcast
from .test_fanout import send
from .test_reminders import DAY_BEFORE, EPOCH_1D, KYR, fire
from .workshops_support import SIGNUP, make_contact, publish

SERVICE_SID = "MG" + "b" * 32
WHATSAPP_FROM = "whatsapp:+12135550199"
USER_ID = "US.13491208655302741918"
NUMBER = "+13105550142"


@pytest.fixture
def fake():
    """The fake Twilio, with the test account's credentials, answering at once."""
    with FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, messaging_services=[SERVICE_SID]) as server:
        yield server


@pytest.fixture
def settings(settings, fake):
    """The test settings, sending through the fake Twilio."""
    return settings.with_overrides(
        twilio_account_sid=ACCOUNT_SID, twilio_messaging_service_sid=SERVICE_SID,
        twilio_whatsapp_from=WHATSAPP_FROM, twilio_api_base_url=fake.url)


class WhatsAppUser(Phone):
    """A WhatsApp user as Twilio presents them: a number, a user id, or both (From and ExternalUserId)."""

    def __init__(self, client, *, number: str | None = None, user_id: str | None = None):
        super().__init__(client, f"whatsapp:{number or user_id}")
        self.user_id = user_id

    def text(self, body: str, sid: str | None = None, **extra: str) -> list[str]:
        """Send a message the way Twilio posts it for this user; return the replies."""
        params = {"MessageSid": sid or "SM" + uuid.uuid4().hex, "AccountSid": ACCOUNT_SID, "From": self.number,
                  "To": WHATSAPP_FROM, "Body": body, "NumMedia": "0", "ProfileName": "maria_lopez_la", **extra}
        if self.user_id:
            params["ExternalUserId"] = f"whatsapp:{self.user_id}"
        if not self.number.startswith("whatsapp:+"):
            params["WaId"] = ""
        response = self.post(params)
        assert response.status_code == 200, response.data
        return replies(response.data)


def contact_keys(aviso) -> list[str]:
    return [key.decode().rsplit(":", 1)[1] for key in aviso.connection.scan_iter("aviso:contact:*")]


def key_of(aviso, handle: str) -> str:
    return aviso.keyring.contact_key(Address(WHATSAPP, handle))


FLOWS = [
    pytest.param(("hola", "2", "MENU"), id="language"),
    pytest.param(("DERECHOS", "1"), id="rights"),
    pytest.param(("ALERTAS", "Belmont", "1", "MIS ALERTAS", "SALIR Belmont"), id="alerts"),
    pytest.param(("TALLERES", "1", "MIS TALLERES"), id="workshops"),
    pytest.param(("VERIFICAR K7Q2Z",), id="verify"),
    pytest.param(("DERECHOS", "STOP", "DERECHOS", "START"), id="stop"),
    pytest.param(("DERECHOS", "BORRAR", "BORRAR"), id="forget"),
]


@pytest.mark.parametrize("messages", FLOWS)
def test_a_family_known_only_by_its_user_id_gets_every_answer_a_number_gets(client, messages):
    hidden = WhatsAppUser(client, user_id=USER_ID)
    visible = WhatsAppUser(client, number=NUMBER)
    for body in messages:
        assert hidden.text(body) == visible.text(body), body


def test_a_user_id_contact_is_named_by_the_keyed_hash_and_stores_the_id_only_encrypted(client, aviso):
    WhatsAppUser(client, user_id=USER_ID).text("ALERTAS Belmont")
    WhatsAppUser(client, user_id=USER_ID).text("1")
    (contact,) = contact_keys(aviso)
    assert contact == key_of(aviso, USER_ID)
    assert aviso.connection.smembers(keys.SCHOOL_SUBSCRIBERS.format(code="BELMONT")) == {contact.encode()}
    assert aviso.connection.hget(contact_redis_key(contact), "ch") == b"whatsapp"
    assert number_of(aviso.connection, aviso.keyring, contact) == USER_ID


def test_a_family_whose_number_disappears_from_later_payloads_stays_one_contact(client, aviso, shipped_content):
    both = WhatsAppUser(client, number=NUMBER, user_id=USER_ID)
    for body in ("ALERTAS", "Belmont", "1"):
        both.text(body)
    (contact,) = contact_keys(aviso)
    assert contact == key_of(aviso, NUMBER)  # the number's contact, as before user ids existed
    hidden = WhatsAppUser(client, user_id=USER_ID)
    (listing,) = hidden.text("MIS ALERTAS")
    assert listing == shipped_content.text("es", "alerts.list", schools="Belmont High School")
    assert contact_keys(aviso) == [contact]
    assert number_of(aviso.connection, aviso.keyring, contact) == NUMBER  # still sent to its number
    assert aviso.keyring.decrypt(aviso.connection.hget(contact_redis_key(contact), "uid").decode()) == USER_ID


def test_a_family_first_known_by_its_user_id_keeps_its_contact_when_its_number_shows(client, aviso, shipped_content):
    WhatsAppUser(client, user_id=USER_ID).text("ALERTAS Belmont")
    WhatsAppUser(client, user_id=USER_ID).text("1")
    (contact,) = contact_keys(aviso)
    expected = [shipped_content.text("es", "alerts.list", schools="Belmont High School")]
    assert WhatsAppUser(client, number=NUMBER, user_id=USER_ID).text("MIS ALERTAS") == expected
    assert WhatsAppUser(client, number=NUMBER).text("MIS ALERTAS") == expected  # the number alone, later
    assert contact_keys(aviso) == [contact]


def test_forget_by_user_id_erases_the_numbers_contact_and_every_alias(client, aviso):
    both = WhatsAppUser(client, number=NUMBER, user_id=USER_ID)
    for body in ("ALERTAS", "Belmont", "1"):
        both.text(body)
    hidden = WhatsAppUser(client, user_id=USER_ID)
    hidden.text("BORRAR")
    hidden.text("BORRAR")
    assert contact_keys(aviso) == []
    assert list(aviso.connection.scan_iter("aviso:alias:*")) == []
    assert aviso.connection.smembers(keys.SCHOOL_SUBSCRIBERS.format(code="BELMONT")) == set()
    hidden.text("DERECHOS")  # and a new conversation starts from nothing
    assert contact_keys(aviso) == [key_of(aviso, USER_ID)]


def test_an_alias_lives_exactly_as_long_as_its_contact(client, aviso, settings):
    both = WhatsAppUser(client, number=NUMBER, user_id=USER_ID)
    both.text("DERECHOS")
    contact, alias = contact_redis_key(key_of(aviso, NUMBER)), keys.CONTACT_ALIAS.format(key=key_of(aviso, USER_ID))
    assert 0 < aviso.connection.ttl(alias) <= settings.contact_ttl_days * 24 * 3600
    assert abs(aviso.connection.ttl(alias) - aviso.connection.ttl(contact)) <= 1
    for body in ("ALERTAS", "Belmont", "1"):
        WhatsAppUser(client, user_id=USER_ID).text(body)
    assert aviso.connection.ttl(contact) == aviso.connection.ttl(alias) == -1  # a subscriber stays, so does its alias


def test_a_user_id_only_family_follows_a_school_and_receives_its_broadcast(app, aviso, client, fake):
    hidden = WhatsAppUser(client, user_id=USER_ID)
    for body in ("ALERTAS", "Belmont", "1"):
        hidden.text(body)
    both = WhatsAppUser(client, number=NUMBER, user_id="US.98765432109876543210")
    for body in ("ALERTAS", "Belmont", "1"):
        both.text(body)
    broadcast = make_broadcast(schools=("BELMONT",))
    (row,) = BroadcastStore(aviso.connection).plan(broadcast).languages  # the dashboard's preview counts
    assert (row.language, row.whatsapp, row.sms, row.whatsapp_unreachable) == ("es", 2, 0, 0)
    sent = send(app, aviso, broadcast)
    assert sent.status == DONE
    received = {m["to"]: m["body"] for m in fake.messages()}
    assert set(received) == {f"whatsapp:{USER_ID}", f"whatsapp:{NUMBER}"}
    assert all(ES_TEXT in body for body in received.values())


def test_a_workshop_reminder_reaches_a_user_id_family_through_twilio(app, aviso, shipped_content, fake):
    content = publish(aviso, shipped_content, KYR)
    family = make_contact(aviso, USER_ID, "es", channel=WHATSAPP)
    registrations.register(aviso.connection, family, content.workshop("kyr"), SIGNUP)
    assert fire(app, "kyr", "1d", EPOCH_1D, now=DAY_BEFORE) == "reminder 1d for kyr: 1 sent"
    assert [m["to"] for m in fake.messages()] == [f"whatsapp:{USER_ID}"]


def test_the_simulator_and_aviso_chat_text_as_a_family_known_only_by_its_user_id(client, settings, shipped_content):
    params = inbound_params(f"whatsapp:{USER_ID}", "DERECHOS", settings)
    assert params["ExternalUserId"] == params["From"] == f"whatsapp:{USER_ID}" and "WaId" not in params
    response = Phone(client).post(params)
    assert replies(response.data) == [submenu_text(shipped_content, "es", "rights")]


def test_a_user_id_is_refused_where_a_phone_number_is_needed(aviso, runner, cli_env):
    from bot.cli.main import cli

    result = runner.invoke(cli, ["staff", "add", "--phone", f"whatsapp:{USER_ID}", "--name", "X", "--role", "sender",
                                 "--schools", "BELMONT"], env=cli_env)
    assert result.exit_code != 0 and "not a phone number" in result.output
    assert aviso.roster.all() == []


def test_a_workshop_sign_ups_alias_expires_when_its_registration_data_and_contact_do(client, aviso, settings):
    both = WhatsAppUser(client, number=NUMBER, user_id=USER_ID)
    both.text("TALLERES")
    both.text("1")
    contact, alias = contact_redis_key(key_of(aviso, NUMBER)), keys.CONTACT_ALIAS.format(key=key_of(aviso, USER_ID))
    assert aviso.connection.ttl(contact) == -1  # kept while signed up; let expire when the workshop's data goes
    (workshop_id,) = aviso.connection.hget(contact, "workshops").decode().split(",")
    workshop = aviso.active_content().workshop(workshop_id)
    expected = registrations.keep_until(workshop) - time.time() + settings.contact_ttl_days * 24 * 3600
    assert abs(aviso.connection.ttl(alias) - expected) <= 5
