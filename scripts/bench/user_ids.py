#!/usr/bin/env python3
"""What a WhatsApp user id costs a webhook request: CPU per request for each way a family is named.

    .venv/bin/python scripts/bench/user_ids.py [--requests 3000] [--families 500] [--repeat 3]

Aviso's WSGI app called in-process, one thread, production settings and its own embedded Redis, as in
scripts/bench/profile_webhook.py. For each kind of sender (an SMS number; a WhatsApp number; a WhatsApp
number with its user id in ExternalUserId; a user id alone, the family known by it; a user id alone,
the family known by its number: the alias lookup's second round trip), the families first text once,
then a stream of distinct signed messages from them is timed. Prints microseconds of CPU per request
(the least of --repeat rounds: other work on the machine only ever adds time) and the wall time.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import shutil
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # scripts/: bench_webhook
sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/bench: profile_webhook

import bench_webhook as bench  # noqa: E402
import profile_webhook  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

BODIES = ("DERECHOS", "1", "MENU", "RECURSOS", "0")
KINDS = ("sms number", "whatsapp number", "whatsapp number + user id", "user id, own contact",
         "user id, alias of a number")


def sender(kind: str, n: int) -> dict[str, str]:
    """The From/ExternalUserId fields of family n of a kind."""
    number, user_id = f"+1213555{n:04d}", f"US.{13491208655302741918 + n}"
    if kind == "sms number":
        return {"From": number}
    if kind == "whatsapp number":
        return {"From": f"whatsapp:{number}", "WaId": number[1:]}
    if kind == "whatsapp number + user id":
        return {"From": f"whatsapp:{number}", "WaId": number[1:], "ExternalUserId": f"whatsapp:{user_id}"}
    return {"From": f"whatsapp:{user_id}", "ExternalUserId": f"whatsapp:{user_id}"}


class Requests:
    """Distinct signed requests ("signature\\tbody") from the families of one kind."""

    def __init__(self, token: str, account_sid: str):
        self.validator = RequestValidator(token)
        self.account_sid = account_sid
        self.count = 0

    def make(self, kind: str, families: range, total: int) -> list[str]:
        """total requests cycling over the families and the bodies."""
        items = []
        for k in range(total):
            self.count += 1
            params = {"MessageSid": f"SM{self.count:032x}", "AccountSid": self.account_sid, "To": "+12135550100",
                      "Body": BODIES[k % len(BODIES)], "NumMedia": "0",
                      **sender(kind, families[k % len(families)])}
            signature = self.validator.compute_signature(bench.SIGNED_URL, params)
            items.append(f"{signature}\t{urllib.parse.urlencode(params)}")
        return items


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000, help="timed requests per kind and round (3000)")
    parser.add_argument("--families", type=int, default=500, help="families per kind (500)")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds; the least is reported (3)")
    args = parser.parse_args()

    from bot import create_app, services
    from bot.config import load_settings
    from bot.store import embedded_redis

    workdir = Path(tempfile.mkdtemp(prefix="aviso-user-ids-"))
    try:
        env = {
            "AVISO_ENV": "production", "AVISO_SECRET_KEY": secrets.token_urlsafe(48),
            "PUBLIC_BASE_URL": bench.PUBLIC_BASE_URL, "TWILIO_ACCOUNT_SID": "AC" + secrets.token_hex(16),
            "TWILIO_AUTH_TOKEN": secrets.token_hex(16), "TWILIO_MESSAGING_SERVICE_SID": "MG" + secrets.token_hex(16),
            "REDIS_URL": embedded_redis.ensure_running(workdir / "redis"), "AVISO_DATA_DIR": str(workdir / "data"),
            "AVISO_CONTENT_DIR": str(bench.ROOT / "content"),
        }
        app = create_app(load_settings(env, dotenv_path=None))
        logging.getLogger().handlers[0].setStream(open(workdir / "app.log", "w"))  # as gunicorn's log file
        services.current_from(app).ensure_content()
        requests = Requests(env["TWILIO_AUTH_TOKEN"], env["TWILIO_ACCOUNT_SID"])
        print(f"CPU per request, in-process, one thread ({args.requests} requests x {args.repeat} rounds per kind):")
        for offset, kind in enumerate(KINDS):
            families = range(offset * args.families, (offset + 1) * args.families)
            if kind == "user id, alias of a number":  # the family first wrote with its number and user id
                profile_webhook.run(app, requests.make("whatsapp number + user id", families, len(families)))
            profile_webhook.run(app, requests.make(kind, families, len(families)))  # every family exists
            rounds = []
            for _ in range(args.repeat):
                items = requests.make(kind, families, args.requests)
                started = time.perf_counter()
                cpu, statuses = profile_webhook.run(app, items)
                rounds.append((cpu, (time.perf_counter() - started) / len(items), statuses))
            cpu, wall, statuses = min(rounds, key=lambda r: r[0])
            print(f"  {kind:28} {cpu * 1e6:6.0f} us CPU  {wall * 1e6:6.0f} us wall  statuses {statuses}")
    finally:
        embedded_redis.stop(workdir / "redis")
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
