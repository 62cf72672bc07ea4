"""Where Twilio calls Aviso: the URLs `aviso twilio setup` sets on a Messaging Service or on a phone number.

Twilio keeps messaging and calls apart, and so does this module:
- A Messaging Service (TWILIO_MESSAGING_SERVICE_SID) owns its numbers' messaging: its inbound request URL,
  fallback URL and status callback URL (every message sent through it reports there, per-message
  StatusCallback or not). Its numbers' own SMS URLs are then ignored (UseInboundWebhookOnNumber off).
- A number on its own (`--number`): its SmsUrl and SmsFallbackUrl. A number has no messaging status
  callback: its StatusCallback is the status of *calls*, so it is not set (Aviso passes a StatusCallback with
  each message it sends instead), and cleared when an earlier setup pointed it at Aviso's message statuses.
- Calls always go to the number: its VoiceUrl is the voice line, its VoiceFallbackUrl the voice line on the
  fallback's deployment.
"""

from __future__ import annotations

from dataclasses import dataclass

INBOUND_PATH = "/twilio/messages"
STATUS_PATH = "/twilio/status"
FALLBACK_PATH = "/twilio/fallback"
VOICE_PATH = "/twilio/voice"


@dataclass(frozen=True)
class WebhookUrls:
    """Aviso's webhook URLs on one public origin, and the fallback's (another deployment's, ideally)."""

    inbound: str
    status: str
    fallback: str
    voice: str
    voice_fallback: str

    @classmethod
    def for_origin(cls, public_base_url: str, fallback_url: str | None = None) -> WebhookUrls:
        """The URLs under PUBLIC_BASE_URL; a fallback URL given moves the voice fallback to its origin too."""
        base = public_base_url.rstrip("/")
        fallback = fallback_url or base + FALLBACK_PATH
        fallback_origin = fallback_url.split("/twilio/")[0] if fallback_url else base
        return cls(inbound=base + INBOUND_PATH, status=base + STATUS_PATH, fallback=fallback,
                   voice=base + VOICE_PATH, voice_fallback=fallback_origin + VOICE_PATH)


def point_service(client, service_sid: str, urls: WebhookUrls):
    """Set a Messaging Service's inbound, fallback and status callback URLs; return the updated service."""
    return client.messaging.v1.services(service_sid).update(
        inbound_request_url=urls.inbound, inbound_method="POST",
        fallback_url=urls.fallback, fallback_method="POST",
        status_callback=urls.status,
        use_inbound_webhook_on_number=False,
    )


def point_calls(number, urls: WebhookUrls):
    """Point a number's calls at the voice line (and its fallback); return the updated number."""
    return number.update(voice_url=urls.voice, voice_method="POST",
                         voice_fallback_url=urls.voice_fallback, voice_fallback_method="POST",
                         **_stale_call_status(number, urls))


def point_number(number, urls: WebhookUrls):
    """Point a number's messages (inbound and fallback) and calls at Aviso; return the updated number."""
    return number.update(sms_url=urls.inbound, sms_method="POST",
                         sms_fallback_url=urls.fallback, sms_fallback_method="POST",
                         voice_url=urls.voice, voice_method="POST",
                         voice_fallback_url=urls.voice_fallback, voice_fallback_method="POST",
                         **_stale_call_status(number, urls))


def find_number(client, number: str):
    """The account's IncomingPhoneNumber for a number (+E.164), or None."""
    found = client.incoming_phone_numbers.list(phone_number=number, limit=1)
    return found[0] if found else None


def _stale_call_status(number, urls: WebhookUrls) -> dict[str, str]:
    """Clear a call StatusCallback an earlier `aviso twilio setup` aimed at the message status webhook.

    Twilio would post every call's progress there, where it reads as message statuses. A call status URL of
    the district's own (anything else) is left alone.
    """
    return {"status_callback": ""} if (number.status_callback or "") == urls.status else {}
