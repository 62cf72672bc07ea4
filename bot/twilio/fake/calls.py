"""The fake Twilio's Calls API: create a call, list and fetch calls, each call's life cycle and signed status
callbacks (answered, no-answer, busy, failed), injected failures and a calls-per-second cap."""

import asyncio
import time
import uuid
from collections import Counter, deque

import aiohttp
from twilio.request_validator import RequestValidator

from bot.twilio.fake.envelopes import page
from bot.twilio.fake.state import API_VERSION, RECIPIENT, error_body, max_in_window, rfc2822

CALL_DEFAULTS = {
    "calls_per_second": None,  # call creates accepted in any 1 s window, else 429 / 20429 (None: no cap)
    "call_outcomes": {},  # To number -> "no-answer", "busy" or "failed" (else the call is answered: "completed")
    "call_errors": {},  # To number -> error code answered synchronously (21211 invalid number, 21215...)
    "call_429_count": 0,  # the next N call creates are answered 429 / 20429
    "call_5xx_count": 0,  # the next N call creates are answered 500 / 20500
    "ring_ms": 20.0,  # create -> answered (or its failure)
    "call_seconds": 0.05,  # answered -> completed
    "fetch_twiml": True,  # when answered, POST the call's Url (signed) and keep the TwiML it answers
}


class FakeCalls:
    """Calls Twilio accepted, and how each ended. Created by FakeTwilio, which serves its routes."""

    def __init__(self, server):
        self.server = server
        self.config = {k: (v.copy() if isinstance(v, dict) else v) for k, v in CALL_DEFAULTS.items()}
        self.reset()

    def reset(self):
        """Forget accepted calls and their creates' times."""
        self.calls, self.window, self.twiml_posts = [], deque(), []

    def configure(self, **kw):
        """Change the call settings named in kw (the others go to the message settings); return the rest."""
        for name in [name for name in kw if name in CALL_DEFAULTS]:
            self.config[name] = kw.pop(name)
        return kw

    def routes(self, add, account_prefix, api):
        """Register the Calls API's routes."""
        add("POST", account_prefix + "/Calls.json", api(self.create))
        add("GET", account_prefix + "/Calls.json", api(self.list))
        add("GET", account_prefix + "/Calls/{sid}.json", api(self.fetch))

    def _admit(self, now):
        cap = self.config["calls_per_second"]
        while self.window and self.window[0] <= now - 1.0:
            self.window.popleft()
        if cap is not None and len(self.window) >= cap:
            return False
        self.window.append(now)
        return True

    def _injected(self):
        for name, status, code in (("call_429_count", 429, 20429), ("call_5xx_count", 500, 20500)):
            if self.config[name] > 0:
                self.config[name] -= 1
                return status, error_body(code)
        return None

    def create(self, request, params):
        """POST Calls.json: To, From, Url, StatusCallback, StatusCallbackEvent."""
        now = time.time()
        to, sender, url = params.get("To", ""), params.get("From", ""), params.get("Url", "")
        if not to:
            return 400, error_body(21201), None
        if not RECIPIENT.fullmatch(to) or to.startswith("whatsapp:"):
            return 400, error_body(21211, to=to), None
        if not sender:
            return 400, error_body(21210), None
        if not url.startswith(("http://", "https://")):
            return 400, error_body(21205), None
        injected = self._injected()
        if injected:
            return *injected, None
        if not self._admit(now):
            return 429, error_body(20429), None
        code = self.config["call_errors"].get(to)
        if code:
            return 400, error_body(code, to=to), None
        cfg = self.server.state.config
        sid = "CA" + uuid.uuid4().hex
        call = {"sid": sid, "account_sid": cfg["account_sid"], "to": to, "from": sender, "status": "queued",
                "direction": "outbound-api", "date_created": rfc2822(now), "date_updated": rfc2822(now),
                "start_time": None, "end_time": None, "duration": None, "api_version": API_VERSION,
                "uri": f"/{API_VERSION}/Accounts/{cfg['account_sid']}/Calls/{sid}.json"}
        stored = {"json": call, "ts": now, "url": url, "callback": params.get("StatusCallback", ""),
                  "fate": self.config["call_outcomes"].get(to, "completed"), "twiml": None, "events": []}
        self.calls.append(stored)
        self.server.keep(asyncio.get_running_loop().create_task(self._lifecycle(stored)))
        return 201, dict(call), None

    def list(self, request, params):
        """GET Calls.json, To and From filtering, newest first."""
        found = [dict(c["json"]) for c in reversed(self.calls)
                 if params.get("To", c["json"]["to"]) == c["json"]["to"]
                 and params.get("From", c["json"]["from"]) == c["json"]["from"]]
        return 200, page(request, params, "calls", found), None

    def fetch(self, request, params):
        """GET Calls/{sid}.json."""
        sid = request.match_info["sid"]
        call = next((dict(c["json"]) for c in self.calls if c["json"]["sid"] == sid), None)
        return (200, call, None) if call else (404, error_body(20404, path=request.path), None)

    async def _lifecycle(self, stored):
        await asyncio.sleep(self.config["ring_ms"] / 1000.0)
        call = stored["json"]
        if stored["fate"] != "completed":
            await self._status(stored, stored["fate"])
            return
        call["start_time"] = rfc2822(time.time())
        await self._status(stored, "in-progress", notify=False)
        if self.config["fetch_twiml"]:
            stored["twiml"] = await self._post(stored["url"], self._params(stored, "in-progress"), stored)
        await asyncio.sleep(self.config["call_seconds"])
        call["duration"] = str(max(1, round(self.config["call_seconds"])))
        call["end_time"] = rfc2822(time.time())
        await self._status(stored, "completed")

    def _params(self, stored, status):
        call = stored["json"]
        return {"AccountSid": call["account_sid"], "ApiVersion": API_VERSION, "CallSid": call["sid"],
                "CallStatus": status, "Direction": "outbound-api", "From": call["from"], "To": call["to"]}

    async def _status(self, stored, status, notify=True):
        stored["json"]["status"] = status
        stored["json"]["date_updated"] = rfc2822(time.time())
        stored["events"].append(status)
        if notify and stored["callback"]:
            params = self._params(stored, status)
            if status == "completed":
                params["CallDuration"] = stored["json"]["duration"]
            await self._post(stored["callback"], params, stored)

    async def _post(self, url, params, stored):
        """POST a signed request to Aviso; the answer's text (None when it failed)."""
        signature = RequestValidator(self.server.state.config["auth_token"]).compute_signature(url, params)
        entry = {"url": url, "params": params, "signature": signature, "timestamp": time.time(), "status": None,
                 "error": None, "call": stored["json"]["sid"]}
        text = None
        try:
            headers = {"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1"}
            async with self.server.session.post(url, data=params, headers=headers) as response:
                entry["status"], text = response.status, await response.text()
        except (TimeoutError, aiohttp.ClientError) as exc:
            entry["error"] = repr(exc)
        with self.server.state.lock:
            self.server.state.callbacks.append(entry)
        return text

    def snapshot(self):
        """Accepted calls as Twilio JSON, with the TwiML each answered call got and its status events."""
        return [{**dict(c["json"]), "twiml": c["twiml"], "events": list(c["events"]), "created": c["ts"]}
                for c in self.calls]

    def stats(self):
        """Calls accepted, most created in any 1 s window, and how they ended."""
        return {"calls_accepted": len(self.calls),
                "max_calls_in_any_1s_window": max_in_window((c["ts"], 1) for c in self.calls),
                "call_statuses": dict(Counter(c["json"]["status"] for c in self.calls)),
                "call_duplicates": {to: n for to, n in Counter(c["json"]["to"] for c in self.calls).items() if n > 1}}
