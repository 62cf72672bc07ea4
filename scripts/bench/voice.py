#!/usr/bin/env python3
"""Voice line: time per signed Twilio voice request, in process, by kind of request.

    .venv/bin/python scripts/bench/voice.py [--calls 2000]

Production settings, signatures checked, its own embedded Redis; the app is called through Flask's test
client (one thread: no gunicorn, no network). Each call: the first request (the caller's language read
from Redis), the language choice (remembered on the contact), the rights menu, a rights text, the
hotline. Prints, per kind, the median and p99 wall time, the CPU per request and the TwiML size.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent.parent
PUBLIC_BASE_URL = "https://bench.aviso.test"
STEPS = [  # kind, path, digits
    ("call answered (language read)", "/twilio/voice", None),
    ("language chosen (remembered)", "/twilio/voice/menu?at=language&quiet=0", "2"),
    ("main menu -> rights menu", "/twilio/voice/menu?at=main&quiet=0&lang=es", "1"),
    ("rights menu -> rights at home", "/twilio/voice/menu?at=rights&quiet=0&lang=es", "1"),
    ("0 -> hotline <Dial>", "/twilio/voice/menu?at=rights.home&quiet=0&lang=es", "0"),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()

    from bot import create_app, services
    from bot.config import load_settings
    from bot.store import embedded_redis

    workdir = Path(tempfile.mkdtemp(prefix="aviso-bench-voice-"))
    try:
        token = secrets.token_hex(16)
        env = {
            "AVISO_ENV": "production", "AVISO_SECRET_KEY": secrets.token_urlsafe(48),
            "PUBLIC_BASE_URL": PUBLIC_BASE_URL, "TWILIO_ACCOUNT_SID": "AC" + secrets.token_hex(16),
            "TWILIO_AUTH_TOKEN": token, "TWILIO_MESSAGING_SERVICE_SID": "MG" + secrets.token_hex(16),
            "REDIS_URL": embedded_redis.ensure_running(workdir / "redis"), "AVISO_DATA_DIR": str(workdir / "data"),
            "AVISO_CONTENT_DIR": str(ROOT / "content"),
        }
        app = create_app(load_settings(env, dotenv_path=None))
        logging.getLogger().handlers[0].setStream(open(workdir / "app.log", "w"))  # as gunicorn's log file
        services.current_from(app).ensure_content()
        client = app.test_client()
        validator = RequestValidator(token)
        walls = {kind: [] for kind, _, _ in STEPS}
        cpus = dict.fromkeys(walls, 0.0)
        sizes, statuses = {}, {}
        for n in range(args.calls):
            params = {"CallSid": "CA" + secrets.token_hex(16), "From": f"+1213555{n % 10000:04d}",
                      "To": "+12135550100", "CallStatus": "in-progress"}
            for kind, path, digits in STEPS:
                form = dict(params, **({"Digits": digits} if digits is not None else {}))
                signature = validator.compute_signature(PUBLIC_BASE_URL + path, form)
                cpu, wall = time.process_time(), time.perf_counter()
                response = client.post(path, data=form, headers={"X-Twilio-Signature": signature})
                walls[kind].append(time.perf_counter() - wall)
                cpus[kind] += time.process_time() - cpu
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                sizes[kind] = len(response.data)
        print(f"{args.calls} calls, {len(STEPS)} requests each, statuses {statuses}")
        print(f"{'request':34} {'median ms':>9} {'p99 ms':>7} {'CPU ms':>7} {'TwiML B':>8}")
        for kind in walls:
            times = sorted(walls[kind])
            p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
            print(f"{kind:34} {statistics.median(times) * 1e3:9.2f} {p99 * 1e3:7.2f} "
                  f"{cpus[kind] / args.calls * 1e3:7.2f} {sizes[kind]:8}")
    finally:
        embedded_redis.stop(workdir / "redis")
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
