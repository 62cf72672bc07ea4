"""In-memory state of bot.twilio.fake: configuration, fault injection, recording and statistics."""
import email.utils
import functools
import hashlib
import random
import re
import threading
import time
import uuid
from collections import Counter, deque
from datetime import UTC, date, datetime

DEFAULT_ACCOUNT_SID = "AC" + "0" * 31 + "1"  # credentials the fake accepts unless told otherwise
DEFAULT_AUTH_TOKEN = "f" * 32
API_VERSION = "2010-04-01"
ERROR_DOCS = "https://www.twilio.com/docs/errors/"

# Run-time settings (FakeTwilio(**kw), .configure(**kw), POST /_fake/config) and their defaults.
DEFAULTS = {
    "latency_ms": 0.0,  # delay before every Twilio API answer
    "jitter_ms": 0.0,  # plus a uniform random 0..jitter_ms
    "recipient_errors": {},  # To number -> error code answered synchronously (21610, 21211, 63016...)
    "delivery_failures": {},  # To number -> code (final status "undelivered") or ["failed", code]
    "error_429_rate": 0.0,  # fraction of message creates answered 429 / 20429
    "error_429_count": 0,  # the next N message creates are answered 429 / 20429
    "error_5xx_rate": 0.0,  # fraction of message creates answered error_5xx_status
    "error_5xx_count": 0,  # the next N message creates are answered error_5xx_status
    "error_5xx_status": 500,  # 500 (code 20500) or 503 (code 20503)
    "hang_rate": 0.0,  # fraction of message creates whose answer is delayed by hang_seconds
    "hang_count": 0,  # the next N message creates are delayed by hang_seconds
    "hang_seconds": 30.0,  # long enough to trip a client timeout
    "hang_accepts": True,  # a hung create is still accepted (True) or answered 503 unprocessed (False)
    "list_delay_ms": 0.0,  # an accepted message shows in Messages.json lists only this long after (list lag)
    "max_segments_per_second": None,  # accepted segments allowed in any 1 s window, else 429 / 20429
    # REST API requests the account may have open at once; one arriving beyond it is answered 429 / 20429
    # unprocessed, as Twilio limits an account's concurrent API requests (None: no limit).
    "max_concurrent_requests": None,
    "status_callbacks": False,  # POST signed status callbacks to each message's StatusCallback
    "sent_delay_ms": 20.0,  # accept -> "sent" (or "failed"): time in Twilio's queue (past ValidityPeriod: 30036)
    "delivered_delay_ms": 30.0,  # "sent" -> "delivered" (or "undelivered")
    "account_sid": DEFAULT_ACCOUNT_SID,
    "auth_token": DEFAULT_AUTH_TOKEN,
}

# Error code -> (HTTP status, message as Twilio words it).
ERRORS = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource {path} was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "An internal server error has occurred"),
    20503: (503, "Service Unavailable"),
    21211: (400, "The 'To' number {to} is not a valid phone number."),
    21421: (400, "PhoneNumber is required."),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21624: (400, "Validity period can only be set to integers between 1 and 36,000 seconds."),
    63016: (400, "Failed to send freeform message because you are outside the allowed window. "
                 "If you are using WhatsApp, please use a Message Template."),
}

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("\f^{}\\[~]|€")  # each costs two septets (escape + char)
# A To Twilio accepts: a number, on WhatsApp too, or a WhatsApp business-scoped user id (whatsapp:US.1…,
# no "+"), the way Twilio addresses WhatsApp users who hide their number behind a username.
RECIPIENT = re.compile(r"(whatsapp:)?\+[1-9][0-9]{1,14}|whatsapp:[A-Z]{2}\.[A-Za-z0-9]{1,128}")


@functools.lru_cache(maxsize=256)
def num_segments(text):
    """SMS segments for text: GSM-7 160/153 septets, else UCS-2 70/67 UTF-16 units, no split chars."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text):
        costs, single, part = [2 if c in GSM7_EXTENSION else 1 for c in text], 160, 153
    else:
        costs, single, part = [len(c.encode("utf-16-le")) // 2 for c in text], 70, 67
    if sum(costs) <= single:
        return 1
    segments, used = 1, 0
    for cost in costs:
        if used + cost > part:
            segments, used = segments + 1, 0
        used += cost
    return segments


def error_body(code, **fmt):
    """Twilio's JSON error body for code (message formatted with fmt)."""
    status, message = ERRORS.get(code, (400, f"Twilio error {code}"))
    return {"code": code, "message": message.format(**fmt), "more_info": f"{ERROR_DOCS}{code}",
            "status": status}


def new_sid(prefix):
    """A random Twilio-style sid: prefix + 32 hex digits."""
    return prefix + uuid.uuid4().hex


def stable_sid(prefix, key):
    """A Twilio-style sid derived from key, stable across runs."""
    return prefix + hashlib.md5(key.encode()).hexdigest()


def rfc2822(ts):
    """Epoch seconds as Twilio's RFC 2822 date ('Mon, 01 Jan 2024 00:00:00 +0000')."""
    return _rfc2822_second(int(ts))


@functools.lru_cache(maxsize=8)
def _rfc2822_second(second):
    # Thousands of messages a second share their dates: format each second once.
    return email.utils.format_datetime(datetime.fromtimestamp(second, UTC))


def iso8601(ts):
    """Epoch seconds as the ISO 8601 date of Twilio's v1 APIs."""
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_when(value):
    """A DateSent filter value: date for 'YYYY-MM-DD', aware datetime otherwise."""
    if len(value) == 10:
        return date.fromisoformat(value)
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def date_matches(ts, op, when):
    """Whether a message sent at ts passes DateSent{op}when (op '>' on-or-after, '<' on-or-before)."""
    sent = datetime.fromtimestamp(int(ts), UTC)
    left = sent.date() if isinstance(when, date) and not isinstance(when, datetime) else sent
    return {">": left >= when, "<": left <= when, "": left == when}[op]


def max_in_window(events, window=1.0):
    """Largest sum of weights of (ts, weight) events within any span shorter than window seconds."""
    events = sorted(events)
    best = total = start = 0
    for ts, weight in events:
        total += weight
        while events[start][0] <= ts - window:
            total -= events[start][1]
            start += 1
        best = max(best, total)
    return best


def lookup(table, to):
    """table entry for a To number, trying it as given and without 'whatsapp:'."""
    if to in table:
        return table[to]
    return table.get(to.removeprefix("whatsapp:"))


class FakeState:
    """Thread-safe configuration, recordings and message store shared by the server and its owner."""

    def __init__(self, phone_numbers=(), messaging_services=(), seed=None, **config):
        """Start from DEFAULTS updated with config; register numbers (E.164) and services (MG sids)."""
        self.lock = threading.Lock()
        self.config = {k: (v.copy() if isinstance(v, dict) else v) for k, v in DEFAULTS.items()}
        self.configure(**config)
        self.rng = random.Random(seed)
        self.numbers, self.services, self.contents = {}, {}, {}  # contents: the Content API's templates
        for number in phone_numbers:
            self.add_number(number)
        for sid in messaging_services:
            self.add_service(sid)
        self.reset()

    def configure(self, **kw):
        """Change settings; unknown names raise TypeError."""
        unknown = set(kw) - set(DEFAULTS)
        if unknown:
            raise TypeError(f"unknown fake_twilio settings: {sorted(unknown)}")
        with self.lock:
            self.config.update(kw)
            return dict(self.config)

    def reset(self):
        """Forget recorded requests, messages and callbacks (settings and resources are kept)."""
        with self.lock:
            self.records, self.messages, self.callbacks = [], [], []
            self.window, self.window_segments = deque(), 0
            self.open_requests = self.most_open_requests = 0

    def latency(self):
        """Seconds to wait before answering this request."""
        cfg = self.config
        return (cfg["latency_ms"] + self.rng.uniform(0, cfg["jitter_ms"] or 0)) / 1000.0

    def take_fault(self):
        """Draw the injected fault for one message create: None, 'hang', '5xx' or '429'."""
        with self.lock:
            cfg = self.config
            for kind in ("hang", "5xx", "429"):
                key = f"{kind}_count" if kind == "hang" else f"error_{kind}_count"
                if cfg[key] > 0:
                    cfg[key] -= 1
                    return kind
            draw, edge = self.rng.random(), 0.0
            for kind, key in (("hang", "hang_rate"), ("5xx", "error_5xx_rate"), ("429", "error_429_rate")):
                edge += cfg[key]
                if draw < edge:
                    return kind
            return None

    def open_request(self):
        """A request arrives: True when it may be processed, False when the account has too many open."""
        with self.lock:
            cap = self.config["max_concurrent_requests"]
            if cap is not None and self.open_requests >= cap:
                return False
            self.open_requests += 1
            self.most_open_requests = max(self.most_open_requests, self.open_requests)
            return True

    def close_request(self):
        """A request that open_request() let in has been answered."""
        with self.lock:
            self.open_requests -= 1

    def record(self, request, params, auth_ok, status, body, segments=None, **extra):
        """Append one request to the log."""
        entry = {"method": request.method, "path": request.path, "params": params,
                 "auth_ok": auth_ok, "status": status,
                 "error_code": body.get("code") if status >= 400 else None,
                 "timestamp": time.time(), "num_segments": segments, **extra}
        with self.lock:
            self.records.append(entry)

    def admit(self, segments, now):
        """Take segments from the per-second budget at time now; False when over the cap."""
        cap = self.config["max_segments_per_second"]
        while self.window and self.window[0][0] <= now - 1.0:
            self.window_segments -= self.window.popleft()[1]
        if cap is not None and self.window and self.window_segments + segments > cap:
            return False
        self.window.append((now, segments))
        self.window_segments += segments
        return True

    def stats(self):
        """Counts per status and error code, accepted totals and busiest 1 s windows."""
        with self.lock:
            records, messages = list(self.records), list(self.messages)
        return {
            "requests": len(records),
            "by_status": dict(Counter(str(r["status"]) for r in records)),
            "by_error_code": dict(Counter(str(r["error_code"]) for r in records if r["error_code"])),
            "messages_accepted": len(messages),
            "segments_accepted": sum(m["segments"] for m in messages),
            "max_segments_in_any_1s_window": max_in_window((m["ts"], m["segments"]) for m in messages),
            "max_requests_in_any_1s_window": max_in_window((r["timestamp"], 1) for r in records),
            "callbacks_sent": len(self.callbacks),
            "most_concurrent_requests": self.most_open_requests,
        }

    def duplicates(self):
        """(to, body or content) pairs accepted more than once, with their counts."""
        with self.lock:
            counts = Counter((m["json"]["to"], m["key"]) for m in self.messages)
        return {pair: n for pair, n in counts.items() if n > 1}

    def create_message(self, form, now):
        """Validate and accept one message create: (status, body, segments, stored message or None)."""
        to, from_, service = form.get("To", ""), form.get("From", ""), form.get("MessagingServiceSid", "")
        body, content = form.get("Body", ""), form.get("ContentSid", "")
        segments = num_segments(body) if body else 1
        validity = form.get("ValidityPeriod", "")
        code = (21604 if not to else 21603 if not (from_ or service)
                else 21602 if not (body or content or form.get("MediaUrl"))
                else 21211 if not RECIPIENT.fullmatch(to)
                else 21624 if validity and not (validity.isdigit() and 1 <= int(validity) <= 36_000) else None)
        with self.lock:
            if code is None:
                code = lookup(self.config["recipient_errors"], to)
                if code == 63016 and (content or not to.startswith("whatsapp:")):
                    code = None
            if code is None and not self.admit(segments, now):
                code = 20429
            if code is not None:
                return ERRORS.get(code, (400,))[0], error_body(code, to=to), segments, None
            account, sid = self.config["account_sid"], new_sid("SM")
            uri = f"/{API_VERSION}/Accounts/{account}/Messages/{sid}"
            message = {
                "account_sid": account, "api_version": API_VERSION, "body": body,
                "date_created": rfc2822(now), "date_sent": None, "date_updated": rfc2822(now),
                "direction": "outbound-api", "error_code": None, "error_message": None,
                "from": from_ or None, "messaging_service_sid": service or None,
                "num_media": "1" if form.get("MediaUrl") else "0", "num_segments": str(segments),
                "price": None, "price_unit": "USD", "sid": sid,
                "status": "accepted" if service else "queued",
                "subresource_uris": {"media": uri + "/Media.json"}, "to": to, "uri": uri + ".json",
            }
            variables = form.get("ContentVariables", "")
            stored = {"json": message, "ts": now, "segments": segments,
                      "key": body or (f"{content} {variables}" if variables else content),
                      "callback": form.get("StatusCallback"),
                      "fate": lookup(self.config["delivery_failures"], to)}
            # Queued past its ValidityPeriod (sent_delay_ms is the time in Twilio's queue): dropped, never sent.
            if validity and self.config["sent_delay_ms"] / 1000.0 > int(validity):
                stored["fate"] = ["failed", 30036]
            self.messages.append(stored)
        return 201, dict(message), segments, stored

    def advance(self, stored, status, error_code=None):
        """Move a stored message to status (sent, delivered, undelivered, failed)."""
        now = time.time()
        with self.lock:
            message = stored["json"]
            message.update(status=status, date_updated=rfc2822(now), error_code=error_code)
            if status == "sent":
                message["date_sent"] = rfc2822(now)

    def list_messages(self, query):
        """Accepted messages matching Twilio's To/From/DateSent filters, newest first."""
        filters = [(op, parse_when(query[f"DateSent{op}"]))
                   for op in (">", "<", "") if query.get(f"DateSent{op}")]
        listed_before = time.time() - self.config["list_delay_ms"] / 1000.0
        with self.lock:
            found = [m for m in self.messages
                     if m["ts"] <= listed_before
                     and query.get("To", m["json"]["to"]) == m["json"]["to"]
                     and query.get("From", m["json"]["from"]) == m["json"]["from"]
                     and all(date_matches(m["ts"], op, when) for op, when in filters)]
            return [dict(m["json"]) for m in reversed(found)]

    def find_message(self, sid):
        """The accepted message with this sid, or None."""
        with self.lock:
            return next((dict(m["json"]) for m in self.messages if m["json"]["sid"] == sid), None)

    def add_number(self, number, **fields):
        """Register an IncomingPhoneNumber and return its JSON."""
        account, sid, now = self.config["account_sid"], stable_sid("PN", number), rfc2822(time.time())
        number_json = {
            "account_sid": account, "address_requirements": "none", "address_sid": None,
            "api_version": API_VERSION, "beta": False, "bundle_sid": None,
            "capabilities": {"fax": False, "mms": True, "sms": True, "voice": True},
            "date_created": now, "date_updated": now, "emergency_address_sid": None,
            "emergency_status": "Inactive", "friendly_name": number, "identity_sid": None,
            "origin": "twilio", "phone_number": number, "sid": sid, "sms_application_sid": "",
            "sms_fallback_method": "POST", "sms_fallback_url": "", "sms_method": "POST",
            "sms_url": "", "status": "in-use", "status_callback": "", "status_callback_method": "POST",
            "trunk_sid": None, "uri": f"/{API_VERSION}/Accounts/{account}/IncomingPhoneNumbers/{sid}.json",
            "voice_application_sid": "", "voice_caller_id_lookup": False, "voice_fallback_method": "POST",
            "voice_fallback_url": "", "voice_method": "POST", "voice_url": "", **fields,
        }
        with self.lock:
            self.numbers[sid] = number_json
        return dict(number_json)

    def add_service(self, sid, **fields):
        """Register a Messaging Service and return its JSON."""
        url, now = f"https://messaging.twilio.com/v1/Services/{sid}", iso8601(time.time())
        service_json = {
            "account_sid": self.config["account_sid"], "area_code_geomatch": True, "date_created": now,
            "date_updated": now, "fallback_method": "POST", "fallback_to_long_code": False,
            "fallback_url": None, "friendly_name": sid, "inbound_method": "POST",
            "inbound_request_url": None, "links": {"phone_numbers": url + "/PhoneNumbers"},
            "mms_converter": True, "scan_message_content": "inherit", "sid": sid,
            "smart_encoding": True, "status_callback": None, "sticky_sender": True,
            "synchronous_validation": True, "url": url, "usecase": "undeclared",
            "use_inbound_webhook_on_number": False, "validity_period": 14400, **fields,
        }
        with self.lock:
            self.services[sid] = service_json
        return dict(service_json)

    def update(self, resource, form, stamp):
        """Apply CamelCase form fields to a resource's snake_case keys; return the new JSON."""
        with self.lock:
            for name, value in form.items():
                key = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
                if key in resource:
                    resource[key] = value
            resource["date_updated"] = stamp(time.time())
            return dict(resource)
