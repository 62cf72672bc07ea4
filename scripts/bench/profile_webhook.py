#!/usr/bin/env python3
"""Where one webhook request's CPU goes: Aviso's WSGI app called in-process, no gunicorn, no threads.

    .venv/bin/python scripts/bench/profile_webhook.py [--requests 20000] [--top 45]

Same production settings, embedded Redis and signed request mix as scripts/bench_webhook.py. Prints
the CPU time per request of the whole app and of the bare app, then cProfile's cumulative times of
the parts of a request (signature check, form parsing, Redis round trips, engine, TwiML, logging),
as microseconds per request.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # scripts/: bench_webhook
sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/bench: bare_app

import bare_app  # noqa: E402
import bench_webhook as bench  # noqa: E402
import reference_bot  # noqa: E402

# cProfile's cumulative rows worth reading, by a substring of "file:line(function)".
PARTS = [
    ("app: whole request (Flask.wsgi_app)", "flask/app.py", "(wsgi_app)"),
    ("  signature check (RequestValidator.validate)", "request_validator.py", "(validate)"),
    ("  form parsing (Request.form)", "werkzeug/wrappers/request.py", "(form)"),
    ("  parse_inbound (incl. phonenumbers)", "bot/web/payloads.py", "(parse_inbound)"),
    ("  Conversations.answer", "bot/services/conversations.py", "(answer)"),
    ("    Redis pipelines (Pipeline.execute)", "redis/client.py", "(execute)"),
    ("    engine (respond)", "bot/conversation/engine.py", "(respond)"),
    ("    TwiML (render_twiml)", "bot/services/conversations.py", "(render_twiml)"),
    ("    contacts.save (incl. Fernet for new contacts)", "bot/people/contacts.py", "(save)"),
    ("    log line (Logger.info)", "logging/__init__.py", "(info)"),
    ("  Flask session open/save", "flask/sessions.py", "(open_session)"),
]


def environ_for(signature: str, body: str) -> dict:
    data = body.encode()
    return {
        "REQUEST_METHOD": "POST", "SCRIPT_NAME": "", "PATH_INFO": bench.WEBHOOK_PATH, "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "5000", "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/x-www-form-urlencoded", "CONTENT_LENGTH": str(len(data)),
        "HTTP_HOST": "127.0.0.1:5000", "HTTP_X_TWILIO_SIGNATURE": signature,
        "wsgi.input": io.BytesIO(data), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
        "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.version": (1, 0),
    }


def run(app, requests: list[str]) -> tuple[float, dict[int, int]]:
    statuses: dict[int, int] = {}

    def start_response(status, headers, exc_info=None):
        code = int(status.split()[0])
        statuses[code] = statuses.get(code, 0) + 1

    started = time.process_time()
    for item in requests:
        signature, body = item.split("\t", 1)
        body_iter = app(environ_for(signature, body), start_response)
        for _chunk in body_iter:
            pass
        if hasattr(body_iter, "close"):  # as a server does once the answer is sent (PEP 3333)
            body_iter.close()
    return (time.process_time() - started) / len(requests), statuses


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--cpu-only", action="store_true", help="only the CPU per request, no cProfile")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds; the least is reported (3)")
    parser.add_argument("--contacts", type=int, default=3000)
    args = parser.parse_args()

    from bot import create_app
    from bot.config import load_settings
    from bot.store import embedded_redis

    workdir = Path(tempfile.mkdtemp(prefix="aviso-profile-"))
    try:
        env = {
            "AVISO_ENV": "production", "AVISO_SECRET_KEY": secrets.token_urlsafe(48),
            "PUBLIC_BASE_URL": bench.PUBLIC_BASE_URL, "TWILIO_ACCOUNT_SID": "AC" + secrets.token_hex(16),
            "TWILIO_AUTH_TOKEN": secrets.token_hex(16), "TWILIO_MESSAGING_SERVICE_SID": "MG" + secrets.token_hex(16),
            "REDIS_URL": embedded_redis.ensure_running(workdir / "redis"), "AVISO_DATA_DIR": str(workdir / "data"),
            "AVISO_CONTENT_DIR": str(bench.ROOT / "content"),
        }
        app = create_app(load_settings(env, dotenv_path=None))
        logging.getLogger().handlers[0].setStream(open(workdir / "app.log", "w"))  # as gunicorn's log file
        from bot import services

        services.current_from(app).ensure_content()
        pool = bench.RequestPool(env["TWILIO_AUTH_TOKEN"], env["TWILIO_ACCOUNT_SID"],
                                 env["TWILIO_MESSAGING_SERVICE_SID"], args.contacts, seed=1)
        n = args.requests
        pool.extend_to(3 * n)
        run(app, pool.items[:n])  # warm: every contact exists, content parsed
        pool.extend_to((3 + args.repeat) * n)
        # The least of several rounds: the machine's other work only ever adds time.
        import redis

        server = redis.Redis.from_url(env["REDIS_URL"])

        def redis_cpu() -> float:
            info = server.info("cpu")
            return info["used_cpu_user"] + info["used_cpu_sys"]

        server.config_resetstat()
        before = redis_cpu()
        per_request, statuses = min((run(app, pool.items[(3 + k) * n : (4 + k) * n]) for k in range(args.repeat)),
                                      key=lambda r: r[0])
        aviso_redis = (redis_cpu() - before) / (args.repeat * n)
        commands = {name: (stats["calls"] / (args.repeat * n), stats["usec_per_call"])
                    for name, stats in server.info("commandstats").items()}
        bare = bare_app.create_app()
        bare_per_request = min(run(bare, pool.items[:n])[0] for _ in range(args.repeat))
        os.environ.update({name: env[name] for name in ("TWILIO_AUTH_TOKEN", "PUBLIC_BASE_URL", "REDIS_URL")})
        reference = reference_bot.create_app()
        before = redis_cpu()
        reference_per_request = min(run(reference, pool.items[:n])[0] for _ in range(args.repeat))
        reference_redis = (redis_cpu() - before) / (args.repeat * n)
        print(f"CPU per request, in-process, one thread: Aviso {per_request * 1e6:.0f} us, "
              f"sample bot {reference_per_request * 1e6:.0f} us, bare {bare_per_request * 1e6:.0f} us "
              f"(statuses {statuses}); Redis server CPU per request: Aviso {aviso_redis * 1e6:.0f} us, "
              f"sample bot {reference_redis * 1e6:.0f} us")
        print("Aviso's Redis commands per request (calls, us each, as Redis times them): " + ", ".join(
            f"{name.removeprefix('cmdstat_')} {calls:.2f} x {usec:.1f}" for name, (calls, usec) in commands.items()))
        if args.cpu_only:
            return
        profiler = cProfile.Profile(time.process_time)  # CPU time: waiting for Redis is not counted
        profiler.enable()
        run(app, pool.items[2 * n : 3 * n])
        profiler.disable()
        stats = pstats.Stats(profiler)
        rows = {f"{path}:{line}({name})": (cc, nc, tt, ct) for (path, line, name), (cc, nc, tt, ct, _) in
                stats.stats.items()}
        print(f"\ncProfile (CPU time), microseconds per request (cumulative; profiling inflates them), {n} requests:")
        for label, path_part, name_part in PARTS:
            matches = [v for k, v in rows.items() if path_part in k and k.endswith(name_part)]
            if matches:
                cumulative = max(v[3] for v in matches)
                print(f"{cumulative / n * 1e6:9.1f}  {label}")
        print(f"\ntop {args.top} by cumulative time:")
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.top)
        print(out.getvalue().split("\n", 6)[-1] if "function calls" in out.getvalue() else out.getvalue())
    finally:
        embedded_redis.stop(workdir / "redis")
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
