"""Metrics endpoint: GET /metrics in Prometheus's text format, for this machine, a private network or a
bearer token (AVISO_METRICS_TOKEN); it also times every Twilio webhook request."""

from __future__ import annotations

import hmac
import ipaddress
import os
import time

from flask import Blueprint, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from rq import Queue
from rq.registry import FailedJobRegistry, ScheduledJobRegistry

from bot import services
from bot.observability import metrics
from bot.store import queues
from bot.store.outage import REDIS_ERRORS
from bot.web.dashboard import auth as dashboard_auth

bp = Blueprint("metrics", __name__)
WEBHOOK_PREFIX = "/twilio/"
# Private networks in the RFC 1918 / RFC 4193 sense. Not ipaddress's is_private, which also counts the
# documentation and benchmarking ranges (and 100.64/10, a carrier's NAT shared with strangers).
PRIVATE_NETWORKS = tuple(map(ipaddress.ip_network, ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")))


class QueueCollector:
    """Queue depths read from Redis at scrape time (so they are right whichever process scrapes)."""

    def __init__(self, connection):
        self.connection = connection

    def collect(self):
        """Jobs waiting, scheduled (reminders and broadcasts due later) and failed per queue; Redis up or not."""
        up = GaugeMetricFamily("aviso_redis_up", "Whether Redis answered this scrape.")
        waiting = GaugeMetricFamily("aviso_queue_jobs", "Jobs waiting in each RQ queue.", labels=["queue"])
        scheduled = GaugeMetricFamily("aviso_queue_scheduled_jobs", "Jobs scheduled for later (reminders, "
                                      "scheduled broadcasts), per RQ queue.", labels=["queue"])
        failed = GaugeMetricFamily("aviso_queue_failed_jobs", "Jobs in each RQ queue's failed registry.",
                                   labels=["queue"])
        try:
            for name in queues.ALL:
                queue = Queue(name, connection=self.connection)
                waiting.add_metric([name], queue.count)
                scheduled.add_metric([name], ScheduledJobRegistry(queue=queue).count)
                failed.add_metric([name], FailedJobRegistry(queue=queue).count)
        except REDIS_ERRORS:
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, waiting, scheduled, failed]


def process_registry() -> CollectorRegistry:
    """This process's metrics, or under PROMETHEUS_MULTIPROC_DIR every process's, added up from their files."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


@bp.get("/metrics")
def scrape():
    """Every metric in Prometheus's text format; 403 for a public address without the token."""
    aviso = services.current()
    if not _may_scrape(aviso.settings):
        return Response("metrics are for this machine, a private network or a bearer token\n", 403,
                        mimetype="text/plain")
    queue_registry = CollectorRegistry()
    queue_registry.register(QueueCollector(aviso.webhook_connection))  # a frozen Redis: half a second
    body = generate_latest(process_registry()) + generate_latest(queue_registry)
    return Response(body, 200, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _may_scrape(settings) -> bool:
    token = settings.metrics_token
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), token.encode()):
        return True
    if not settings.trusted_proxies and "X-Forwarded-For" in request.headers:
        return False  # came through a proxy Aviso was not told about: its own address says nothing
    try:
        address = ipaddress.ip_address(dashboard_auth.client_address(settings.trusted_proxies))
    except ValueError:
        return False
    address = getattr(address, "ipv4_mapped", None) or address
    return address.is_loopback or any(address in network for network in PRIVATE_NETWORKS
                                      if network.version == address.version)


@bp.before_app_request
def _start_timer():
    if request.path.startswith(WEBHOOK_PREFIX):
        g.metrics_started = time.perf_counter()


@bp.after_app_request
def _time_webhook(response):
    started = g.pop("metrics_started", None)
    if started is not None and request.url_rule is not None:  # known routes only: no label from a stray path
        metrics.webhook_answered(request.url_rule.rule, response.status_code, time.perf_counter() - started)
    return response
