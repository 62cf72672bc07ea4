"""The fake Twilio's Content API: WhatsApp templates (ContentAndApprovals, Content/{sid}, its ApprovalRequests),
as `aviso twilio templates` lists them. Add one with FakeTwilio.add_content(name, language, body)."""

import time

from bot.twilio.fake import envelopes
from bot.twilio.fake.state import error_body, iso8601, new_sid

CONTENT = "/content/v1"


def add(state, friendly_name, language, body, status="approved", category="UTILITY"):
    """Register a template (a twilio/text Content with a WhatsApp approval) and return its JSON."""
    sid, now = new_sid("HX"), iso8601(time.time())
    url = f"https://content.twilio.com/v1/Content/{sid}"
    content = {
        "account_sid": state.config["account_sid"], "date_created": now, "date_updated": now, "sid": sid,
        "friendly_name": friendly_name, "language": language, "types": {"twilio/text": {"body": body}},
        "variables": {str(n): "" for n in range(1, body.count("{{") + 1)}, "url": url,
        "links": {"approval_create": url + "/ApprovalRequests/whatsapp", "approval_fetch": url + "/ApprovalRequests"},
        "approval_requests": {"name": friendly_name, "category": category, "status": status, "rejection_reason": "",
                              "content_type": "twilio/text", "allow_category_change": True},
    }
    with state.lock:
        state.contents[sid] = content
    return dict(content)


def routes(add_route, api, state):
    """The Content API's routes on the fake's app (api wraps each with latency, auth and recording)."""
    def listing(request, params):
        with state.lock:
            items = [dict(c) for c in state.contents.values()]
        return 200, envelopes.v1_list("https://content.twilio.com/v1/ContentAndApprovals", "contents", items), None

    def one(request, params):
        found = state.contents.get(request.match_info["sid"])
        if found is None:
            return 404, error_body(20404, path=request.path), None
        return 200, {k: v for k, v in found.items() if k != "approval_requests"}, None

    def approvals(request, params):
        found = state.contents.get(request.match_info["sid"])
        if found is None:
            return 404, error_body(20404, path=request.path), None
        return 200, {"sid": found["sid"], "account_sid": found["account_sid"], "url": found["links"]["approval_fetch"],
                     "whatsapp": {k: v for k, v in found["approval_requests"].items() if k != "content_type"}}, None

    add_route("GET", CONTENT + "/ContentAndApprovals", api(listing))
    add_route("GET", CONTENT + "/Content/{sid}", api(one))
    add_route("GET", CONTENT + "/Content/{sid}/ApprovalRequests", api(approvals))
