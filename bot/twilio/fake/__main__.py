"""`python -m bot.twilio.fake`: serve the fake Twilio until interrupted, printing its URL once listening."""

import argparse
import json
import signal
import sys
import time

from bot.twilio.fake.server import FakeTwilio
from bot.twilio.fake.state import DEFAULTS


def main(argv=None):
    """Command line: serve until interrupted, printing the base URL once listening."""
    parser = argparse.ArgumentParser(prog="python -m bot.twilio.fake",
                                     description="Local fake of the Twilio REST API parts Aviso calls.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8899)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--account-sid", default=DEFAULTS["account_sid"])
    parser.add_argument("--auth-token", default=DEFAULTS["auth_token"])
    parser.add_argument("--phone-number", action="append", default=[], help="IncomingPhoneNumber to own")
    parser.add_argument("--messaging-service", action="append", default=[], help="MG sid to own")
    parser.add_argument("--status-callbacks", action="store_true")
    parser.add_argument("--max-segments-per-second", type=float)
    parser.add_argument("--max-concurrent-requests", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--config", default="{}", help="JSON object of any other settings")
    args = parser.parse_args(argv)
    settings = {"latency_ms": args.latency_ms, "jitter_ms": args.jitter_ms, "account_sid": args.account_sid,
                "auth_token": args.auth_token, "status_callbacks": args.status_callbacks,
                "max_segments_per_second": args.max_segments_per_second,
                "max_concurrent_requests": args.max_concurrent_requests, **json.loads(args.config)}
    fake = FakeTwilio(args.host, args.port, phone_numbers=args.phone_number,
                      messaging_services=args.messaging_service, seed=args.seed, **settings)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    fake.start()
    print(fake.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()



main()
