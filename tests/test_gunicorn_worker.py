"""The web process's gunicorn worker (bot/gunicorn_worker.py) under real gunicorn: one thread, keep-alive,
pipelined requests, and a client that connects and says nothing."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from bot import gunicorn_conf
from tests.conftest import ROOT

REQUEST = b"GET /hello HTTP/1.1\r\nHost: aviso.test\r\n\r\n"
ANSWER_WAIT_SECONDS = 4.0  # gthread with one thread held a silent connection's thread for 5 s


def hello_app(environ, start_response):
    """A WSGI app that answers every request with the path it was asked for."""
    body = f"hello {environ['PATH_INFO']}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture
def server(tmp_path):
    """gunicorn with Aviso's worker class, one process, one thread, on a free port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--worker-class", gunicorn_conf.worker_class, "--workers", "1",
         "--threads", "1", "--keep-alive", "5", "--bind", f"127.0.0.1:{port}",
         "tests.test_gunicorn_worker:hello_app"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as ready:
                ready.sendall(REQUEST)
                if _read_answers(ready, 1):
                    break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise
            time.sleep(0.05)
    yield port
    process.terminate()
    process.wait(20)
    log.close()


def _read_answers(connection: socket.socket, count: int) -> list[bytes]:
    """Read count HTTP answers (each with a Content-Length body) from a connection."""
    data, answers = b"", []
    while len(answers) < count:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            if len(rest) >= length:
                answers.append(head.split(b"\r\n")[0] + b" " + rest[:length])
                data = rest[length:]
                continue
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
    return answers


def test_the_web_process_uses_the_inline_worker():
    assert gunicorn_conf.worker_class == "bot.gunicorn_worker.InlineThreadWorker"


def test_a_client_that_connects_and_says_nothing_does_not_delay_another_clients_answer(server):
    with socket.create_connection(("127.0.0.1", server), timeout=10) as silent:
        with socket.create_connection(("127.0.0.1", server), timeout=ANSWER_WAIT_SECONDS) as other:
            other.sendall(REQUEST)
            assert _read_answers(other, 1) == [b"HTTP/1.1 200 OK hello /hello"]
        silent.sendall(REQUEST.replace(b"/hello", b"/late"))  # it speaks at last: it is answered too
        assert _read_answers(silent, 1) == [b"HTTP/1.1 200 OK hello /late"]


def test_a_kept_alive_connection_is_answered_again_and_pipelined_requests_each_get_their_answer(server):
    with socket.create_connection(("127.0.0.1", server), timeout=10) as connection:
        connection.sendall(REQUEST)
        assert _read_answers(connection, 1) == [b"HTTP/1.1 200 OK hello /hello"]
        connection.sendall(REQUEST.replace(b"/hello", b"/second"))  # the same connection, kept alive
        assert _read_answers(connection, 1) == [b"HTTP/1.1 200 OK hello /second"]
        connection.sendall(b"".join(REQUEST.replace(b"/hello", f"/p{i}".encode()) for i in range(3)))
        assert _read_answers(connection, 3) == [f"HTTP/1.1 200 OK hello /p{i}".encode() for i in range(3)]
