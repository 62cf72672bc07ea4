"""Services: the per-app objects (Redis, keys, content, conversations, sender), built once per app."""

from __future__ import annotations

import logging
import threading
import weakref
from datetime import date, datetime
from functools import cached_property

import redis
from flask import Flask, current_app
from redis.backoff import NoBackoff
from redis.retry import Retry
from twilio.request_validator import RequestValidator

from bot.broadcasts.desk import Desk
from bot.broadcasts.errors import BroadcastNotFound
from bot.broadcasts.store import BroadcastStore
from bot.config import Settings, load_settings
from bot.content import samples as sample_workshops
from bot.content.model import Content
from bot.conversation.engine import Policy
from bot.conversation.turn import AlertFacts
from bot.people.audit import AuditLog
from bot.people.identity import Keyring
from bot.people.signin import SignIn
from bot.people.staff import Roster
from bot.publishing.check import check
from bot.publishing.store import ContentStore
from bot.services.conversations import ContentUnavailable, Conversations, InboundMessage
from bot.store import embedded_redis, outage
from bot.twilio.outbox import OutboxSender
from bot.twilio.senders import Sender, TwilioSender

log = logging.getLogger(__name__)
EXTENSION = "aviso"


def shipped_content(settings: Settings, today: date | None = None) -> Content:
    """The content folder as it would be published: in development, its sample workshops moved to the
    coming weeks; otherwise exactly as the files say."""
    content = Content.from_dir(settings.content_dir)
    if not settings.is_development:
        return content
    today = today or datetime.now(settings.timezone).date()
    return Content(sample_workshops.moved_to_coming_weeks(content.tree, today))


class Aviso:
    """Everything a request or job needs, made lazily so that nothing connects at import or startup."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._bootstrap_lock = threading.Lock()

    @cached_property
    def redis_url(self) -> str:
        """REDIS_URL, or the embedded server's (started on first use)."""
        return self.settings.redis_url or embedded_redis.ensure_running(self.settings.data_dir)

    @cached_property
    def connection(self) -> redis.Redis:
        """The shared Redis connection pool."""
        return self._closed_with_me(redis.Redis.from_url(self.redis_url, health_check_interval=30))

    @cached_property
    def webhook_connection(self) -> redis.Redis:
        """The families' Redis connections: they give up within a fraction of a second and never retry,
        so a dead or frozen Redis leaves time to answer from memory."""
        return self._closed_with_me(redis.Redis.from_url(
            self.redis_url, health_check_interval=30, socket_connect_timeout=outage.CONNECT_TIMEOUT_SECONDS,
            socket_timeout=outage.READ_TIMEOUT_SECONDS, retry=Retry(NoBackoff(), 0)))

    def _closed_with_me(self, client: redis.Redis) -> redis.Redis:
        """Close the client's sockets when these services are discarded (an app built and dropped, as the
        tests do by the hundred), instead of leaving them to the garbage collector's warnings."""
        weakref.finalize(self, client.connection_pool.disconnect)
        return client

    @cached_property
    def outage(self) -> outage.Outage:
        """Whether Redis answered this process lately."""
        return outage.Outage()

    @cached_property
    def keyring(self) -> Keyring:
        """Keys for contact hashing and encryption."""
        return Keyring(self.settings.secret_key, self.settings.encryption_keys)

    @cached_property
    def request_validator(self) -> RequestValidator:
        """Checks X-Twilio-Signature with TWILIO_AUTH_TOKEN."""
        return RequestValidator(self.settings.twilio_auth_token or "")

    @cached_property
    def content(self) -> ContentStore:
        """Published content versions."""
        return ContentStore(self.connection, serve_drafts=self.settings.serve_draft_languages)

    @cached_property
    def conversations(self) -> Conversations:
        """The inbound-message service."""
        policy = Policy(carrier_answers_sms_keywords=self.settings.advanced_opt_out)
        ttl = self.settings.contact_ttl_days * 24 * 3600
        return Conversations(self.webhook_connection, self.keyring, self.content, policy, ttl, self.alert_facts)

    @cached_property
    def broadcasts(self) -> BroadcastStore:
        """Broadcasts and their outcomes."""
        return BroadcastStore(self.connection)

    @cached_property
    def roster(self) -> Roster:
        """Staff who may send or approve."""
        return Roster(self.connection, self.keyring)

    @cached_property
    def signin(self) -> SignIn:
        """Staff sign-in codes and their limits."""
        return SignIn(self.connection, self.keyring, self.settings.signin_failure_budget)

    @cached_property
    def audit(self) -> AuditLog:
        """Who did what."""
        return AuditLog(self.connection)

    def active_content(self) -> Content:
        """The content every process answers with now (published on first use if need be)."""
        self.ensure_content()
        return self.content.active()

    def answer(self, message: InboundMessage, now: datetime) -> str:
        """The TwiML for an inbound message: through Redis when it answers in time, else from memory."""
        if self.outage.worth_trying():
            try:
                twiml = self._answer_through_redis(message, now)
            except outage.REDIS_ERRORS as error:
                self.outage.failed(error)
            else:
                self.outage.recovered()
                return twiml
        self.outage.answered_from_memory()
        return self.conversations.answer_offline(message, now, self.content_in_memory())

    def _answer_through_redis(self, message: InboundMessage, now: datetime) -> str:
        try:
            return self.conversations.answer(message, now)
        except ContentUnavailable:
            self.ensure_content()
            return self.conversations.answer(message, now)

    def content_in_memory(self) -> Content:
        """The content this process last answered with, else the shipped content folder's."""
        return self.conversations.last_content or self._content_from_files

    @cached_property
    def _content_from_files(self) -> Content:
        """The content folder as it would be published, read once (Redis was unreachable before any message)."""
        return self.shipped_content()

    def desk(self) -> Desk:
        """Broadcast work for staff, with the active content."""
        return Desk(self.broadcasts, self.active_content(), self.settings, self.audit)

    def alert_facts(self, code: str) -> AlertFacts | None:
        """What VERIFY may say about the alert with this code: an alert that started going out is genuine,
        also when it was cancelled or failed part way (some families got it)."""
        broadcast = self.broadcasts.find_by_code(code)
        if broadcast is None or broadcast.started_at is None:
            return None
        corrections = self.broadcasts.corrections_of(broadcast.id)
        corrects = ""
        if broadcast.corrects:
            try:
                corrects = self.broadcasts.get(broadcast.corrects).code
            except BroadcastNotFound:
                corrects = "?"  # the original's record expired; the correction is still genuine
        return AlertFacts(broadcast.code, broadcast.kind, broadcast.schools, broadcast.started_at,
                          broadcast.verified_by or "", corrections[-1].code if corrections else "",
                          said=dict(broadcast.bodies), fallback_language=broadcast.fallback_language, corrects=corrects)

    @cached_property
    def sender(self) -> Sender:
        """Twilio when an account is configured, else the outbox."""
        if self.settings.twilio_sending_configured:
            return TwilioSender(self.settings)
        return OutboxSender(self.connection, self.keyring)

    def shipped_content(self, today: date | None = None) -> Content:
        """The content folder as it would be published now (see shipped_content)."""
        return shipped_content(self.settings, today)

    def ensure_content(self) -> str:
        """Publish the shipped content on a first boot, when Redis has no active version yet."""
        with self._bootstrap_lock:
            active = self.content.active_version()
            if active:
                return active
            # Several processes may boot at once: the check-and-publish is idempotent per version.
            problems = check(self.settings.content_dir)
            if problems.errors:
                raise RuntimeError(f"shipped content is invalid: {problems.errors[0]}")
            version = self.content.publish(self.shipped_content(), by="first boot")
            log.info("published content version %s on first boot", version)
            return version


def init_app(app: Flask, settings: Settings) -> None:
    """Attach Aviso's services to an app."""
    app.extensions[EXTENSION] = Aviso(settings)


def current() -> Aviso:
    """The services of the app handling this request or command."""
    return current_app.extensions[EXTENSION]


def current_from(app: Flask) -> Aviso:
    """The services of a given app (outside a request)."""
    return app.extensions[EXTENSION]


_job_services: Aviso | None = None


def for_job() -> Aviso:
    """The services for an RQ job: the worker's app context, else an app built from the environment once."""
    global _job_services
    try:
        return current()
    except RuntimeError:  # a plain `rq worker` has no app context: the services need none, only settings
        if _job_services is None:
            _job_services = Aviso(load_settings())
        return _job_services
