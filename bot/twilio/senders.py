"""Senders: how an outbound message leaves through Twilio's REST API; what every sender promises."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from bot.config import Settings
from bot.people.identity import WHATSAPP, Address

REQUEST_TIMEOUT_SECONDS = 10.0  # a Twilio call slower than this is abandoned (and then reconciled)
RECONCILE_CLOCK_SLACK = timedelta(seconds=5)  # our clock against Twilio's when listing sent messages
RECONCILE_PAGE_SIZE = 50  # messages to one number since a send began: a handful at most
RETRYABLE_HTTP_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRYABLE_CODES = frozenset({20429, 20500, 20503})


class SendError(Exception):
    """A message could not be sent; code is Twilio's error code when it gave one."""

    def __init__(self, message: str, *, code: int | None = None, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.status = status


class RetryableSendError(SendError):
    """Twilio refused for now (429, 5xx, no connection): nothing was sent, try again later."""


class UncertainSendError(SendError):
    """The request may have reached Twilio (timeout, dropped connection): check before trying again."""


class RejectedSendError(SendError):
    """Twilio refused this message for good (21610 unsubscribed, 21211 invalid number, 63016...)."""


@dataclass(frozen=True)
class SentMessage:
    """What a sender returns: the message's sid (Twilio's, or the outbox's own)."""

    sid: str


class Sender(Protocol):
    """Anything that can send one message to one address."""

    def send(
        self,
        address: Address,
        body: str,
        *,
        content_version: str = "",
        status_callback: str | None = None,
        content_sid: str | None = None,
        content_variables: dict[str, str] | None = None,
        validity_period: int | None = None,
    ) -> SentMessage:
        """Send one message (a WhatsApp template when content_sid is given); raise a SendError."""

    def origin(self, address: Address) -> str:
        """The sender a message to this address leaves from (rate limits are counted per sender)."""

    def find_sent(self, address: Address, since: datetime, body: str | None) -> str | None:
        """The sid of a message already sent to address since a time (body None: a template), or None."""

    def session(self, concurrency: int) -> SendSession:
        """An asyncio session for a burst (`async with`, inside the loop that sends): send and find_sent."""


class SendSession(Protocol):
    """A sender's asyncio side for one event loop: the same calls, awaited."""

    async def __aenter__(self) -> SendSession:
        """Open (connections, clients) inside the running loop."""

    async def __aexit__(self, *exc) -> None:
        """Close what was opened."""

    async def send(
        self,
        address: Address,
        body: str,
        *,
        content_version: str = "",
        status_callback: str | None = None,
        content_sid: str | None = None,
        content_variables: dict[str, str] | None = None,
        validity_period: int | None = None,
    ) -> SentMessage:
        """Send one message, as Sender.send."""

    async def find_sent(self, address: Address, since: datetime, body: str | None) -> str | None:
        """Look for a message already sent, as Sender.find_sent."""


class TwilioSender:
    """Sends through Twilio's REST API (or TWILIO_API_BASE_URL), client built on first use."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._client = None
        self._client_lock = threading.Lock()

    @property
    def client(self):
        """The twilio REST client (built once, even when many threads ask at once)."""
        if self._client is None:
            with self._client_lock:
                return self._client or self._make_client()
        return self._client

    def _make_client(self):
        if self._client is None:
            from bot.twilio.client import make_client

            client = make_client(
                self.settings.twilio_account_sid,
                self.settings.twilio_auth_token,
                api_base_url=self.settings.twilio_api_base_url,
                timeout=REQUEST_TIMEOUT_SECONDS,
            )
            _read_environment_once(client.http_client.session, self.settings.twilio_api_base_url)
            self._client = client
        return self._client

    def _from(self, address: Address) -> dict[str, str]:
        if address.channel == WHATSAPP and self.settings.twilio_whatsapp_from:
            return {"from_": self.settings.twilio_whatsapp_from}
        if self.settings.twilio_messaging_service_sid:
            return {"messaging_service_sid": self.settings.twilio_messaging_service_sid}
        return {"from_": self.settings.twilio_sms_from or ""}

    def origin(self, address: Address) -> str:
        """The messaging service sid or from-number this address is sent from."""
        return next(iter(self._from(address).values()))

    def send(
        self,
        address: Address,
        body: str,
        *,
        content_version: str = "",
        status_callback: str | None = None,
        content_sid: str | None = None,
        content_variables: dict[str, str] | None = None,
        validity_period: int | None = None,
    ) -> SentMessage:
        """Create one message at Twilio; raise RetryableSendError, UncertainSendError or RejectedSendError."""
        params = self.create_params(address, body, status_callback, content_sid, content_variables, validity_period)
        with twilio_request_errors():
            message = self.client.messages.create(**params)
        return SentMessage(message.sid)

    def create_params(self, address: Address, body: str, status_callback: str | None, content_sid: str | None,
                      content_variables: dict[str, str] | None, validity_period: int | None = None) -> dict[str, str]:
        """The arguments of messages.create for one message (ValidityPeriod: Twilio drops it after that long)."""
        params: dict[str, str] = {"to": address.twilio, **self._from(address)}
        if content_sid:
            params["content_sid"] = content_sid
            if content_variables:
                params["content_variables"] = json.dumps(content_variables, ensure_ascii=False)
        else:
            params["body"] = body
        if status_callback:
            params["status_callback"] = status_callback
        if validity_period:
            params["validity_period"] = validity_period
        return params

    def find_sent(self, address: Address, since: datetime, body: str | None) -> str | None:
        """Ask Twilio for a message to address since a time with this body (None: any template send)."""
        from requests import RequestException
        from twilio.base.exceptions import TwilioRestException

        after = since - RECONCILE_CLOCK_SLACK
        try:
            messages = self.client.messages.list(
                to=address.twilio, date_sent_after=after, page_size=RECONCILE_PAGE_SIZE,
                limit=RECONCILE_PAGE_SIZE,
            )
        except TwilioRestException as exc:
            raise RetryableSendError("could not list messages", code=exc.code, status=exc.status) from None
        except RequestException:
            raise RetryableSendError("could not list messages: no answer from Twilio") from None
        return _sent_sid(messages, after, body)

    def session(self, concurrency: int) -> TwilioSession:
        """An asyncio session: the library's async API on aiohttp, `concurrency` connections."""
        return TwilioSession(self, concurrency)


class TwilioSession:
    """TwilioSender's asyncio side: the twilio library's async API on one aiohttp session per loop."""

    def __init__(self, sender: TwilioSender, concurrency: int):
        self.sender, self.concurrency = sender, concurrency
        self.client = None

    async def __aenter__(self) -> TwilioSession:
        """Open the aiohttp session in the running loop."""
        from bot.twilio.client import make_async_client

        settings = self.sender.settings
        client = make_async_client(settings.twilio_account_sid, settings.twilio_auth_token,
                                   api_base_url=settings.twilio_api_base_url, timeout=REQUEST_TIMEOUT_SECONDS,
                                   connections=self.concurrency)
        await client.http_client.open()
        self.client = client
        return self

    async def __aexit__(self, *exc) -> None:
        """Close the aiohttp session."""
        if self.client is not None:
            await self.client.http_client.close()
            self.client = None

    async def send(
        self,
        address: Address,
        body: str,
        *,
        content_version: str = "",
        status_callback: str | None = None,
        content_sid: str | None = None,
        content_variables: dict[str, str] | None = None,
        validity_period: int | None = None,
    ) -> SentMessage:
        """Create one message at Twilio; raise RetryableSendError, UncertainSendError or RejectedSendError."""
        from aiohttp import ClientError
        from twilio.base.exceptions import TwilioRestException

        params = self.sender.create_params(address, body, status_callback, content_sid, content_variables,
                                           validity_period)
        try:
            message = await self.client.messages.create_async(**params)
        except TwilioRestException as exc:
            raise _classify(exc.status, exc.code) from None
        except (TimeoutError, OSError, ClientError) as exc:
            raise _classify_transport(exc) from None
        return SentMessage(message.sid)

    async def find_sent(self, address: Address, since: datetime, body: str | None) -> str | None:
        """Ask Twilio for a message to address since a time with this body (None: any template send)."""
        from aiohttp import ClientError
        from twilio.base.exceptions import TwilioRestException

        after = since - RECONCILE_CLOCK_SLACK
        try:
            messages = await self.client.messages.list_async(
                to=address.twilio, date_sent_after=after, page_size=RECONCILE_PAGE_SIZE,
                limit=RECONCILE_PAGE_SIZE,
            )
        except TwilioRestException as exc:
            raise RetryableSendError("could not list messages", code=exc.code, status=exc.status) from None
        except (TimeoutError, OSError, ClientError):
            raise RetryableSendError("could not list messages: no answer from Twilio") from None
        return _sent_sid(messages, after, body)


def _sent_sid(messages, after: datetime, body: str | None) -> str | None:
    """The first outbound message created since `after` with this body (None: any), from a listing."""
    for message in messages:
        created = message.date_created
        if created is not None and created < after:
            continue
        if message.direction and not message.direction.startswith("outbound"):
            continue
        # A template's body is rendered by Twilio, so any message sent since the claim counts.
        if body is None or message.body == body:
            return message.sid
    return None


def _classify_transport(exc: Exception) -> SendError:
    """The SendError for an aiohttp failure: nothing written (retry) or maybe arrived (check first)."""
    from aiohttp import ClientConnectorError, ConnectionTimeoutError

    if isinstance(exc, (ClientConnectorError, ConnectionTimeoutError)):
        return RetryableSendError("could not connect to Twilio")
    if isinstance(exc, TimeoutError):
        return UncertainSendError("no answer from Twilio in time")
    return UncertainSendError("connection to Twilio lost during the request")


def _read_environment_once(session, base_url: str | None) -> None:
    """Give a requests session the environment's proxies and CA bundle once, and stop it reading them per call."""
    from bot.twilio.client import TWILIO_API, environ_proxies_and_bundle

    proxies, bundle = environ_proxies_and_bundle(base_url or TWILIO_API)
    session.proxies.update(proxies)
    if bundle:
        session.verify = bundle
    session.trust_env = False


@contextmanager
def twilio_request_errors():
    """Turn what a twilio-library (requests) call raises into a SendError: Twilio refused (by status and code),
    nothing written (retry), or maybe arrived (check before trying again)."""
    from requests import RequestException
    from requests.exceptions import ConnectionError as RequestsConnectionError
    from requests.exceptions import ConnectTimeout
    from twilio.base.exceptions import TwilioRestException

    try:
        yield
    except TwilioRestException as exc:
        raise _classify(exc.status, exc.code) from None
    except ConnectTimeout:
        raise RetryableSendError("could not connect to Twilio") from None
    except RequestsConnectionError as exc:
        # No connection made means nothing was written: safe to retry. A dropped one may have arrived.
        if _never_connected(exc):
            raise RetryableSendError("could not connect to Twilio") from None
        raise UncertainSendError("connection to Twilio lost during the request") from None
    except RequestException:
        raise UncertainSendError("no answer from Twilio in time") from None


def _never_connected(exc: Exception) -> bool:
    """Whether a requests ConnectionError failed while connecting (so no request was written)."""
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError)


def _classify(status: int | None, code: int | None) -> SendError:
    """The SendError for an HTTP status and Twilio error code."""
    if status in RETRYABLE_HTTP_STATUSES or code in RETRYABLE_CODES or (status or 0) >= 500:
        return RetryableSendError(f"Twilio answered {status} ({code})", code=code, status=status)
    return RejectedSendError(f"Twilio refused the message: {code}", code=code, status=status)
