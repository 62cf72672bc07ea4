#!/usr/bin/env python3
"""Webhook fuzzer: malformed, odd and hostile Twilio requests against a private Aviso on 127.0.0.1.

    .venv/bin/python scripts/fuzz_webhook.py [--count 3000] [--seconds 300] [--seed 13]

It starts its own Aviso (gunicorn with bot/gunicorn_conf.py, AVISO_ENV=production, signatures checked, its
own embedded Redis in a temporary folder, bound to 127.0.0.1 only: nothing leaves the machine), then
sends at most --count requests for at most --seconds to /twilio/messages, /twilio/fallback,
/twilio/status and the voice line (/twilio/voice, /twilio/voice/menu with a menu state in its query).
Most are signed exactly as Twilio signs (so they reach the parsing and the conversation);
the rest carry a wrong, missing or garbled signature. Each request mutates a valid inbound message:
fields dropped, repeated, emptied, made huge, given Unicode digits ("²", "٣", "１"), control characters,
invalid UTF-8, unknown fields. Prints the requests sent, the answers by status, and every 5xx with the
mutations that caused it (grouped by field); exits 1 when any 5xx was seen, 0 otherwise.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from pathlib import Path

from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PUBLIC_BASE_URL = "https://fuzz.aviso.test"
PATHS = (("/twilio/messages", 55), ("/twilio/fallback", 15), ("/twilio/status", 15), ("/twilio/voice", 5),
         ("/twilio/voice/menu", 10))
# Menu states for the voice line's gather callback (the query Twilio signs): real ones and odd ones.
VOICE_STATES = ["at=language&quiet=0", "at=main&quiet=0&lang=es", "at=rights&quiet=2&lang=en",
                "at=rights.home&quiet=3&lang=es", "at=interpreters&quiet=0", "at=alerts.signup&quiet=1&lang=en",
                "at=main&quiet=0&lang=ko", "at=nowhere&quiet=0&lang=es", "at=main&quiet=9&lang=es",
                "at=main&lang=zh-Hant&quiet=0", "at=MAIN&quiet=0", "at=&quiet=", "lang=es", "at=main&quiet=-1",
                "at=main&at=rights&quiet=0&lang=es", "at=rights.home.x&quiet=0&lang=es"]
DIGITS = ["", "0", "1", "2", "3", "5", "6", "9", "*", "#", "12", "#*0", "a", "٣", " 1", "1" * 40]
BODIES = ["DERECHOS", "RIGHTS", "1", "0", "2", "MENU", "AYUDA", "HELP", "ALERTAS", "ALERTAS Belmont", "Belmont",
          "SALIR", "MIS ALERTAS", "TALLERES", "MIS TALLERES", "VERIFICAR K7P2Q", "VERIFY", "BORRAR", "FORGET",
          "STOP", "START", "ESPAÑOL", "권리", "حقوق", "hola", "agents at my door", ""]
ODD_VALUES = [
    "", " ", "0", "-1", "+1", "1.5", "1e3", "NaN", "²", "٣", "１２", "߂", "Ⅻ", "9" * 40, "\x00", "\x07\x1b[31m",
    "\r\n", "\ufffd", "\uffff", "\u202e", "\u200f", "<Response><Message>x</Message></Response>", "&amp;", "%00",
    "{}", "[]", "null", "true", "whatsapp:", "whatsapp:+", "whatsapp:whatsapp:+12135550123", "+", "+0",
    "+999999999999999999999", "+1213555012３", "tel:+12135550123", "sms:+12135550123", "SM" + "g" * 32,
    "sm" + "a" * 32, "MM" + "0" * 32, "SM" + "0" * 31, "SM" + "0" * 33, "🙂" * 50, "x" * 5000, "é" * 20000,
]
FIELDS = ["CallSid", "Digits", "CallStatus",
          "MessageSid", "SmsMessageSid", "AccountSid", "MessagingServiceSid", "From", "To", "Body", "NumMedia",
          "NumSegments", "OptOutType", "WaId", "ProfileName", "MediaUrl0", "MediaContentType0", "SmsStatus",
          "MessageStatus", "ErrorCode", "ErrorUrl", "ApiVersion", "ButtonText", "Latitude", "Longitude"]
REQUIRED = ["MessageSid", "From", "To", "Body"]
EXCEPTION_LINE = re.compile(r"^[A-Za-z_.]*(Error|Exception)\b.*: ")


def log(message: str) -> None:
    print(f"fuzz: {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Fuzzer:
    """Makes one mutated, signed request at a time from a seeded random generator (reproducible)."""

    def __init__(self, seed: int, auth_token: str, account_sid: str):
        self.rng = random.Random(seed)
        self.validator = RequestValidator(auth_token)
        self.account_sid = account_sid
        self.sids: list[str] = []

    def valid(self, path: str) -> dict[str, list[str]]:
        rng = self.rng
        sid = rng.choice(self.sids) if self.sids and rng.random() < 0.05 else "SM" + secrets.token_hex(16)
        self.sids.append(sid)
        number = f"+1213555{rng.randrange(10000):04d}"
        whatsapp = rng.random() < 0.3
        params = {"MessageSid": sid, "AccountSid": self.account_sid,
                  "From": f"whatsapp:{number}" if whatsapp else number,
                  "To": "whatsapp:+12135550100" if whatsapp else "+12135550100",
                  "Body": rng.choice(BODIES), "NumMedia": "0", "NumSegments": "1", "ApiVersion": "2010-04-01"}
        if whatsapp:
            params.update(WaId=number.lstrip("+"), ProfileName="Fuzz")
        if path.startswith("/twilio/voice"):
            params = {"CallSid": "CA" + secrets.token_hex(16), "AccountSid": self.account_sid,
                      "From": rng.choice([number, "Anonymous", "+266696687", "client:fuzz"]),
                      "To": "+12135550100", "CallStatus": "in-progress", "ApiVersion": "2010-04-01"}
            if path.endswith("/menu"):
                params["Digits"] = rng.choice(DIGITS)
        if path == "/twilio/status":
            params = {"MessageSid": sid, "MessageStatus": rng.choice(["sent", "delivered", "failed", "read"]),
                      "AccountSid": self.account_sid}
        return {name: [value] for name, value in params.items()}

    def mutate(self, params: dict[str, list[str]]) -> list[str]:
        """Apply 1-3 mutations; return what was done, as "field:kind"."""
        rng, done = self.rng, []
        for _ in range(rng.randint(1, 3)):
            kind = rng.choice(["odd", "odd", "odd", "drop", "repeat", "unicode", "huge", "unknown", "media"])
            name = rng.choice(FIELDS if kind != "drop" else REQUIRED + ["NumMedia", "AccountSid"])
            if kind == "odd":
                params[name] = [rng.choice(ODD_VALUES)]
            elif kind == "drop":
                params.pop(name, None)
            elif kind == "repeat":
                params[name] = params.get(name, ["1"]) + [rng.choice(ODD_VALUES + BODIES)]
            elif kind == "unicode":
                params[name] = ["".join(chr(rng.choice([rng.randrange(0x20, 0x7f), rng.randrange(0xa0, 0x2fff),
                                                        rng.randrange(0x1f300, 0x1faff), rng.randrange(0x300, 0x36f)]))
                                        for _ in range(rng.randint(1, 40)))]
            elif kind == "huge":
                params[name] = [rng.choice(["9", "a", "ñ", "😀", "<"]) * rng.choice([1601, 16001, 100_000])]
            elif kind == "unknown":
                name = "X" + secrets.token_hex(3)
                params[name] = [rng.choice(ODD_VALUES)]
            else:
                name = "NumMedia"
                count = rng.choice(["1", "2", "10", "²", "-1", "01", " 1", "٣", "１", "99999999999999999999"])
                params["NumMedia"] = [count]
                params["MediaUrl0"] = [rng.choice(["https://api.twilio.com/x", "", "javascript:alert(1)"])]
            done.append(f"{name}:{kind}")
        return done

    def request(self) -> tuple[str, bytes, dict[str, str], list[str]]:
        """(path with query, body bytes, headers, mutations)."""
        rng = self.rng
        path = rng.choices([p for p, _ in PATHS], weights=[w for _, w in PATHS])[0]
        params = self.valid(path)
        mutations = self.mutate(params) if rng.random() < 0.9 else []
        query = ""
        if path.endswith("/voice/menu"):
            query = "?" + rng.choice(VOICE_STATES)
        elif rng.random() < 0.05:
            query = "?" + urllib.parse.urlencode({"b": rng.choice(ODD_VALUES[:20]), "x": "1"})
            mutations.append("query")
        body = urllib.parse.urlencode([(k, v) for k, values in params.items() for v in values]).encode()
        if rng.random() < 0.03:
            body += b"&Body=%FF%FE%C3"  # invalid UTF-8: what the server decodes is what Twilio would have signed
            params.setdefault("Body", []).append("\ufffd\ufffd\ufffd")
            mutations.append("Body:invalid-utf8")
        signed = MultiDict([(k, v) for k, values in params.items() for v in values])
        signature = self.validator.compute_signature(PUBLIC_BASE_URL + path + query, signed)
        roll = rng.random()
        if roll < 0.04:
            signature, _ = "", mutations.append("signature:missing")
        elif roll < 0.08:
            signature = signature[:-2] + "AA"
            mutations.append("signature:wrong")
        elif roll < 0.10:
            odd = rng.choice(ODD_VALUES[:30]).translate({ord(c): None for c in "\r\n\x00"})  # HTTP cannot carry them
            signature = odd.encode("utf-8", "replace").decode("latin-1")
            mutations.append("signature:garbage")
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if signature:
            headers["X-Twilio-Signature"] = signature
        return path + query, body, headers, mutations


def start_aviso(workdir: Path, auth_token: str, account_sid: str) -> tuple[subprocess.Popen, int, Path]:
    """Aviso in production mode under gunicorn on 127.0.0.1, with its own embedded Redis."""
    from bot.config import load_settings
    from bot.services import Aviso
    from bot.store import embedded_redis

    redis_url = embedded_redis.ensure_running(workdir / "redis")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AVISO_", "TWILIO_", "WEB_", "REDIS_"))}
    env.update(AVISO_ENV="production", AVISO_SECRET_KEY=secrets.token_urlsafe(32), PUBLIC_BASE_URL=PUBLIC_BASE_URL,
               TWILIO_ACCOUNT_SID=account_sid, TWILIO_AUTH_TOKEN=auth_token,
               TWILIO_MESSAGING_SERVICE_SID="MG" + secrets.token_hex(16), REDIS_URL=redis_url,
               AVISO_DATA_DIR=str(workdir / "data"), AVISO_CONTENT_DIR=str(ROOT / "content"), WEB_CONCURRENCY="2",
               AVISO_LOG_FORMAT="console")  # tracebacks on lines of their own, for EXCEPTION_LINE
    Aviso(load_settings(env, dotenv_path=None)).ensure_content()
    port = free_port()
    log_path = workdir / "aviso.log"
    process = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "--config", "python:bot.gunicorn_conf", "--bind", f"127.0.0.1:{port}",
         "bot:create_app()"], cwd=ROOT, env=env, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT,
        start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"fuzz: Aviso exited with {process.returncode}; see {log_path}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process, port, log_path
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"fuzz: Aviso did not listen within 30 s; see {log_path}")


def send(port: int, path: str, body: bytes, headers: dict[str, str]) -> int:
    """POST once on a fresh local connection; the status code (599: no answer at all)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return 599
    finally:
        connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=3000, help="at most this many requests (default 3000)")
    parser.add_argument("--seconds", type=float, default=300.0, help="and at most this long (default 300)")
    parser.add_argument("--seed", type=int, default=13, help="random seed: the same seed, the same requests")
    parser.add_argument("--show", type=int, default=5, help="print this many 5xx requests in full")
    args = parser.parse_args()
    if args.count <= 0 or args.seconds <= 0:
        parser.error("--count and --seconds must be positive")

    from bot.store import embedded_redis

    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    workdir = Path(tempfile.mkdtemp(prefix="aviso-fuzz-"))
    auth_token, account_sid = secrets.token_hex(16), "AC" + secrets.token_hex(16)
    process = None
    try:
        process, port, log_path = start_aviso(workdir, auth_token, account_sid)
        fuzzer = Fuzzer(args.seed, auth_token, account_sid)
        statuses: Counter = Counter()
        causes: Counter = Counter()
        shown: list[str] = []
        started = time.monotonic()
        sent = 0
        while sent < args.count and time.monotonic() - started < args.seconds:
            path, body, headers, mutations = fuzzer.request()
            status = send(port, path, body, headers)
            sent += 1
            statuses[status] += 1
            if status >= 500:
                causes.update({m.split(":")[0] for m in mutations})
                if len(shown) < args.show:
                    shown.append(f"  {status} {path} {mutations} {body[:300]!r}")
        took = time.monotonic() - started
        errors = sum(n for status, n in statuses.items() if status >= 500)
        server_log = log_path.read_text(errors="replace")
        tracebacks = server_log.count("Traceback")
        raised = Counter(line for line in server_log.splitlines() if EXCEPTION_LINE.match(line))
        print(f"requests sent: {sent} in {took:.1f} s (seed {args.seed}, bound {args.count} / {args.seconds:.0f} s)")
        print("answers: " + ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items())))
        print(f"5xx seen: {errors}; tracebacks in Aviso's log: {tracebacks}")
        if errors:
            print("5xx by mutated field: " + ", ".join(f"{name} {n}" for name, n in causes.most_common()))
            print("exceptions in Aviso's log: " + "; ".join(f"{n} x {line}" for line, n in raised.most_common(5)))
            print("first 5xx requests:\n" + "\n".join(shown))
        return 1 if errors else 0
    finally:
        if process is not None and process.poll() is None:
            process.terminate()  # the gunicorn master, by pid: it stops its own workers
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        embedded_redis.stop(workdir / "redis")


if __name__ == "__main__":
    sys.exit(main())
