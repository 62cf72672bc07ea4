"""Twilio REST client factory, optionally pointed at another base URL (e.g. bot.twilio.fake)."""
import base64
import functools
import logging
import os
import re
import ssl
from urllib.parse import quote_plus, urlsplit

import aiohttp
from requests.adapters import HTTPAdapter
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
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


TWILIO_API = "https://api.twilio.com"
_QUIET_LOGGERS = ("twilio.http_client", "twilio.async_http_client")
FORM = "application/x-www-form-urlencoded"


def _quiet() -> None:
    """Keep the library's per-call INFO lines out of the log: they carry query strings (a number, when
    listing messages to it), and ten lines per message slow a broadcast."""
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


PER_RECIPIENT_FIELDS = frozenset({"To"})  # quoted afresh each time: no number stays in a cache


@functools.lru_cache(maxsize=512)
def _quote_shared(value: str) -> str:
    # A broadcast sends the same body, service and callback thousands of times: quote each once.
    return quote_plus(value)


def encode_form(data) -> bytes:
    """A request's form fields, urlencoded as requests and aiohttp would (lists as repeated fields)."""
    pairs = []
    for name, value in (data or {}).items():
        quote = quote_plus if name in PER_RECIPIENT_FIELDS else _quote_shared
        for item in value if isinstance(value, list | tuple) else (value,):
            pairs.append(f"{_quote_shared(str(name))}={quote(str(item))}")
    return "&".join(pairs).encode()


def environ_proxies_and_bundle(target: str) -> tuple[dict[str, str], str | None]:
    """The proxies and CA bundle requests would take from the environment for target, read once: requests
    reads the whole environment again on every call (a fifth of a broadcast's CPU once)."""
    from requests.utils import get_environ_proxies

    return get_environ_proxies(target), os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")


class AsyncPooledHttpClient(AsyncTwilioHttpClient):
    """The library's aiohttp client, on a session owned by one event loop, with the base URL override.

    Open it inside the loop that will use it (`async with`), close it there. Requests carry their basic
    auth as a header (aiohttp deprecated its auth argument) and a form body encoded once per call."""

    def __init__(self, base_url: str | None = None, timeout: float | None = None, connections: int = 100):
        """Configure; the aiohttp session is made by open(), in the running loop."""
        super().__init__(pool_connections=False, timeout=timeout)
        self.base_url = base_url.rstrip("/") if base_url else None
        self.connections = connections
        self.proxy: str | None = None
        self._authorization: dict[tuple[str, str], str] = {}

    async def open(self):
        """Create the session (its connector keeps up to `connections` connections)."""
        # The proxy and CA bundle the synchronous client (requests) would use, read once, not per call.
        target = self.base_url or TWILIO_API
        proxies, bundle = environ_proxies_and_bundle(target)
        self.proxy = proxies.get(urlsplit(target).scheme) or proxies.get("all")
        tls = ssl.create_default_context(cafile=bundle) if bundle else True
        connector = aiohttp.TCPConnector(limit=self.connections, limit_per_host=0, ssl=tls)
        self.session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self

    async def __aenter__(self):
        """Open on entering an async with block."""
        return await self.open()

    def log_request(self, kwargs) -> None:
        """Quiet (see _quiet), and skip formatting lines nobody reads."""
        if self.logger.isEnabledFor(logging.INFO):
            super().log_request(kwargs)

    def log_response(self, status_code, response) -> None:
        """Quiet (see _quiet), and skip formatting lines nobody reads."""
        if self.logger.isEnabledFor(logging.INFO):
            super().log_response(status_code, response)

    def _basic(self, auth) -> str:
        header = self._authorization.get(auth)
        if header is None:
            header = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            self._authorization[auth] = header
        return header

    async def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None,
                      allow_redirects=False):
        """Send the request (to base_url when one is set) and answer the library's Response."""
        if self.session is None:
            raise RuntimeError("open the async Twilio client inside its event loop first")
        if self.base_url:
            url = rewrite_url(url, self.base_url)
        headers = dict(headers or {})
        if auth is not None:
            headers["Authorization"] = self._basic(tuple(auth))
        body = None
        if data:
            body = encode_form(data)
            headers["Content-Type"] = FORM
        kwargs = {"method": method.upper(), "url": url, "params": params, "data": body, "headers": headers,
                  "allow_redirects": allow_redirects, "proxy": self.proxy}
        if timeout is not None:
            kwargs["timeout"] = aiohttp.ClientTimeout(total=timeout)
        self.log_request(kwargs)
        async with self.session.request(**kwargs) as response:
            text = await response.text()
            self.log_response(response.status, response)
            return Response(response.status, text, response.headers)


def make_async_client(account_sid: str, auth_token: str, api_base_url: str | None = None, timeout: float = 10.0,
                      connections: int = 100) -> Client:
    """A twilio Client on an AsyncPooledHttpClient (open its http_client in the loop that uses it)."""
    _quiet()
    http_client = AsyncPooledHttpClient(base_url=api_base_url, timeout=timeout, connections=connections)
    return Client(account_sid, auth_token, http_client=http_client)


def make_client(
    account_sid: str, auth_token: str, api_base_url: str | None = None, timeout: float = 10.0
) -> Client:
    """Return a twilio Client with pooled connections, a request timeout, and an optional base URL."""
    _quiet()
    http_client = PooledHttpClient(base_url=api_base_url, timeout=timeout)
    return Client(account_sid, auth_token, http_client=http_client)
