"""/metrics in multiprocess mode: a real `aviso worker` (forking a work horse per job) sends a broadcast
through the fake Twilio, and the web app's scrape adds up what its processes wrote."""

from __future__ import annotations

import json
import os
import time

from bot.broadcasts import fanout
from bot.broadcasts.fanout import Policy
from bot.broadcasts.store import DONE, BroadcastStore
from tests.test_broadcasts import make_broadcast
from tests.test_fanout import (  # noqa: F401  (fixtures: sending through the fake)
    ACCOUNT_SID,
    AUTH_TOKEN,
    REPO,
    SERVICE_SID,
    _start_worker,
    _stop_workers,
    fake,
    family,
    public_port,
    settings,
)
from tests.test_metrics import scrape, value


def run_broadcast_in_a_worker(aviso, fake, tmp_path, redis_url, **env_extra: str):  # noqa: F811
    """Send an urgent broadcast through a real `aviso worker` process; return the broadcast's id."""
    env = {**os.environ, "REDIS_URL": redis_url, "AVISO_ENV": "development", "AVISO_DATA_DIR": str(tmp_path),
           "AVISO_CONTENT_DIR": str(aviso.settings.content_dir), "AVISO_SECRET_KEY": aviso.settings.secret_key,
           "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
           "TWILIO_MESSAGING_SERVICE_SID": SERVICE_SID, "TWILIO_API_BASE_URL": fake.url,
           "PUBLIC_BASE_URL": aviso.settings.public_base_url, **env_extra,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    worker = _start_worker(env, tmp_path / "worker.log")
    broadcast = make_broadcast(urgent=True)
    store = BroadcastStore(aviso.connection)
    store.create(broadcast)
    try:
        fanout.enqueue_start(aviso.connection, broadcast.id,
                             policy=Policy(batch_size=2, concurrency=4, backoff_base=0.01, backoff_cap=0.05))
        deadline = time.monotonic() + 30
        while store.get(broadcast.id).status != DONE and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        _stop_workers(worker)
    assert store.get(broadcast.id).status == DONE, (tmp_path / "worker.log").read_text()[-3000:]
    return broadcast.id


def test_a_worker_in_multiprocess_mode_reports_sends_failures_and_429s_by_code(
        app, aviso, fake, client, tmp_path, redis_url, monkeypatch):  # noqa: F811
    numbers = list(family(aviso, 6))
    fake.configure(recipient_errors={numbers[0]: 21211}, error_429_count=2)
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    run_broadcast_in_a_worker(aviso, fake, tmp_path, redis_url, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))  # how gunicorn's processes see the files
    after = scrape(client)
    assert value(after, "aviso_broadcast_sent_total") == 5
    assert value(after, "aviso_broadcast_failed_total", code="21211") == 1
    assert value(after, "aviso_twilio_too_many_requests_total") == 2
    assert value(after, "aviso_rate_limit_wait_seconds_count") == 8  # every call waited its turn (none here)
    # Three batches ran in three work horses, one after another: they shared one set of files, so the
    # folder does not grow with every job run (two sets: the worker's own and its horses').
    owners = {path.stem.split("_", 1)[1] for path in metrics_dir.iterdir()}
    assert len(owners) <= 2 and any(owner.startswith("horses-of-") for owner in owners)


def test_a_workers_log_is_json_lines_tagged_with_the_broadcast_and_without_numbers(
        app, aviso, fake, tmp_path, redis_url):  # noqa: F811
    numbers = list(family(aviso, 4))
    fake.configure(recipient_errors={numbers[0]: 21211}, error_5xx_rate=0.0)
    broadcast_id = run_broadcast_in_a_worker(aviso, fake, tmp_path, redis_url, AVISO_LOG_FORMAT="json")
    text = (tmp_path / "worker.log").read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is one JSON event
    assert all({"event", "level", "timestamp"} <= set(line) for line in lines)
    tagged = [line for line in lines if line.get("broadcast_id") == broadcast_id]
    assert tagged and {line["logger"] for line in tagged} & {"rq.worker", "bot.fanout", "bot.batches"}
    for number in numbers:
        assert number not in text and number[2:] not in text
