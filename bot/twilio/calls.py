"""Outbound calls: place one call through Twilio's Calls API, or find a call already placed to a number."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from bot.twilio.client import make_client
from bot.twilio.senders import RejectedSendError, RetryableSendError, UncertainSendError, twilio_request_errors

CALL_TIMEOUT_SECONDS = 10.0  # a create Twilio has not answered by then may still have been placed: check first
RING_SECONDS = 30  # how long Twilio lets the phone ring before "no-answer"
FIND_PAGE_SIZE = 20
CLOCK_SLACK = timedelta(seconds=5)  # Twilio's clock and ours may differ this much (a call before it is not ours)
STATUS_EVENTS = ["answered", "completed"]  # the final status (completed, no-answer, busy, failed) comes with completed


class CallPlacer:
    """Places calls from one number with the twilio library (TWILIO_API_BASE_URL honoured), client made once."""

    def __init__(self, settings):
        self.settings = settings
        self.origin = settings.twilio_voice_from
        self.client = make_client(settings.twilio_account_sid, settings.twilio_auth_token,
                                  api_base_url=settings.twilio_api_base_url, timeout=CALL_TIMEOUT_SECONDS)

    @classmethod
    def configured(cls, settings) -> CallPlacer | None:
        """A placer, or None when no Twilio account or voice number is configured (nobody can be called)."""
        if not (settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_voice_from):
            return None
        return cls(settings)

    def place(self, to: str, url: str, status_callback: str) -> str:
        """Create one call to a number (E.164) that fetches its TwiML from url; its sid. Raises RetryableSendError
        (nothing placed), UncertainSendError (maybe placed: find() before trying again) or RejectedSendError."""
        with twilio_request_errors():
            call = self.client.calls.create(to=to, from_=self.origin, url=url, method="POST",
                                            status_callback=status_callback, status_callback_method="POST",
                                            status_callback_event=STATUS_EVENTS, timeout=RING_SECONDS)
        return call.sid

    def find(self, to: str, since: datetime) -> str | None:
        """The sid of a call from our number to `to` created since a time, or None. Raises RetryableSendError."""
        from requests import RequestException
        from twilio.base.exceptions import TwilioRestException

        try:
            calls = self.client.calls.list(to=to, from_=self.origin, page_size=FIND_PAGE_SIZE, limit=FIND_PAGE_SIZE)
        except TwilioRestException as exc:
            raise RetryableSendError("could not list calls", code=exc.code, status=exc.status) from None
        except RequestException:
            raise RetryableSendError("could not list calls: no answer from Twilio") from None
        after = since - CLOCK_SLACK
        for call in calls:
            created = call.date_created
            if isinstance(created, str):
                created = parsedate_to_datetime(created)
            if created is None or created >= after:
                return call.sid
        return None


__all__ = ["CallPlacer", "RejectedSendError", "RetryableSendError", "UncertainSendError"]
