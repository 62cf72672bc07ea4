"""Health: GET /healthz for load balancers and people — Redis, content version, queue depths."""

from __future__ import annotations

import redis
from flask import Blueprint, jsonify
from rq import Queue

from bot import services
from bot.store import queues

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """JSON health report; 503 when Redis cannot be reached."""
    aviso = services.current()
    try:
        aviso.connection.ping()
        version = aviso.content.active_version()
        depths = {name: Queue(name, connection=aviso.connection).count for name in queues.ALL}
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return jsonify(redis=False, content_version=None, queues={}), 503
    return jsonify(redis=True, content_version=version, queues=depths), 200
