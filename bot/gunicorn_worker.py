"""The web process's gunicorn worker: gthread, serving a ready request on its main thread when it has one thread.

gthread's main thread polls the connections and hands each ready one to its thread pool; the pool thread
answers, then hands the connection back through a pipe. With one thread (Aviso's default, several processes
per core instead: bot/gunicorn_conf.py) that relay does no good, since the answers are served one at a time
anyway, and it costs every request two thread wake-ups, two GIL handoffs and a pipe write and read: without
it, an answer cost 492 instead of 584 µs of CPU (workers and Redis) on two cores (docs/bench-webhook.md,
"Issue 12, latest (6 Dec 2026)"). This worker serves the request where the poller found it ready. Everything
else is gthread's own: keep-alive, the timeouts, graceful stops, and with WEB_THREADS above 1 the thread
pool itself.

It differs from gthread with one thread in two ways, both in the worker's favour: a new connection that has
sent nothing yet waits in the poller instead of holding the only thread for up to five seconds, so an idle
client never delays another's answer; and a request that hangs stops the worker's heartbeat, so gunicorn
replaces the worker after `timeout` seconds instead of keeping a process whose only thread is stuck.
"""

from __future__ import annotations

from collections import deque
from concurrent import futures

# _DEFER: what gthread's handle() returns for a connection with nothing to read yet; finish_request() then puts
# it in the poller. Private, hence gunicorn pinned to 27 in pyproject.toml.
from gunicorn.workers.gthread import _DEFER, ThreadWorker


class InlineThreadWorker(ThreadWorker):
    """gthread; with one thread, each ready request is answered on the thread that polls for it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._answering = False
        self._next: deque = deque()  # requests found ready while answering one (a client's pipelined request)

    def enqueue_req(self, conn):
        """Answer the connection's request now (one thread), or hand it to gthread's pool (several)."""
        if self.cfg.threads > 1:
            return super().enqueue_req(conn)
        if self._answering:  # called back from finish_request: answer it after this one, not by recursion
            self._next.append(conn)
            return None
        self._answering = True
        try:
            self._answer(conn)
            while self._next:
                self._answer(self._next.popleft())
        finally:
            self._answering = False
        return None

    def _answer(self, conn):
        finished: futures.Future = futures.Future()  # finish_request() takes the pool's future
        if not conn.initialized and not conn.data_ready and not conn.wait_for_data(0):
            finished.set_result(_DEFER)  # nothing sent yet: wait in the poller, not on this thread
        else:
            conn.data_ready = True  # handle() must not wait for it again
            finished.set_result(self.handle(conn))  # handle() answers every error itself and returns False
        self.finish_request(conn, finished)
