#!/usr/bin/env python3
"""Reminder benchmark: 10,000 registrations' reminders scheduled and fired, a worker killed in between.

    .venv/bin/python scripts/bench_reminders.py [--registrations 10000] [--workshops 50] [--workers 2]
                                                [--latency-ms 100] [--kill-at 0.3] [--offsets 6m,3m]

What it does, all on this machine (a private embedded Redis, the fake Twilio REST server in this
process, real `aviso worker` processes each with RQ's scheduler, sending with the real twilio library):

1. stores N contacts (numbers encrypted, as the webhook stores them; 10% WhatsApp, 30% English),
2. publishes content with W workshops starting a few minutes from now, and signs every contact up
   (registrations.register, the webhook's Lua script) - one seat each, N seats in all,
3. schedules the reminders as publishing does (workshop_changes.sync: one RQ job per workshop and
   offset, at its exact due time),
4. starts --workers `aviso worker` processes; the first reminders fall due --lead seconds later
   (the fake Twilio answers after --latency-ms, and a --hang-rate of creates are accepted but not
   answered in time, so the client gives up unsure and the retry must ask Twilio before resending),
5. when --kill-at of the first wave has been accepted by Twilio, SIGKILLs a worker's whole process
   group (worker, work horse, scheduler process: mid-job, claims in flight; by default the worker
   whose scheduler holds RQ's scheduler lock, so scheduled jobs also wait for another to take over)
   and starts a new worker,
6. waits for the second wave, then checks every registration: each got exactly one message per
   offset (its marker says sent, with the sid Twilio returned), no message Twilio accepted is
   unaccounted for (that would be a double), and each number received exactly len(offsets).

Offsets are minutes here so that both waves fall within a few minutes ("6m": six real minutes
before; production uses 1d,2h). Prints the figures; exits 1 if anything was lost or doubled.
See docs/bench-reminders.md.
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rq.registry import FailedJobRegistry  # noqa: E402
from rq.scheduler import SCHEDULER_KEY_TEMPLATE, SCHEDULER_LOCKING_KEY_TEMPLATE  # noqa: E402

from bot import create_app, services  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.content.model import Content  # noqa: E402
from bot.conversation.engine import ContactState  # noqa: E402
from bot.people import contacts  # noqa: E402
from bot.people.identity import SMS, WHATSAPP, Address  # noqa: E402
from bot.store import embedded_redis, queues  # noqa: E402
from bot.twilio.fake import FakeTwilio  # noqa: E402
from bot.workshops import registrations  # noqa: E402
from bot.workshops.changes import sync  # noqa: E402
from bot.workshops.reminders import Offset  # noqa: E402

ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
SERVICE_SID = "MG" + "b" * 32
SECRET = "bench-l7_fkJFyKtnkLtP6eWJ7cYdA9--GmDb9HPAxd780pnw"
CHUNK = 500
AGAIN = re.compile(r"ws-rem-[A-Za-z0-9_-]+?-again-[0-9a-f]{8}")


def log(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')}  {text}", flush=True)


def make_contacts(aviso, n: int, rng: random.Random) -> list[tuple[str, Address]]:
    people = []
    for start in range(0, n, CHUNK):
        pipe = aviso.connection.pipeline(transaction=False)
        for i in range(start, min(n, start + CHUNK)):
            address = Address(WHATSAPP if rng.random() < 0.1 else SMS, f"+1213{2000000 + i:07d}")
            key = aviso.keyring.contact_key(address)
            state = ContactState(language="en" if rng.random() < 0.3 else "es", is_new=False)
            contacts.save(pipe, key, state, address=address, keyring=aviso.keyring, is_new=True,
                          now=datetime.now().astimezone(), ttl_seconds=30 * 24 * 3600)
            people.append((key, address))
        pipe.execute()
    return people


def bench_content(base: Content, workshops: int, starts: datetime, capacity: int) -> Content:
    tree = copy.deepcopy(base.tree)
    tree["manifest"]["version"] = f"bench.{int(time.time())}"
    tree["workshops"] = [{
        "id": f"bench-{n:03d}", "starts": starts.strftime("%Y-%m-%dT%H:%M:%S"), "duration_minutes": 90,
        "place": "Belmont High School", "languages": ["es", "en"], "capacity": capacity, "school": "",
        "title": {code: f"Workshop {n}" for code in base.languages},
        "description": {code: "Bench." for code in base.languages},
    } for n in range(workshops)]
    return Content(tree)


def start_worker(env: dict[str, str], logs: Path, n: int) -> subprocess.Popen:
    out = open(logs / f"worker-{n}.log", "w")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], env=env, cwd=logs, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)


def scheduler_holder(aviso, workers: list[subprocess.Popen]) -> int | None:
    """The index of the worker whose scheduler holds RQ's scheduler lock, if any."""
    name = aviso.connection.get(SCHEDULER_LOCKING_KEY_TEMPLATE % queues.DEFAULT)
    pid = aviso.connection.hget(SCHEDULER_KEY_TEMPLATE % name.decode(), "pid") if name else None
    try:
        group = os.getpgid(int(pid)) if pid else None
    except (ProcessLookupError, ValueError):
        return None
    return next((i for i, w in enumerate(workers) if w.pid == group and w.poll() is None), None)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registrations", type=int, default=10_000)
    parser.add_argument("--workshops", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--latency-ms", type=float, default=100.0, help="fake Twilio answer time")
    parser.add_argument("--hang-rate", type=float, default=0.001,
                        help="fraction of creates Twilio accepts but answers only after 30 s (client gives up)")
    parser.add_argument("--kill-at", type=float, default=0.3, help="fraction of wave 1 sent when a worker dies")
    parser.add_argument("--kill", choices=("scheduler", "other"), default="scheduler",
                        help="kill the worker holding RQ's scheduler lock (the harder case), or another one")
    parser.add_argument("--offsets", default="6m,3m")
    parser.add_argument("--lead", type=float, default=40.0, help="seconds from start to the first due time")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the data directory and worker logs")
    args = parser.parse_args(argv)
    offsets = tuple(o.strip() for o in args.offsets.split(","))
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="aviso-bench-reminders-"))
    fake = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, messaging_services=[SERVICE_SID],
                      latency_ms=args.latency_ms, hang_rate=args.hang_rate, hang_seconds=30.0,
                      hang_accepts=True).start()
    workers: list[subprocess.Popen] = []
    try:
        redis_url = embedded_redis.ensure_running(work / "redis")
        settings = Settings(env="development", data_dir=work, content_dir=ROOT / "content", redis_url=redis_url,
                            secret_key=SECRET, twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
                            twilio_messaging_service_sid=SERVICE_SID, twilio_api_base_url=fake.url,
                            reminder_offsets=offsets)
        aviso = services.current_from(create_app(settings))
        aviso.connection.flushdb()
        n, w = args.registrations, args.workshops
        log(f"{n} registrations in {w} workshops, offsets {','.join(offsets)}, {args.workers} workers, "
            f"Twilio latency {args.latency_ms:.0f} ms")

        t = time.monotonic()
        people = make_contacts(aviso, n, rng)
        log(f"stored {n} contacts in {time.monotonic() - t:.1f} s")

        reference = datetime(2030, 1, 1).astimezone(settings.timezone)
        span = max(reference - Offset.parse(o).due(reference) for o in offsets)  # the earliest reminder
        starts = (datetime.now().astimezone(settings.timezone) + span + timedelta(seconds=args.lead)).replace(
            microsecond=0)
        content = bench_content(Content.from_dir(ROOT / "content"), w, starts, capacity=-(-n // w))
        aviso.content.publish(content, by="bench")
        t = time.monotonic()
        outcomes: Counter = Counter()
        for start in range(0, n, CHUNK):
            pipe = aviso.connection.pipeline(transaction=False)
            for i in range(start, min(n, start + CHUNK)):
                registrations.register(pipe, people[i][0], content.workshop(f"bench-{i % w:03d}"),
                                       datetime.now().astimezone())
            outcomes.update(x.decode() for x in pipe.execute())
        took = time.monotonic() - t
        log(f"signed up {n} in {took:.1f} s ({n / took:,.0f}/s): {dict(outcomes)}")

        t = time.monotonic()
        report = sync(aviso)
        log(f"scheduled {report.scheduled} reminder jobs (one per workshop and offset) in "
            f"{(time.monotonic() - t) * 1000:.0f} ms")
        dues = sorted((Offset.parse(o).due(starts), o) for o in offsets)
        for due, label in dues:
            log(f"  {label}: due {due:%H:%M:%S}, workshops start {starts:%H:%M:%S}")

        env = {**os.environ, "PYTHONPATH": str(ROOT), "REDIS_URL": redis_url, "AVISO_ENV": "development",
               "AVISO_DATA_DIR": str(work), "AVISO_CONTENT_DIR": str(ROOT / "content"), "AVISO_SECRET_KEY": SECRET,
               "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
               "TWILIO_MESSAGING_SERVICE_SID": SERVICE_SID, "TWILIO_API_BASE_URL": fake.url,
               "AVISO_REMINDER_OFFSETS": ",".join(offsets)}
        started = time.monotonic()
        workers = [start_worker(env, work, i) for i in range(args.workers)]
        log(f"started {args.workers} workers (aviso worker, RQ scheduler included)")

        expected = n * len(offsets)
        killed_at = None
        deadline = starts + timedelta(seconds=60)
        while datetime.now().astimezone() < deadline:
            time.sleep(0.5)
            accepted = len(fake.state.messages)
            if killed_at is None and accepted >= args.kill_at * n:
                holder = scheduler_holder(aviso, workers)
                victim = holder if args.kill == "scheduler" and holder is not None else (
                    next(i for i in range(len(workers)) if i != holder))
                os.killpg(workers[victim].pid, signal.SIGKILL)
                workers[victim].wait()
                killed_at = (time.monotonic(), accepted, victim, victim == holder)
                workers.append(start_worker(env, work, len(workers)))
                log(f"SIGKILLed worker {victim} (worker, work horse, scheduler process"
                    f"{', holding the scheduler lock' if victim == holder else ''}) with {accepted} messages "
                    f"accepted; started worker {len(workers) - 1}")
            if accepted >= expected and _settled(aviso, people, w, content, offsets) == expected:
                break
        done_at = time.monotonic()

        # --- the checks ---
        markers = _markers(aviso, people, w, content, offsets)
        sent = {key: value[5:] for key, value in markers.items() if value.startswith("sent:")}
        with fake.state.lock:
            stored = list(fake.state.messages)
        accepted = {m["json"]["sid"]: m for m in stored}
        per_number = Counter(m["json"]["to"] for m in stored)
        lost = expected - len(set(sent.values()))
        doubled = len(set(accepted) - set(sent.values()))
        wrong_counts = sum(1 for _, a in people if per_number.get(a.twilio, 0) != len(offsets))
        failed_jobs = sum(FailedJobRegistry(q, connection=aviso.connection).count for q in queues.ALL)
        stats = fake.stats()
        print()
        print(f"registrations                      {n} (one seat each, {w} workshops)")
        print(f"reminders expected                 {expected} ({len(offsets)} per registration)")
        print(f"reminders marked sent              {len(set(sent.values()))}")
        print(f"messages accepted by Twilio        {len(accepted)}")
        print(f"lost                               {lost}")
        print(f"doubled (accepted, not marked)     {doubled}")
        print(f"numbers not sent exactly {len(offsets)}         {wrong_counts}")
        print(f"failed RQ jobs                     {failed_jobs}")
        print(f"Twilio requests                    {stats['requests']} by HTTP status {stats['by_status']}")
        if killed_at:
            print(f"worker {killed_at[2]} SIGKILLed after           {killed_at[1]} messages accepted"
                  f"{' (it held the scheduler lock)' if killed_at[3] else ''}")
        for due, label in dues:
            times = sorted(accepted[sid]["ts"] for (_, marker), sid in sent.items()
                           if marker.startswith(f"rem:{label}:") and sid in accepted)
            if times:
                span = times[-1] - times[0]
                print(f"wave {label:4} {len(times):>6} sent        first {times[0] - due.timestamp():+.1f} s, last "
                      f"{times[-1] - due.timestamp():+.1f} s after due ({len(times) / max(span, 0.001):,.0f}/s)")
        print(f"peak Twilio calls in any 1 s       {stats['max_requests_in_any_1s_window']}")
        logs = "\n".join(p.read_text(errors="replace") for p in work.glob("worker-*.log"))
        print(f"unanswered sends found at Twilio   {logs.count('found sent before')} (listed, marked, not resent)")
        print(f"dead claims never sent, sent now   {logs.count('not sent before: sending')}")
        print(f"job runs retried (claims unsettled) {logs.count('Incomplete: ')}")
        again = len(set(re.findall(AGAIN, logs)))
        print(f"reminder jobs re-queued on restart {again}")
        print(f"wall time, workers started to end  {done_at - started:.0f} s")
        ok = lost == 0 and doubled == 0 and wrong_counts == 0
        for sid in sorted(set(accepted) - set(sent.values()))[:20]:
            m = accepted[sid]
            print(f"  unmarked {sid} to ...{m['json']['to'][-4:]} at {m['ts'] - dues[0][0].timestamp():+.1f} s")
        if not ok:
            for path in sorted(work.glob("worker-*.log")):
                print(f"--- {path.name} (last lines)")
                print("\n".join(path.read_text(errors="replace").splitlines()[-15:]))
        return 0 if ok else 1
    finally:
        for process in workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in workers:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        fake.stop()
        embedded_redis.stop(work / "redis")
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _marker_names(content: Content, workshop_id: str, offsets) -> list[str]:
    starts = content.workshop(workshop_id).starts
    return [f"rem:{o}:{int(Offset.parse(o).due(starts).timestamp())}" for o in offsets]


def _markers(aviso, people, w, content, offsets) -> dict[tuple[str, str], str]:
    found = {}
    for start in range(0, len(people), CHUNK):
        pipe = aviso.connection.pipeline(transaction=False)
        asked = []
        for i in range(start, min(len(people), start + CHUNK)):
            workshop_id = f"bench-{i % w:03d}"
            for marker in _marker_names(content, workshop_id, offsets):
                pipe.hget(registrations.registration_key(workshop_id, people[i][0]), marker)
                asked.append((people[i][0], marker))
        for key, value in zip(asked, pipe.execute(), strict=True):
            if value is not None:
                found[key] = value.decode()
    return found


def _settled(aviso, people, w, content, offsets) -> int:
    return sum(1 for v in _markers(aviso, people, w, content, offsets).values() if v.startswith("sent:"))


if __name__ == "__main__":
    sys.exit(main())
