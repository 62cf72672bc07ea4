#!/usr/bin/env python3
"""Sign-in benchmark: does asking for a code take as long for a rostered number as for an unknown one, and
how many code guesses can an attacker make in a day?

    .venv/bin/python scripts/bench_signin.py [--requests 400] [--staff 100]

1. On a private embedded Redis, with --staff staff members on the roster, posts the sign-in form
   (Flask's test client, the real app and Redis) --requests times for a rostered number and as many for
   unknown numbers, interleaved, each from a fresh browser and address, and prints the median and p90
   answer times of each (the jobs that text the codes run afterwards, as a worker would).
2. Prints the worst case of code guesses per day the limits allow (bot/people/signin.py) and the chance that
   one of them takes over an account, against the figure before (20 guesses an hour per staff number).
"""

from __future__ import annotations

import argparse
import logging
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rq import SimpleWorker  # noqa: E402

from bot import create_app, services  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.people import signin  # noqa: E402
from bot.store import (  # noqa: E402
    embedded_redis,  # noqa: E402
    queues,
)

SECRET = "bench-signin-secret-key-0123456789abcdef0123"
CSRF = re.compile(rb'name="csrf_token" value="([^"]+)"')


class Worker(SimpleWorker):
    """RQ's worker in this process, without the pub/sub listener for remote commands."""

    def subscribe(self):
        """No remote commands here."""


def timed_request(app, number: str, address: str) -> float:
    """Seconds the sign-in form's POST takes for one number from a fresh browser."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    token = CSRF.search(client.get("/dashboard/login").data).group(1).decode()
    started = time.perf_counter()
    response = client.post("/dashboard/login", data={"phone": number, "csrf_token": token})
    elapsed = time.perf_counter() - started
    assert response.status_code == 302, response.status_code
    return elapsed


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--staff", type=int, default=100)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aviso-bench-signin-"))
    redis_url = embedded_redis.ensure_running(work / "redis")
    try:
        settings = Settings(env="development", data_dir=work, content_dir=ROOT / "content", redis_url=redis_url,
                            secret_key=SECRET, public_base_url="http://127.0.0.1:5000")
        app = create_app(settings)
        logging.getLogger().setLevel(logging.WARNING)  # a line per code sent would drown the figures
        aviso = services.current_from(app)
        aviso.connection.flushdb()
        known = set(aviso.active_content().schools.by_code)
        school = sorted(known)[0]
        for n in range(args.staff):
            aviso.roster.add(f"+1310555{1000 + n:04d}", f"Staff {n}", "sender", [school], known)
        times: dict[str, list[float]] = {"rostered": [], "unknown": []}
        for n in range(args.requests):
            rostered = f"+1310555{1000 + n % args.staff:04d}"
            unknown = f"+1213555{5000 + n:04d}"
            for kind, number in (("rostered", rostered), ("unknown", unknown))[:: 1 if n % 2 else -1]:
                aviso.connection.delete(*aviso.connection.keys("aviso:dash:backoff:*") or ["-"])
                times[kind].append(timed_request(app, number, f"10.{n // 250}.{n % 250}.{len(times[kind]) % 2}"))
            if n % 50 == 49:
                with app.app_context():
                    Worker(list(queues.ALL), connection=aviso.connection).work(burst=True, logging_level="WARNING")
        print(f"sign-in form POST, {args.requests} each, fresh browser and address each time:")
        for kind, values in times.items():
            ordered = sorted(values)
            print(f"  {kind:9} median {statistics.median(ordered) * 1000:6.2f} ms   "
                  f"p90 {ordered[int(len(ordered) * 0.9)] * 1000:6.2f} ms")
        budget = settings.signin_failure_budget
        slowed_codes_per_hour = 3600 // signin.SLOWED_SPACING_SECONDS
        per_day = 24 * (budget + slowed_codes_per_hour * signin.SLOWED_TRIES_PER_CODE)
        before = 20 * 24 * args.staff
        chance = 1 - (1 - 1 / 10 ** signin.CODE_DIGITS) ** per_day
        print(f"worst-case code guesses a day, whole district: {per_day} (budget {budget}/h, then "
              f"{slowed_codes_per_hour} codes/h x {signin.SLOWED_TRIES_PER_CODE} try) -> "
              f"{chance:.3%} chance of one account a day")
        print(f"before: {before} a day with {args.staff} staff -> {1 - (1 - 1e-6) ** before:.3%}")
    finally:
        embedded_redis.stop(work / "redis")


if __name__ == "__main__":
    main()
