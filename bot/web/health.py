"""Health: GET /healthz for load balancers (ok or 503) and, for a signed-in admin or this machine, details:
Redis, content version, queue depths."""

from __future__ import annotations

import ipaddress

from flask import Blueprint, jsonify
from rq import Queue

from bot import services
from bot.store import queues
from bot.store.outage import REDIS_ERRORS
from bot.web.dashboard import auth as dashboard_auth

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """{"ok": true} or 503 for anyone; Redis, content version and queue depths for an admin or localhost."""
    aviso = services.current()
    try:
        aviso.webhook_connection.ping()  # gives up in half a second: a frozen Redis must not hold this worker
        detailed = _may_see_details(aviso)
        if not detailed:
            return jsonify(ok=True), 200
        version = aviso.content.active_version()
        depths = {name: Queue(name, connection=aviso.connection).count for name in queues.ALL}
    except REDIS_ERRORS:
        return jsonify(ok=False), 503
    return jsonify(ok=True, redis=True, content_version=version, queues=depths), 200


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
