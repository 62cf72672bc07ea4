"""Local fake of the Twilio REST API parts Aviso calls: aiohttp, artificial latency, faults, recording."""

# Run it: python -m bot.twilio.fake --port 8899 --latency-ms 150, or in-process: `with FakeTwilio() as fake:`
# and make_client(fake.account_sid, fake.auth_token, api_base_url=fake.url). Settings: fake.state.DEFAULTS.

import asyncio
import base64
import binascii
import heapq
import hmac
import itertools
import threading
import time

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from bot.twilio.fake import content_api, envelopes
from bot.twilio.fake.calls import FakeCalls
from bot.twilio.fake.state import API_VERSION, FakeState, error_body, iso8601, rfc2822

ACCOUNT = f"/{API_VERSION}/Accounts/{{account}}"  # route prefix of the 2010-04-01 API
SERVICES = "/messaging/v1/Services"  # route prefix of the Messaging Services API
CALLBACK_TIMEOUT_S = 10.0  # status callback POSTs give up after this
START_TIMEOUT_S = 10.0  # start() waits this long for the server to listen
SHUTDOWN_TIMEOUT_S = 1.0  # stop() lets in-flight (e.g. hung) requests finish this long
STATUS_TICK_S = 0.005  # how often messages without status callbacks move along their life cycle


class FakeTwilio:
    """The fake server: start()/stop() it (or use `with`), point a client at .url, inspect what it saw."""

    def __init__(self, host="127.0.0.1", port=0, *, phone_numbers=(), messaging_services=(), seed=None,
                 **config):
        """Configure it: config names are those of fake.state.DEFAULTS."""
        self.host, self.port, self.url = host, port, None
        self.calls = FakeCalls(self)  # the Calls API: its settings are fake.calls.CALL_DEFAULTS
        self.state = FakeState(phone_numbers, messaging_services, seed, **self.calls.configure(**config))
        self._loop = self._thread = self._runner = self.session = None
        self._tasks = set()
        # Messages whose life cycle posts no callback: (due, seq, stored, status, error code), moved along
        # by one task instead of a task and three timers each (a broadcast benchmark accepts thousands).
        self._due, self._seq = [], itertools.count()

    account_sid = property(lambda self: self.state.config["account_sid"], doc="Accepted account sid.")
    auth_token = property(lambda self: self.state.config["auth_token"], doc="Accepted auth token.")

    def start(self):
        """Serve from a background thread with its own event loop; return self once listening."""
        ready, errors = threading.Event(), []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, args=(ready, errors), name="fake-twilio",
                                        daemon=True)
        self._thread.start()
        if not ready.wait(START_TIMEOUT_S) or errors:
            raise RuntimeError(f"fake Twilio did not start: {errors}")
        return self

    def stop(self):
        """Stop serving and wait for the thread to end."""
        if self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def add_content(self, friendly_name, language, body, status="approved", **fields):
        """Add a WhatsApp template to the Content API (status: approved, pending, rejected...); its JSON."""
        return content_api.add(self.state, friendly_name, language, body, status, **fields)

    def configure(self, **kw):
        """Change settings at run time; return them all."""
        return {**self.state.configure(**self.calls.configure(**kw)), **self.calls.config}

    def config(self):
        """Current settings."""
        return self.configure()

    def reset(self):
        """Forget recorded requests, messages, calls and callbacks."""
        self.state.reset()
        self.calls.reset()

    def requests(self):
        """Every Twilio API request seen, oldest first."""
        with self.state.lock:
            return list(self.state.records)

    def messages(self):
        """Accepted messages as Twilio JSON (current status), oldest first."""
        with self.state.lock:
            return [dict(m["json"]) for m in self.state.messages]

    def callbacks(self):
        """Status callbacks posted: url, params, signature, HTTP status or error."""
        with self.state.lock:
            return list(self.state.callbacks)

    def stats(self):
        """Counts per status and error code, accepted segments and calls, busiest 1 s windows."""
        return {**self.state.stats(), **self.calls.stats()}

    def duplicates(self):
        """{(to, body or 'ContentSid ContentVariables'): times} for content accepted more than once."""
        return self.state.duplicates()

    def phone_numbers(self):
        """IncomingPhoneNumbers by sid, as Twilio JSON."""
        with self.state.lock:
            return {sid: dict(n) for sid, n in self.state.numbers.items()}

    def services(self):
        """Messaging Services by sid, as Twilio JSON."""
        with self.state.lock:
            return {sid: dict(s) for sid, s in self.state.services.items()}

    def _run(self, ready, errors):
        """Thread body: start the server, run the loop until stop(), then clean up."""
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except Exception as exc:  # reported by start()
            errors.append(exc)
        ready.set()
        if not errors:
            loop.run_forever()
        loop.run_until_complete(self._shutdown())
        loop.close()

    async def _startup(self):
        """Listen, and open the session used for status callbacks."""
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CALLBACK_TIMEOUT_S))
        self._runner = web.AppRunner(self._app(), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.keep(asyncio.get_running_loop().create_task(self._advance_due()))
        port = self._runner.addresses[0][1]
        self.url = f"http://{f'[{self.host}]' if ':' in self.host else self.host}:{port}"

    async def _shutdown(self):
        """Cancel pending lifecycles, close the server and the session."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner:
            await self._runner.cleanup()
        if self.session:
            await self.session.close()

    def _app(self):
        """Routes: Twilio's, then /_fake/ controls, then a Twilio-style 404 for anything else."""
        app = web.Application()
        add = app.router.add_route
        add("POST", ACCOUNT + "/Messages.json", self._api(self._create_message, faults=True))
        add("GET", ACCOUNT + "/Messages.json", self._api(self._list_messages))
        add("GET", ACCOUNT + "/Messages/{sid}.json", self._api(self._fetch_message))
        add("GET", ACCOUNT + "/IncomingPhoneNumbers.json", self._api(self._list_numbers))
        add("POST", ACCOUNT + "/IncomingPhoneNumbers.json", self._api(self._create_number))
        for method in ("GET", "POST"):
            add(method, ACCOUNT + "/IncomingPhoneNumbers/{sid}.json", self._api(self._number))
        self.calls.routes(add, ACCOUNT, self._api)
        add("GET", SERVICES, self._api(self._list_services))
        for method in ("GET", "POST"):
            add(method, SERVICES + "/{sid}", self._api(self._service))
        content_api.routes(add, self._api, self.state)
        add("GET", "/_fake/requests", _view(self.requests))
        add("GET", "/_fake/messages", _view(self.messages))
        add("GET", "/_fake/callbacks", _view(self.callbacks))
        add("GET", "/_fake/stats", _view(self.stats))
        add("GET", "/_fake/calls", _view(self.calls.snapshot))
        add("GET", "/_fake/duplicates", _view(lambda: [
            {"to": to, "key": key, "count": n} for (to, key), n in self.duplicates().items()]))
        add("*", "/_fake/config", self._config)
        add("POST", "/_fake/reset", self._reset)
        add("*", "/{tail:.*}", self._api(lambda request, params: (404, _not_found(request), None)))
        return app

    async def _config(self, request):
        """GET the settings, or POST a JSON object of changes."""
        if request.method != "POST":
            return web.json_response(self.config())
        try:
            return web.json_response(self.configure(**await request.json()))
        except (TypeError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)

    async def _reset(self, request):
        """Clear the recordings."""
        self.reset()
        return web.json_response({"reset": True})

    def _api(self, handler, faults=False):
        """Wrap a Twilio endpoint with latency, the account's concurrency limit, basic auth, injected faults
        and recording."""
        async def endpoint(request):
            params = dict(request.query)
            if request.method == "POST":
                params.update(await request.post())
            admitted = self.state.open_request()
            try:
                await asyncio.sleep(self.state.latency())
                return await self._answer(request, params, handler, faults, admitted)
            finally:
                if admitted:
                    self.state.close_request()
        return endpoint

    async def _answer(self, request, params, handler, faults, admitted):
        """One API request's answer, recorded (after the latency, while it counts as open)."""
        cfg, fault, segments, headers = self.state.config, None, None, {}
        auth_ok = self._auth_ok(request)
        if not admitted:
            status, body, fault = 429, error_body(20429), "concurrency"
        elif not auth_ok:
            status, body = 401, error_body(20003)
            headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        elif request.match_info.get("account", cfg["account_sid"]) != cfg["account_sid"]:
            status, body = 404, _not_found(request)
        else:
            fault = self.state.take_fault() if faults else None
            if fault == "hang" and not cfg["hang_accepts"]:
                await asyncio.sleep(cfg["hang_seconds"])
                status, body = 503, error_body(20503)
            elif fault == "5xx":
                status = cfg["error_5xx_status"]
                body = error_body(20500 if status == 500 else 20503)
            elif fault == "429":
                status, body = 429, error_body(20429)
            else:
                status, body, segments = handler(request, params)
        self.state.record(request, params, auth_ok, status, body, segments, fault=fault)
        if fault == "hang" and cfg["hang_accepts"]:
            await asyncio.sleep(cfg["hang_seconds"])
        return web.json_response(body, status=status, headers=headers)

    def _auth_ok(self, request):
        """Whether the request's basic auth is the configured account sid and auth token."""
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        cfg = self.state.config
        return (scheme.lower() == "basic" and hmac.compare_digest(user, cfg["account_sid"])
                and hmac.compare_digest(password.encode(), cfg["auth_token"].encode()))

    def _create_message(self, request, params):
        """POST Messages.json: validate, accept, and start the message's delivery lifecycle."""
        now = time.time()
        status, body, segments, stored = self.state.create_message(params, now)
        if stored and stored["callback"] and self.state.config["status_callbacks"]:
            self.keep(asyncio.get_running_loop().create_task(self._lifecycle(stored)))
        elif stored:
            final, code = _fate(stored)
            cfg = self.state.config
            first = "sent" if final != "failed" else final
            heapq.heappush(self._due, (now + cfg["sent_delay_ms"] / 1000.0, next(self._seq), stored, first,
                                       None if first == "sent" else code))
        return status, body, segments

    def keep(self, task):
        """Hold a reference to a background task until it ends (and cancel it on shutdown)."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _advance_due(self):
        """Move callback-less messages to sent, then their final status, as their times come."""
        due = self._due
        while True:
            await asyncio.sleep(STATUS_TICK_S)
            now = time.time()
            while due and due[0][0] <= now:
                _, _, stored, status, code = heapq.heappop(due)
                self.state.advance(stored, status, code)
                if status == "sent":
                    final, code = _fate(stored)
                    heapq.heappush(due, (now + self.state.config["delivered_delay_ms"] / 1000.0, next(self._seq),
                                         stored, final, code))

    def _list_messages(self, request, params):
        """GET Messages.json with To, From, DateSent, DateSent>, DateSent< filters."""
        return 200, envelopes.page(request, params, "messages", self.state.list_messages(params)), None

    def _fetch_message(self, request, params):
        """GET Messages/{sid}.json."""
        message = self.state.find_message(request.match_info["sid"])
        return (200, message, None) if message else (404, _not_found(request), None)

    def _list_numbers(self, request, params):
        """GET IncomingPhoneNumbers.json, PhoneNumber filtering by substring ('*' ignored)."""
        wanted = params.get("PhoneNumber", "").replace("*", "")
        numbers = [n for n in self.phone_numbers().values() if wanted in n["phone_number"]]
        return 200, envelopes.page(request, params, "incoming_phone_numbers", numbers), None

    def _create_number(self, request, params):
        """POST IncomingPhoneNumbers.json: 'buy' PhoneNumber."""
        if not params.get("PhoneNumber"):
            return 400, error_body(21421), None
        number = self.state.add_number(params["PhoneNumber"])
        fields = {k: v for k, v in params.items() if k != "PhoneNumber"}
        return 201, self.state.update(self.state.numbers[number["sid"]], fields, rfc2822), None

    def _number(self, request, params):
        """GET or POST (update SmsUrl, SmsMethod, StatusCallback...) IncomingPhoneNumbers/{sid}.json."""
        number = self.state.numbers.get(request.match_info["sid"])
        if number is None:
            return 404, _not_found(request), None
        if request.method == "POST":
            return 200, self.state.update(number, params, rfc2822), None
        return 200, dict(number), None

    def _list_services(self, request, params):
        """GET /messaging/v1/Services (one page)."""
        services = list(self.services().values())
        return 200, envelopes.v1_list("https://messaging.twilio.com/v1/Services", "services", services), None

    def _service(self, request, params):
        """GET or POST (update InboundRequestUrl, StatusCallback...) /messaging/v1/Services/{sid}."""
        service = self.state.services.get(request.match_info["sid"])
        if service is None:
            return 404, _not_found(request), None
        if request.method == "POST":
            return 200, self.state.update(service, params, iso8601), None
        return 200, dict(service), None

    async def _lifecycle(self, stored):
        """Move an accepted message to sent, then delivered (or its configured failure)."""
        cfg = self.state.config
        final, code = _fate(stored)
        await asyncio.sleep(cfg["sent_delay_ms"] / 1000.0)
        if final != "failed":
            await self._advance(stored, "sent")
            await asyncio.sleep(cfg["delivered_delay_ms"] / 1000.0)
        await self._advance(stored, final, code)

    async def _advance(self, stored, status, error_code=None):
        """Set the message status and, if enabled, POST Twilio's signed status callback."""
        self.state.advance(stored, status, error_code)
        url = stored["callback"]
        if not (url and self.state.config["status_callbacks"]):
            return
        message = stored["json"]
        params = {"AccountSid": message["account_sid"], "ApiVersion": API_VERSION,
                  "MessageSid": message["sid"], "MessageStatus": status, "SmsSid": message["sid"],
                  "SmsStatus": status, "To": message["to"], "From": message["from"] or ""}
        if message["messaging_service_sid"]:
            params["MessagingServiceSid"] = message["messaging_service_sid"]
        if error_code:
            params["ErrorCode"] = str(error_code)
        signature = RequestValidator(self.state.config["auth_token"]).compute_signature(url, params)
        entry = {"url": url, "params": params, "signature": signature, "timestamp": time.time(),
                 "status": None, "error": None}
        try:
            headers = {"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1"}
            async with self.session.post(url, data=params, headers=headers) as response:
                entry["status"] = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            entry["error"] = repr(exc)
        with self.state.lock:
            self.state.callbacks.append(entry)


def _fate(stored):
    """A stored message's final status and error code: delivered, or its configured failure."""
    fate = stored["fate"]
    if not fate:
        return "delivered", None
    return tuple(fate) if isinstance(fate, (list, tuple)) else ("undelivered", fate)


def _view(read):
    """An aiohttp handler answering read() as JSON."""
    async def handler(request):
        return web.json_response(read())
    return handler


def _not_found(request):
    """Twilio's 404 body for this request's path."""
    return error_body(20404, path=request.path)
