"""Health: GET /healthz for monitoring (ok, or 503 when Redis is unreachable or no worker or scheduler is
alive), GET /healthz/web for load balancers (this web process can reach Redis), and for a signed-in admin or
this machine, details: Redis, content version, queue depths, workers and scheduler."""

from __future__ import annotations

import ipaddress

from flask import Blueprint, jsonify
from rq import Queue

from bot import services
from bot.store import liveness, queues
from bot.store.outage import REDIS_ERRORS
from bot.web.dashboard import auth as dashboard_auth

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """{"ok": true}, or 503 when Redis, every worker or the scheduler is gone; details for an admin or localhost."""
    aviso = services.current()
    try:
        aviso.webhook_connection.ping()  # gives up in half a second: a frozen Redis must not hold this worker
        alive = liveness.check(aviso.webhook_connection)
        status = 200 if alive.ok else 503
        if not _may_see_details(aviso):
            return jsonify(ok=alive.ok), status
        version = aviso.content.active_version()
        depths = {name: Queue(name, connection=aviso.connection).count for name in queues.ALL}
    except REDIS_ERRORS:
        return jsonify(ok=False), 503
    return jsonify(ok=alive.ok, redis=True, content_version=version, queues=depths, workers=alive.workers,
                   scheduler=alive.scheduler_alive), status


@bp.get("/healthz/web")
def web():
    """{"ok": true} while this web process reaches Redis: for load balancers, which must not take every web
    process out of rotation (and stop answering families) because a worker died."""
    try:
        services.current().webhook_connection.ping()
    except REDIS_ERRORS:
        return jsonify(ok=False), 503
    return jsonify(ok=True), 200


def _may_see_details(aviso) -> bool:
    """Queue depths tell how busy an incident is: only this machine or a signed-in admin may see them."""
    address = dashboard_auth.client_address(aviso.settings.trusted_proxies)
    try:
        if ipaddress.ip_address(address).is_loopback:
            return True
    except ValueError:
        pass
    member = dashboard_auth.current_staff(aviso)
    return member is not None and member.role == "admin"
