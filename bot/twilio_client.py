"""Twilio REST client factory, optionally pointed at another base URL (e.g. bot.fake_twilio)."""
import logging
import re

from requests.adapters import HTTPAdapter
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

POOL_CONNECTIONS = 4  # distinct hosts whose connection pools are kept
POOL_MAXSIZE = 64  # connections kept per host, so many threads can share one client

_TWILIO_URL = re.compile(r"^https://([A-Za-z0-9-]+)(?:\.[A-Za-z0-9.-]+)?\.twilio\.com(?=/|$)")


def rewrite_url(url: str, base_url: str) -> str:
    """Map https://api.twilio.com/x to {base}/x and https://<product>.twilio.com/x to {base}/<product>/x."""
    match = _TWILIO_URL.match(url)
    if not match:
        return url
    product = match.group(1)
    prefix = base_url.rstrip("/") + ("" if product == "api" else "/" + product)
    return prefix + url[match.end():]


class PooledHttpClient(TwilioHttpClient):
    """TwilioHttpClient with a large shared connection pool and an optional base URL override."""

    def __init__(self, base_url: str | None = None, timeout: float | None = None):
        """Create the pooled session; base_url, if given, replaces every *.twilio.com host."""
        super().__init__(pool_connections=True, timeout=timeout)
        self.base_url = base_url.rstrip("/") if base_url else None
        for scheme in ("https://", "http://"):
            adapter = HTTPAdapter(pool_connections=POOL_CONNECTIONS, pool_maxsize=POOL_MAXSIZE)
            self.session.mount(scheme, adapter)

    def request(self, method, url, *args, **kwargs):
        """Send the request, to base_url when one is set."""
        if self.base_url:
            url = rewrite_url(url, self.base_url)
        return super().request(method, url, *args, **kwargs)


def make_client(
    account_sid: str, auth_token: str, api_base_url: str | None = None, timeout: float = 10.0
) -> Client:
    """Return a twilio Client with pooled connections, a request timeout, and an optional base URL."""
    # The library logs every call at INFO, query strings included: listing messages to a number
    # would put that number in the log, and ten lines per message slow a broadcast. Every client.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    http_client = PooledHttpClient(base_url=api_base_url, timeout=timeout)
    return Client(account_sid, auth_token, http_client=http_client)
