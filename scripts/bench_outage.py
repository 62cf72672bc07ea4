#!/usr/bin/env python3
"""Outage benchmark: how long a family waits for DERECHOS when Redis is healthy, killed, or frozen.

    .venv/bin/python scripts/bench_outage.py [--messages 40]

It starts its own redis-server (the embedded one, in a temporary folder) and Aviso's app in this process
(production settings, signatures checked), then sends --messages signed DERECHOS messages through the
webhook in each state: Redis healthy, Redis frozen (SIGSTOP), Redis resumed, Redis killed (SIGKILL). It
prints the latency per state (median, 99th percentile, slowest) and how many answers were the Spanish
rights menu. The target (README, issue 13): every answer within 1 s, in Spanish, in every state.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from xml.etree import ElementTree

from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot import create_app, services  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.conversation.engine import submenu_text  # noqa: E402
from bot.store import embedded_redis  # noqa: E402

PUBLIC_BASE_URL = "https://bench.aviso.test"
TOKEN = secrets.token_hex(16)


def text(client, body: str, number: str) -> tuple[float, list[str]]:
    """Send one signed message; (seconds it took, replies)."""
    params = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": "AC" + "1" * 32, "From": number,
              "To": "+12135550100", "Body": body, "NumMedia": "0"}
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC_BASE_URL + "/twilio/messages", params)
    started = time.perf_counter()
    response = client.post("/twilio/messages", data=params, headers={"X-Twilio-Signature": signature})
    took = time.perf_counter() - started
    if response.status_code != 200:
        return took, [f"HTTP {response.status_code}"]
    return took, [m.text or "" for m in ElementTree.fromstring(response.data).iter("Message")]


def run(client, label: str, count: int, expected: str) -> None:
    times, right = [], 0
    for n in range(count):
        took, replies = text(client, "DERECHOS", f"+1213555{3000 + n:04d}")
        times.append(took)
        right += replies == [expected]
    times.sort()
    p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
    print(f"{label:16} {count:>4} msgs  median {statistics.median(times) * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms  "
          f"slowest {times[-1] * 1000:7.1f} ms  Spanish rights menu {right}/{count}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=40, help="messages per state (default 40)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="aviso-outage-"))
    redis_dir = workdir / "redis"
    url = embedded_redis.ensure_running(redis_dir)
    pid = int((redis_dir / embedded_redis.PID_NAME).read_text())
    try:
        settings = Settings(env="production", data_dir=workdir / "data", content_dir=ROOT / "content", redis_url=url,
                            public_base_url=PUBLIC_BASE_URL, secret_key=secrets.token_urlsafe(32),
                            twilio_auth_token=TOKEN)
        app = create_app(settings)
        services.current_from(app).ensure_content()
        content = services.current_from(app).content_in_memory()
        client = app.test_client()
        expected = submenu_text(content, "es", "rights")
        text(client, "DERECHOS", "+12135552999")  # warm up: content parsed, connections open
        run(client, "redis healthy", args.messages, expected)
        os.kill(pid, signal.SIGSTOP)
        try:
            run(client, "redis frozen", args.messages, expected)
        finally:
            os.kill(pid, signal.SIGCONT)
        deadline = time.monotonic() + 10
        while services.current_from(app).outage.down and time.monotonic() < deadline:
            text(client, "DERECHOS", "+12135552998")  # until Redis answers again
            time.sleep(0.05)
        run(client, "redis resumed", args.messages, expected)
        os.kill(pid, signal.SIGKILL)
        run(client, "redis killed", args.messages, expected)
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        embedded_redis.stop(redis_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
