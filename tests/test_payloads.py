"""Twilio's inbound payloads as they really arrive, through the real signed webhook.

The shapes follow the fields Twilio documents for its incoming-message webhook (SMS geography,
MMS media, WhatsApp's ProfileName/WaId, quick-reply buttons, locations, click-to-WhatsApp referrals,
replies to a message) and the business-scoped user ids Meta gives WhatsApp users (ExternalUserId).
"""

from __future__ import annotations

import random
import uuid

import pytest

from bot.content.encoding import for_sms
from bot.conversation.engine import submenu_text, welcome_text
from bot.web.payloads import BadRequest, parse_inbound

from .conftest import ACCOUNT_SID, Phone, replies

AVISO_SMS = "+12135550100"
AVISO_WHATSAPP = "whatsapp:+12135550100"
USER_ID = "US.13491208655302741918"


def sms(**fields: str) -> dict[str, str]:
    """An SMS/MMS webhook with every field Twilio sends for one, from a fresh number."""
    return {
        "ToCountry": "US", "ToState": "CA", "SmsMessageSid": "", "NumMedia": "0", "ToCity": "LOS ANGELES",
        "FromZip": "90012", "SmsSid": "", "FromState": "CA", "SmsStatus": "received", "FromCity": "LOS ANGELES",
        "FromCountry": "US", "To": AVISO_SMS, "MessagingServiceSid": "MG" + "d" * 32, "ToZip": "90012",
        "NumSegments": "1", "AccountSid": ACCOUNT_SID, "From": f"+1213555{uuid.uuid4().int % 10_000:04d}",
        "ApiVersion": "2010-04-01", **fields,
    }


def whatsapp(**fields: str) -> dict[str, str]:
    """A WhatsApp webhook with the fields Twilio adds for WhatsApp, from a fresh number."""
    number = f"1310555{uuid.uuid4().int % 10_000:04d}"
    return {
        "SmsMessageSid": "", "NumMedia": "0", "ProfileName": "María López", "MessageType": "text",
        "SmsSid": "", "WaId": number, "SmsStatus": "received", "To": AVISO_WHATSAPP, "NumSegments": "1",
        "ReferralNumMedia": "0", "AccountSid": ACCOUNT_SID, "From": f"whatsapp:+{number}",
        "ApiVersion": "2010-04-01", "ChannelMetadata": '{"type":"whatsapp","data":{"context":{}}}', **fields,
    }


def rights(lang):
    return lambda content: [submenu_text(content, lang, "rights")]


def rights_by_sms(lang):
    """The rights menu as an SMS carries it (folded to GSM-7 where that saves a segment)."""
    return lambda content: [for_sms(submenu_text(content, lang, "rights"), lang)]


def help_in(lang):
    return lambda content: [content.text(lang, "help"), content.text(lang, "help.more")]


def cannot_open_media(content):
    return ["\n\n".join(content.text(code, "media") for code in content.welcome_languages)]


def welcome(content):
    return [welcome_text(content)]


SHAPES = [
    pytest.param(sms(Body="DERECHOS"), rights_by_sms("es"), id="sms-with-carrier-geography"),
    pytest.param(sms(NumMedia="2", MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM/Media/ME1",
                     MediaContentType0="image/jpeg", MediaUrl1="https://api.twilio.com/media/ME2",
                     MediaContentType1="image/png"),
                 cannot_open_media, id="mms-two-pictures-and-no-body-field"),
    pytest.param(whatsapp(Body="RIGHTS", Forwarded="true", FrequentlyForwarded="false"), rights("en"),
                 id="whatsapp-text-with-profile-and-forwarding"),
    pytest.param(whatsapp(Body="Más información", ButtonText="Más información", ButtonPayload="AYUDA",
                          MessageType="button", OriginalRepliedMessageSid="MM" + "e" * 32,
                          OriginalRepliedMessageSender=AVISO_WHATSAPP),
                 help_in("es"), id="whatsapp-quick-reply-button-uses-its-payload"),
    pytest.param(whatsapp(Body="", MessageType="location", Latitude="34.0522", Longitude="-118.2437",
                          Address="333 S Beaudry Ave, Los Angeles", Label="Escuela"),
                 welcome, id="whatsapp-location-pin"),
    pytest.param(whatsapp(Body="DERECHOS", ReferralBody="Conozca sus derechos", ReferralHeadline="Aviso",
                          ReferralSourceId="120210000000000", ReferralSourceType="ad",
                          ReferralSourceUrl="https://fb.me/abc", ReferralMediaId="1234",
                          ReferralMediaContentType="image/jpeg", ReferralMediaUrl="https://example.org/a.jpg",
                          ReferralNumMedia="1", ReferralCtwaClid="ARAkLkA8rmlFeiCktEJQ"),
                 rights("es"), id="whatsapp-click-to-whatsapp-ad-referral"),
    pytest.param(whatsapp(Body="DERECHOS", From=f"whatsapp:{USER_ID}", ExternalUserId=f"whatsapp:{USER_ID}",
                          WaId=""),
                 rights("es"), id="whatsapp-user-id-only-number-hidden"),
    pytest.param(whatsapp(Body="RIGHTS", ExternalUserId="whatsapp:US.98765432109876543210",
                          ParentExternalUserId="whatsapp:US.ENT.11815799212886844830"),
                 rights("en"), id="whatsapp-number-and-user-id"),
]


@pytest.mark.parametrize(("fields", "expected"), SHAPES)
def test_each_payload_shape_twilio_sends_gets_its_normal_answer(client, shipped_content, fields, expected):
    params = {"MessageSid": "SM" + uuid.uuid4().hex, **fields}
    response = Phone(client).post(params)
    assert response.status_code == 200, response.data
    assert replies(response.data) == expected(shipped_content)


def test_a_button_payload_is_answered_like_the_same_words_typed(client, shipped_content):
    tapped = Phone(client).post({"MessageSid": "SM" + uuid.uuid4().hex,
                                 **whatsapp(Body="Sí", ButtonText="Sí", ButtonPayload="DERECHOS")})
    typed = Phone(client, "whatsapp:+13105550999").text("DERECHOS")
    assert replies(tapped.data) == typed == [submenu_text(shipped_content, "es", "rights")]


@pytest.mark.parametrize("external", ["whatsapp:banana", "+13105550123", "whatsapp:US.", "sms:US.1234"])
def test_a_malformed_external_user_id_is_ignored_and_the_family_answered(client, aviso, shipped_content, external):
    fields = whatsapp(Body="RIGHTS", ExternalUserId=external)
    response = Phone(client).post({"MessageSid": "SM" + uuid.uuid4().hex, **fields})
    assert replies(response.data) == [submenu_text(shipped_content, "en", "rights")]
    assert list(aviso.connection.scan_iter("aviso:alias:*")) == []


FUZZ_ALPHABET = "0123456789²³¹١٢०௧߀𝟘０+-. :whatsapUS\x00\n\t🙂éSMabcdef"
FUZZ_FIELDS = ("MessageSid", "From", "NumMedia", "Body", "ExternalUserId", "ButtonPayload", "OptOutType")


def fuzzed_form(rng: random.Random) -> dict[str, str]:
    """A form whose fields are kept, dropped, or replaced by random text (digits of every script too)."""
    form = whatsapp(Body="RIGHTS", ExternalUserId=f"whatsapp:{USER_ID}")
    form["MessageSid"] = "SM" + uuid.UUID(int=rng.getrandbits(128)).hex
    for name in FUZZ_FIELDS:
        roll = rng.random()
        if roll < 0.15:
            form.pop(name, None)
        elif roll < 0.6:
            form[name] = "".join(rng.choice(FUZZ_ALPHABET) for _ in range(rng.randint(0, 40)))
    return form


def test_fuzzed_fields_are_parsed_or_refused_with_a_reason_never_an_error():
    rng = random.Random(13)
    parsed = refused = 0
    for _ in range(3000):
        try:
            message = parse_inbound(fuzzed_form(rng))
        except BadRequest as exc:
            refused += 1
            assert str(exc).split()[0] in {"missing", *FUZZ_FIELDS, "From:"}
        else:
            parsed += 1
            assert 0 <= message.num_media <= 9999
    assert parsed and refused  # both sides of the line were exercised


def test_fuzzed_requests_through_the_signed_webhook_get_200_or_400(client):
    rng = random.Random(17)
    statuses = {Phone(client).post(fuzzed_form(rng)).status_code for _ in range(300)}
    assert statuses == {200, 400}
