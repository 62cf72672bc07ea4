#!/usr/bin/env python3
"""Voice alert calls benchmark: calls placed per second against the account's calls-per-second cap.

    .venv/bin/python scripts/bench_calls.py [--caps 10,1] [--seconds 60] [--kill] [--workers 2]

Everything runs on this machine, as scripts/bench_broadcast.py sets it up: a private embedded Redis, the fake
Twilio as its own process (150 ms per API call, its Calls API refusing any call over the cap in a 1-second
window with 429), and `aviso worker` processes. For each cap, cap x --seconds families who asked for calls
get an urgent alert; the figures are the rate of call creates the fake accepted, (calls - 1) / (last - first),
against the cap (target: within 5%), the most calls it saw in any 1-second window (never over the cap),
calls refused with 429, families called twice, and the time from approval to the first call.
With --kill, the worker placing the calls is SIGKILLed a third of the way through and another started: the
rate then includes the time the standby needs to notice (the lease) and settle the dead run's last calls.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_broadcast import Bench, log  # noqa: E402

from bot.broadcasts import calls, fanout  # noqa: E402
from bot.broadcasts.calls import CallPolicy  # noqa: E402
from bot.broadcasts.store import APPROVED, Broadcast, BroadcastStore, new_id  # noqa: E402
from bot.people.contacts import contact_redis_key  # noqa: E402
from bot.people.identity import Address  # noqa: E402
from bot.store import keys  # noqa: E402

VOICE_FROM = "+12135550150"
TEXTS = {"es": "Actividad cerca de Main y 3rd. Use la entrada norte.",
         "en": "Activity near Main and 3rd. Use the north entrance."}


def run_cap(bench: Bench, cap: int, seconds: int, kill: bool) -> dict:
    count = cap * seconds
    bench.redis.flushall()
    numbers = bench.subscribe(count, schools=("school00",), languages=("es", "en"))
    pipe = bench.redis.pipeline(transaction=False)
    for number in numbers:
        pipe.hset(contact_redis_key(bench.keyring.contact_key(Address("sms", number))), "voice", "1")
    pipe.execute()
    bench.fake_reset()
    bench.fake_configure(calls_per_second=cap, fetch_twiml=False)
    broadcast = Broadcast(id=new_id(), schools=("school00",), kind="verified", texts=TEXTS, code="K7Q2P",
                          created_by="bench", approved_by="bench-2", verified_by="bench", urgent=True, status=APPROVED)
    BroadcastStore(bench.redis).create(broadcast)
    policy = CallPolicy(calls_per_second=cap, lease_seconds=5 if kill else 30, settle_seconds=3 if kill else 20)
    aviso = SimpleNamespace(connection=bench.redis, settings=SimpleNamespace(calls_per_second=cap))
    log(f"cap {cap}/s: {count} families who asked for calls; approving")
    approved = time.time()
    calls.start(aviso, broadcast, policy)
    fanout.enqueue_start(bench.redis, broadcast.id)
    run = keys.CALL_RUN.format(id=broadcast.id)
    killed = False
    deadline = time.monotonic() + seconds * 4 + 120
    while bench.redis.hget(run, "done") is None and time.monotonic() < deadline:
        if kill and not killed and int(bench.redis.hget(run, "placed") or 0) >= count // 3:
            token = bench.redis.get(keys.CALL_LEASE.format(id=broadcast.id))
            horse = int(token.split(b"-")[0])
            for worker in list(bench.workers):
                if Path(f"/proc/{horse}/stat").exists() and _parent(horse) == worker.pid:
                    os.killpg(worker.pid, signal.SIGKILL)
                    os.killpg(horse, signal.SIGKILL)
                    worker.wait()
                    bench.workers.remove(worker)
                    bench.workers.append(bench.start_worker())
                    killed = True
                    placed = bench.redis.hget(run, "placed").decode()
                    log(f"cap {cap}/s: killed the placing worker after {placed} calls")
        time.sleep(0.2)
    created = sorted(call["created"] for call in bench.fake_get("calls"))
    stats = bench.fake_get("stats")
    rate = (len(created) - 1) / (created[-1] - created[0]) if len(created) > 1 else 0.0
    gaps = [b - a for a, b in zip(created, created[1:], strict=False)]
    twice = sum(1 for n in Counter(call["to"] for call in bench.fake_get("calls")).values() if n > 1)
    result = {"cap": cap, "families": count, "calls": len(created), "calls_per_second": round(rate, 3),
              "of_cap": round(rate / cap, 4), "max_in_any_1s": stats["max_calls_in_any_1s_window"],
              "refused_429": stats["by_status"].get("429", 0), "called_twice": twice,
              "first_call_after_s": round(created[0] - approved, 3) if created else None, "killed": killed,
              "shortest_gap_s": round(min(gaps), 3) if gaps else None,
              "gaps_over_1_5_slots": sum(1 for gap in gaps if gap > 1.5 / cap)}
    log(f"cap {cap}/s: {json.dumps(result)}")
    return result


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--caps", default="10,1")
    parser.add_argument("--seconds", type=int, default=60, help="each cap's run lasts about this long")
    parser.add_argument("--kill", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    os.environ["TWILIO_VOICE_FROM"] = VOICE_FROM
    with tempfile.TemporaryDirectory(prefix="aviso-bench-calls-") as workdir:
        bench = Bench(args.workers, Path(workdir))
        try:
            results = [run_cap(bench, int(cap), args.seconds, args.kill) for cap in args.caps.split(",")]
        finally:
            bench.close()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
