"""The staff dashboard's door: sign-in with a one-time code by SMS, server-side sessions, CSRF, language.

Privacy: a phone number typed here is kept only as its keyed hash (in the session cookie, which is signed,
not encrypted, and in Redis) and, for the job that texts the code, encrypted. The code is stored as a keyed
hash. The page does the same work and gives the same answer whether or not the number is on the roster:
the roster lookup, the decryption and the SMS happen in a job (bot/web/dashboard/signin_jobs.py). The limits are in
bot/people/signin.py; a browser that signed in before is remembered in a signed cookie (numbers' keyed hashes).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from datetime import timedelta
from functools import wraps

import phonenumbers
from flask import Blueprint, current_app, g, jsonify, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_babel import gettext
from itsdangerous import BadSignature, URLSafeTimedSerializer
from rq import Queue, Retry

from bot import services
from bot.people.signin import Check
from bot.people.staff import StaffMember
from bot.store import keys, queues
from bot.web.dashboard import locale as dashboard_locale
from bot.web.dashboard import signin_jobs
from bot.web.dashboard.labels import label

log = logging.getLogger(__name__)
bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

LIMIT_WINDOW_SECONDS = 15 * 60
# Per window and client address: codes asked for, codes tried. Generous: a school office's staff may all
# sign in from one network during an incident. Per number there is back-off instead (bot/people/signin.py).
LIMITS = {"codes-address": 30, "checks-address": 30}
KNOWN_BROWSER_DAYS = 180
KNOWN_BROWSER_NUMBERS = 5  # staff numbers one browser remembers signing in with
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
HEALTH_PATH = "/healthz"
MACHINE_PATHS = ("/twilio/", "/api/", HEALTH_PATH)
PUBLIC_ENDPOINTS = frozenset({"dashboard.login", "dashboard.login_post", "dashboard.login_code",
                              "dashboard.login_code_post", "dashboard.language"})
JSON_ENDPOINTS = frozenset({"dashboard.preview_json", "dashboard.progress"})
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
DEFAULT_COUNTRY = "US"  # a number typed without +1 is read as a US number
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")

clock = time.time  # tests move it forward to expire a code


@bp.record_once
def _configure(state) -> None:
    """Session cookie: secure (unless development over http), HttpOnly, SameSite=Lax, expiring."""
    app = state.app
    settings = app.config["AVISO_SETTINGS"]
    secure = not (settings.is_development and settings.public_base_url.startswith("http://"))
    app.config.update(
        SESSION_COOKIE_NAME="__Host-aviso" if secure else "aviso_session",
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_PATH="/",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.dashboard_session_hours),
    )
    app.session_interface = PageSessions()
    dashboard_locale.init_app(app, settings)


class PageSessions(SecureCookieSessionInterface):
    """Cookie sessions for the pages people use; Twilio's webhooks, the JSON API and /healthz get none,
    so the webhook does not build a signing serializer for every message. /healthz reads one only when a
    browser sends it (an admin looking at the details; load balancers send no cookie)."""

    def open_session(self, app, request):
        """The session of a page request; a null one for machine endpoints."""
        if request.path == HEALTH_PATH and app.config["SESSION_COOKIE_NAME"] in request.cookies:
            return super().open_session(app, request)
        if request.path.startswith(MACHINE_PATHS):
            return self.make_null_session(app)
        return super().open_session(app, request)


# ---- helpers the views share ------------------------------------------------------------------------

def actor(staff: StaffMember) -> str:
    """How the audit log names a staff member (as the desk does): name and id, never a number."""
    return f"{staff.name} ({staff.id})"


def error_page(status: int, message: str):
    """A small page saying what went wrong (a message already in the staff member's language)."""
    if request.endpoint in JSON_ENDPOINTS:
        return jsonify(error=message), status
    return render_template("dashboard/error.html", message=message, status=status), status


def roles(*allowed: str):
    """Only staff with one of these roles may use the view (403 otherwise)."""

    def decorate(view):
        @wraps(view)
        def checked(*args, **kwargs):
            if g.staff.role not in allowed:
                return error_page(403, gettext("Your role does not allow this."))
            return view(*args, **kwargs)

        return checked

    return decorate


def csrf_token() -> str:
    """This session's CSRF token (made on first use)."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def _csrf_ok() -> bool:
    expected = session.get("csrf") or ""
    given = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD) or ""
    return bool(expected) and hmac.compare_digest(expected.encode(), given.encode())


def safe_next(target: str | None) -> str:
    """A path inside the dashboard to go back to (never another site)."""
    if target and target.startswith(bp.url_prefix + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("dashboard.home")


# ---- sessions -----------------------------------------------------------------------------------------

def _session_key(sid: str) -> str:
    return keys.DASHBOARD_SESSION.format(sid=hashlib.sha256(sid.encode()).hexdigest())


def start_session(aviso, member: StaffMember) -> None:
    """A fresh session (new id and CSRF token: nothing from before sign-in carries over but the language)."""
    lang = session.get("lang")
    session.clear()
    sid = secrets.token_urlsafe(32)
    aviso.connection.set(_session_key(sid), member.id, ex=aviso.settings.dashboard_session_hours * 3600)
    session.permanent = True
    session.update(sid=sid, csrf=secrets.token_urlsafe(32))
    if lang:
        session["lang"] = lang
    aviso.roster.set_language(member.id, dashboard_locale.current_code())  # their notices' language


def end_session(aviso) -> None:
    """Sign out: the server forgets the session, the cookie keeps only the language."""
    sid = session.get("sid")
    if sid:
        aviso.connection.delete(_session_key(sid))
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang


def current_staff(aviso) -> StaffMember | None:
    """The signed-in member, or None (no session, expired, signed out, or no longer on the roster)."""
    sid = session.get("sid")
    if not sid:
        return None
    staff_id = aviso.connection.get(_session_key(sid))
    member = aviso.roster.get(staff_id.decode()) if staff_id else None
    if member is None:
        end_session(aviso)
    return member


# ---- codes and attempt limits ------------------------------------------------------------------------

def normalize_phone(raw: str) -> str | None:
    """E.164 from what a person types (+1 213 555 0101, (213) 555-0101...), or None."""
    try:
        number = phonenumbers.parse((raw or "").strip(), DEFAULT_COUNTRY)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _limited(aviso, kind: str, who: str) -> bool:
    """Count one attempt; True when this window's limit is passed."""
    key = keys.DASHBOARD_LIMIT.format(kind=kind, who=who)
    pipe = aviso.connection.pipeline(transaction=True)
    pipe.incr(key)
    pipe.ttl(key)
    count, ttl = pipe.execute()
    if ttl < 0:
        aviso.connection.expire(key, LIMIT_WINDOW_SECONDS)
    return count > LIMITS[kind]


def _spent(aviso, kind: str, who: str) -> bool:
    """True when this window's limit is passed already (nothing counted)."""
    return int(aviso.connection.get(keys.DASHBOARD_LIMIT.format(kind=kind, who=who)) or 0) >= LIMITS[kind]


def client_address(trusted_proxies: int) -> str:
    """The client's address: the connection's, or the one the trusted proxies say they were sent by."""
    if trusted_proxies:
        hops = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",") if hop.strip()]
        if len(hops) >= trusted_proxies:
            return hops[-trusted_proxies]
    return request.remote_addr or ""


def _address_hash(aviso) -> str:
    return aviso.keyring.keyed_hash("dashboard-address", client_address(aviso.settings.trusted_proxies))


def _known_browsers() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="aviso-known-browser")


def _known_cookie() -> str:
    return "__Host-aviso-known" if current_app.config["SESSION_COOKIE_SECURE"] else "aviso_known"


def known_numbers() -> list[str]:
    """Keyed hashes of the numbers this browser signed in with (a signed cookie; nothing if tampered)."""
    raw = request.cookies.get(_known_cookie())
    if not raw:
        return []
    try:
        numbers = _known_browsers().loads(raw, max_age=KNOWN_BROWSER_DAYS * 24 * 3600)
    except BadSignature:
        return []
    return [n for n in numbers if isinstance(n, str)] if isinstance(numbers, list) else []


def remember_browser(response, number_hash: str) -> None:
    """Remember on this browser that it signed in with this number: its requests skip others' back-off."""
    numbers = [number_hash] + [n for n in known_numbers() if n != number_hash]
    response.set_cookie(_known_cookie(), _known_browsers().dumps(numbers[:KNOWN_BROWSER_NUMBERS]),
                        max_age=KNOWN_BROWSER_DAYS * 24 * 3600, path="/", httponly=True, samesite="Lax",
                        secure=current_app.config["SESSION_COOKIE_SECURE"])


def _enqueue(aviso, job, *args) -> None:
    """Queue a sign-in job ahead of urgent broadcasts' batches: a staff member may be signing in to approve one.

    The description keeps its arguments (an encrypted number, keyed hashes) out of the worker's log; a
    failed one is kept a day, not RQ's year."""
    Queue(queues.URGENT, connection=aviso.connection).enqueue(
        job, *args, retry=Retry(max=2, interval=[5, 30]), result_ttl=0, failure_ttl=24 * 3600, at_front=True,
        description=f"dashboard {job.__name__}")


# ---- every dashboard request --------------------------------------------------------------------------

@bp.before_request
def _guard():
    aviso = services.current()
    g.aviso = aviso
    if request.method not in SAFE_METHODS and not _csrf_ok():
        return error_page(400, gettext("This form expired or was not sent from the dashboard. Go back, reload the "
                                       "page and try again."))
    g.staff = current_staff(aviso)
    if g.staff is None and request.endpoint not in PUBLIC_ENDPOINTS:
        if request.endpoint in JSON_ENDPOINTS:
            return jsonify(error=gettext("You are signed out. Reload the page and sign in again.")), 401
        return redirect(url_for("dashboard.login"))
    return None


@bp.after_request
def _headers(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@bp.context_processor
def _template_helpers() -> dict:
    return {"label": label, "lang": dashboard_locale.current(), "other_languages": dashboard_locale.others(),
            "staff": g.get("staff"), "csrf_token": csrf_token, "csrf_field": CSRF_FIELD}


# ---- sign-in, sign-out, language ----------------------------------------------------------------------

def _too_many() -> str:
    return gettext("Too many tries. Wait 15 minutes, then try again.")


@bp.get("/login")
def login():
    """Step one: the phone number."""
    if g.staff is not None:
        return redirect(url_for("dashboard.home"))
    return render_template("dashboard/login.html", step="number")


@bp.post("/login")
def login_post():
    """Ask for a code: the same work and answer whether or not the number is on the roster."""
    aviso = g.aviso
    phone = normalize_phone(request.form.get("phone", ""))
    if phone is None:
        return render_template("dashboard/login.html", step="number", error=gettext(
            "That does not look like a phone number. Include the area code.")), 400
    address = _address_hash(aviso)
    # No code while this address may not try one: it could not be used.
    if _limited(aviso, "codes-address", address) or _spent(aviso, "checks-address", address):
        return render_template("dashboard/login.html", step="number", error=_too_many()), 429
    number_hash = aviso.signin.number_hash(phone)
    now = clock()
    ask = aviso.signin.ask(number_hash, known_browser=number_hash in known_numbers(), now=now)
    number_token = aviso.keyring.encrypt(phone)  # for the job, which alone decrypts it and looks it up
    if ask.hammered:
        _enqueue(aviso, signin_jobs.warn_staff, number_token, number_hash, dashboard_locale.current_code())
    if not ask.issued:
        wait = gettext("Codes for this number are spaced out: the next one can go in %(minutes)s min. A code "
                       "already sent to this browser still works, and a browser you signed in with before does "
                       "not wait.", minutes=max(1, -(-ask.wait_seconds // 60)))
        step = "code" if session.get("login") == number_hash and session.get("ticket") else "number"
        return render_template("dashboard/login.html", step=step, error=wait), 429
    ticket = secrets.token_urlsafe(16)
    _enqueue(aviso, signin_jobs.send_code, number_token, number_hash, ticket, dashboard_locale.current_code(),
             ask.tries, now)
    session.update(login=number_hash, ticket=ticket)
    return redirect(url_for("dashboard.login_code"))


@bp.get("/login/code")
def login_code():
    """Step two: the code."""
    if g.staff is not None:
        return redirect(url_for("dashboard.home"))
    if not session.get("login"):
        return redirect(url_for("dashboard.login"))
    return render_template("dashboard/login.html", step="code")


@bp.post("/login/code")
def login_code_post():
    """Check the code: a session for the member it belongs to, or the same refusal for every failure."""
    aviso = g.aviso
    number_hash, ticket = session.get("login") or "", session.get("ticket") or ""
    if _limited(aviso, "checks-address", _address_hash(aviso)):
        return render_template("dashboard/login.html", step="code", error=_too_many()), 429
    code = re.sub(r"\s", "", request.form.get("code", ""))
    checked = Check(None)
    if number_hash and ticket and re.fullmatch(r"[0-9]{6}", code):
        checked = aviso.signin.check(number_hash, ticket, code, clock())
    if checked.budget_spent:
        _enqueue(aviso, signin_jobs.alert_admins, aviso.signin.failure_budget)
    member = aviso.roster.get(checked.staff_id) if checked.staff_id else None
    if member is None:
        error = (gettext("That code had too many wrong tries and no longer works. Start over for a new code.")
                 if checked.used_up else
                 gettext("That code is wrong or has expired. Check the newest text, or start over for a new code."))
        return render_template("dashboard/login.html", step="code", error=error), 400
    start_session(aviso, member)
    aviso.audit.record(actor(member), "signed in", "dashboard")
    response = redirect(url_for("dashboard.home"))
    remember_browser(response, number_hash)
    return response


@bp.post("/logout")
def logout():
    """Sign out everywhere this session was used."""
    end_session(g.aviso)
    return redirect(url_for("dashboard.login"))


@bp.post("/language")
def language():
    """Switch the dashboard to another offered language (kept in the session, across sign-out)."""
    if dashboard_locale.choose(request.form.get("lang", "")) and g.get("staff"):
        g.aviso.roster.set_language(g.staff.id, request.form["lang"])  # their notices' language
    return redirect(safe_next(request.form.get("next")))
