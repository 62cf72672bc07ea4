"""Reminders and workshop notices: RQ jobs that send each registrant a message exactly once.

One scheduled job per workshop and reminder offset (id ws-rem-<workshop>-<offset>, run by RQ's
scheduler at the due time) sends to every seat holder who signed up before that time. Jobs take ids,
reload the active content and the seats when they run, and tolerate a changed world: a workshop that
is gone, moved (the due time no longer matches), or already started sends nothing; a contact that
freed its seat, texted STOP or FORGET gets nothing. Each message is claimed in the registration's
record with a Lua script before it is sent and marked sent after, so running a job twice (a retry, a
worker killed mid-job, a second worker) sends nothing twice; a claim left by a dead worker is checked
against the sender (find_sent) before anything is sent again.

Offsets: "1d" is the same local wall-clock time N calendar days before (a Saturday 6 pm reminder for
a Sunday 6 pm workshop, even across a daylight-saving change); "2h" and "30m" are real hours and
minutes before. A wall-clock time that does not exist (the spring-forward hour) moves an hour later.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import redis

from bot.content import encoding, segments
from bot.content.model import Content, Workshop
from bot.conversation.workshops import describe
from bot.people import audience_counts, contacts
from bot.people.identity import SMS, WHATSAPP, Address, log_name
from bot.store import keys
from bot.twilio.ratelimit import RateLimiter
from bot.twilio.senders import RejectedSendError, RetryableSendError, SendError, UncertainSendError
from bot.workshops import registrations
from bot.workshops.schedule import Offset

log = logging.getLogger(__name__)

LEASE_MS = 30_000  # a claim older than this is presumed abandoned; > the Twilio call timeout (10 s)
EARLY_SLACK = timedelta(minutes=1)  # a job that runs this much before its due time sends nothing
CONCURRENCY = 8  # messages in flight per job (a Twilio call takes 100-300 ms)
OPT_OUT = 21610
# Outcomes of one delivery: sent now, or why not. RETRY ones make the job raise, so RQ runs it again.
SENT, DONE, RETRY, BUSY, TOO_LATE = "sent", "done", "retry", "busy", "too_late"
INCOMPLETE = (RETRY, BUSY)


class Incomplete(Exception):
    """Some messages of a job could not be settled yet (Twilio busy, a claim in flight); RQ retries."""


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def limiter_for(aviso) -> RateLimiter:
    """The send-rate cap shared with broadcasts (AVISO_RATE_LIMIT_SEGMENTS_PER_SECOND; none when 0)."""
    cap = aviso.settings.rate_limit_segments_per_second or None
    return RateLimiter(aviso.connection, cap)


def deliver(aviso, content: Content, workshop: Workshop, contact_key: str, marker: str,
            text_key: str, *, need: str = "seat", signed_up_before_ms: int | None = None,
            limiter: RateLimiter | None = None, send: bool = True) -> str:
    """Send one registrant one message, exactly once per (registration, marker); the outcome.

    Outcomes: sent, done (sent before), retry (nothing sent, or unsure: try again later), busy
    (another worker holds the claim), failed:<code>, or why nothing is sent: not_registered,
    signed_up_later, gone, opted_out, too_late. With send=False (too late to send) a claim left by a
    dead worker is only settled: marked sent if Twilio has the message, else released.
    """
    connection = aviso.connection
    token, claimed_ms = uuid.uuid4().hex[:8], int(time.time() * 1000)
    reg_key = registrations.registration_key(workshop.id, contact_key)
    answer = registrations.CLAIM(
        connection,
        [registrations.seats_key(workshop.id), registrations.waitlist_key(workshop.id),
         contacts.contact_redis_key(contact_key), reg_key],
        [contact_key, marker, need, claimed_ms, LEASE_MS, token,
         "" if signed_up_before_ms is None else signed_up_before_ms, registrations.keep_until(workshop)],
    )
    state = answer[0].decode()
    if state not in ("claimed", "reclaimed"):
        return state
    claim = f"sending:{claimed_ms}:{token}"

    def settle(value: str) -> None:
        registrations.SETTLE(connection, [reg_key], [marker, claim, value])

    number = contacts.number_of(connection, aviso.keyring, contact_key)
    if number is None:
        settle("")
        return "gone"
    lang = answer[1].decode() if answer[1] else ""
    lang = lang if lang in content.languages else content.default_language
    address = Address(answer[2].decode() if answer[2] else SMS, number)
    written = content.text(lang, text_key, **describe(content, lang, workshop))
    body = encoding.for_channel(written, address.channel, lang)  # find_sent compares this same body
    try:
        if state == "reclaimed":  # a worker died mid-send: did that message leave?
            since = datetime.fromtimestamp(int(answer[3]) / 1000, UTC)
            sid = aviso.sender.find_sent(address, since, body)
            if sid:
                settle(f"sent:{sid}")
                log.info("workshop %s %s contact=%s: found sent before", workshop.id, marker, log_name(contact_key))
                return DONE
        if not send:
            settle("")
            return TOO_LATE
        if state == "reclaimed":
            log.info("workshop %s %s contact=%s: a dead claim, not sent before: sending", workshop.id, marker,
                     log_name(contact_key))
        if limiter is not None and limiter.limited:
            cost = 1 if address.channel == WHATSAPP else segments.count(body).segments
            limiter.acquire(aviso.sender.origin(address), cost)
        sent = aviso.sender.send(address, body, content_version=content.version)
    except RetryableSendError:
        settle("")  # nothing left: release the claim for the retry
        return RETRY
    except UncertainSendError:
        return RETRY  # keep the claim: the retry reconciles with find_sent before sending again
    except RejectedSendError as exc:
        settle(f"failed:{exc.code}")
        if exc.code == OPT_OUT:
            connection.eval(audience_counts.MARK_OPTED_OUT, 1, contacts.contact_redis_key(contact_key), contact_key)
        log.info("workshop %s %s contact=%s: refused (%s)", workshop.id, marker, log_name(contact_key), exc.code)
        return f"failed:{exc.code}"
    except SendError:
        settle("")
        return RETRY
    settle(f"sent:{sent.sid}")
    log.info("workshop %s %s contact=%s: sent content=%s", workshop.id, marker, log_name(contact_key),
             content.version)
    return SENT


def _deliver_all(aviso, content, workshop, contact_keys, marker_of, text_key, *, need="seat",
                 signed_up_before_ms=None, after=None, send=True) -> Counter:
    """Deliver to many registrants, CONCURRENCY at a time; after(contact, outcome) runs for each."""
    limiter = limiter_for(aviso)

    def one(contact_key: str) -> str:
        outcome = deliver(aviso, content, workshop, contact_key, marker_of(contact_key), text_key, need=need,
                          signed_up_before_ms=signed_up_before_ms, limiter=limiter, send=send)
        if after is not None:
            after(contact_key, outcome)
        return outcome

    if len(contact_keys) <= 1:
        return Counter(map(one, contact_keys))
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        return Counter(pool.map(one, contact_keys))


def _summary(what: str, outcomes: Counter) -> str:
    text = f"{what}: " + (", ".join(f"{n} {k}" for k, n in sorted(outcomes.items())) or "nobody")
    if any(outcomes.get(k) for k in INCOMPLETE):
        raise Incomplete(text)
    return text


def send_reminders(aviso, workshop_id: str, offset: str, due_epoch: int, now: datetime | None = None) -> str:
    """One reminder to every seat holder who signed up before it was due; safe to run again."""
    now = _now(now)
    content = aviso.content.active()
    workshop = content.workshop(workshop_id) if content else None
    if workshop is None:
        return "workshop gone: nothing sent"
    chosen = Offset.parse(offset)
    due = chosen.due(workshop.starts)
    if int(due.timestamp()) != due_epoch:
        return "workshop moved: this reminder was rescheduled"
    if now < due - EARLY_SLACK:
        return "not due yet"
    due_ms, marker = due_epoch * 1000, f"rem:{offset}:{due_epoch}"
    holders = [k.decode() for k in aviso.connection.zrangebyscore(
        registrations.seats_key(workshop_id), "-inf", f"({due_ms}")]
    if now >= workshop.starts or now > due + chosen.late_limit:
        unsettled = _unsettled(aviso.connection, workshop_id, holders, marker)
        if not unsettled:
            return "too late: nothing sent"
        outcomes = _deliver_all(aviso, content, workshop, unsettled, lambda _: marker, chosen.text_key,
                                signed_up_before_ms=due_ms, send=False)
        return _summary(f"too late: nothing sent; claims settled for {workshop_id}", outcomes)
    outcomes = _deliver_all(aviso, content, workshop, holders, lambda _: marker, chosen.text_key,
                            signed_up_before_ms=due_ms)
    return _summary(f"reminder {offset} for {workshop_id}", outcomes)


def _unsettled(connection: redis.Redis, workshop_id: str, contact_keys: list[str], marker: str) -> list[str]:
    """The contacts whose message for this marker is claimed but not settled (a worker died or gave up)."""
    pipe = connection.pipeline(transaction=False)
    for contact_key in contact_keys:
        pipe.hget(registrations.registration_key(workshop_id, contact_key), marker)
    return [k for k, v in zip(contact_keys, pipe.execute(), strict=True) if v and v.startswith(b"sending:")]


def send_promotions(aviso, workshop_id: str, now: datetime | None = None) -> str:
    """Tell each contact promoted from the waitlist that the seat is theirs; safe to run again."""
    now = _now(now)
    connection = aviso.connection
    promoted_key = keys.WORKSHOP_PROMOTED.format(id=workshop_id)
    waiting = [k.decode() for k in connection.smembers(promoted_key)]
    if not waiting:
        return "nobody to tell"
    content = aviso.content.active()
    workshop = content.workshop(workshop_id) if content else None
    if workshop is None or now >= workshop.starts:
        connection.srem(promoted_key, *waiting)
        return "workshop gone or started: nothing sent"
    pipe = connection.pipeline(transaction=False)
    for contact_key in waiting:
        pipe.zscore(registrations.seats_key(workshop_id), contact_key)
    seat_since = {k: int(s) for k, s in zip(waiting, pipe.execute(), strict=True) if s is not None}

    def settled(contact_key: str, outcome: str) -> None:
        if outcome not in INCOMPLETE:
            connection.srem(promoted_key, contact_key)

    outcomes = _deliver_all(aviso, content, workshop, waiting, lambda k: f"promoted:{seat_since.get(k, 0)}",
                            "workshops.promoted", after=settled)
    return _summary(f"promotions for {workshop_id}", outcomes)


def send_notices(aviso, workshop_id: str, kind: str, version: str, tag: str, now: datetime | None = None) -> str:
    """A change ("changed") or cancellation ("cancelled") notice to every registrant, once per tag.

    version is the content that describes the workshop (the new one for a change, the last one that
    had it for a cancellation). A cancellation also ends each registration once its notice is settled.
    """
    now = _now(now)
    connection = aviso.connection
    content = aviso.content.get(version)
    workshop = content.workshop(workshop_id)
    if workshop is None:
        return f"workshop {workshop_id} is not in content {version}"
    ttl = aviso.settings.contact_ttl_days * 24 * 3600
    everyone = registrations.registrants(connection, workshop_id, waitlist=True)
    if kind == "changed" and aviso.content.active_version() != version:
        return "superseded by a newer content version"
    if now >= workshop.starts:
        if kind == "cancelled":
            registrations.close(connection, workshop_id, ttl)
        return "too late: nothing sent"

    def settled(contact_key: str, outcome: str) -> None:
        if kind == "cancelled" and outcome not in INCOMPLETE:
            registrations.drop(connection, workshop_id, contact_key, ttl)

    outcomes = _deliver_all(aviso, content, workshop, everyone, lambda _: f"{kind}:{tag}", f"workshops.{kind}",
                            need="any", after=settled)
    if kind == "cancelled" and not any(outcomes.get(k) for k in INCOMPLETE):
        registrations.close(connection, workshop_id, ttl)
    return _summary(f"{kind} notices for {workshop_id}", outcomes)


def close_workshop(aviso, workshop_id: str, now: datetime | None = None) -> str:
    """Once a workshop is over (and its retention passed), delete its registrations."""
    now = _now(now)
    content = aviso.content.active()
    workshop = content.workshop(workshop_id) if content else None
    if workshop is not None and now.timestamp() < registrations.keep_until(workshop):
        return "not over yet (moved?)"
    removed = registrations.close(aviso.connection, workshop_id, aviso.settings.contact_ttl_days * 24 * 3600)
    return f"closed {workshop_id}: {removed} registrations deleted"


