"""Aviso: know-your-rights information and safe-passage alerts for school families, by SMS and WhatsApp."""

from __future__ import annotations

from flask import Flask

from bot.config import Settings, load_settings
from bot.web.forms import AvisoRequest

# Bodies larger than this are refused (413) before they are read: Twilio's webhook forms and the dashboard's
# are a few kilobytes and an API broadcast a few tens, so 1 MiB leaves room without parsing 60 MB of JSON.
MAX_REQUEST_BYTES = 1024 * 1024


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask app; settings default to the environment (and .env)."""
    settings = settings or load_settings()
    app = Flask(__name__)
    app.request_class = AvisoRequest
    app.config["AVISO_SETTINGS"] = settings
    app.config["SECRET_KEY"] = settings.secret_key
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES

    # Imported here, not at the top: importing any bot module (bot.config, the fake Twilio) loads this package,
    # and should not load the whole web app with it.
    from bot import services
    from bot.observability import errors, logs
    from bot.web import api, health, simulator, voice_alert, voice_webhook, webhook, webhook_fast
    from bot.web import metrics as metrics_web
    from bot.web.dashboard import views as dashboard

    logs.configure(settings.log_format)
    errors.init(settings)
    logs.init_app(app)

    services.init_app(app, settings)
    app.register_blueprint(webhook.bp)
    app.register_blueprint(voice_webhook.bp)  # the voice line, /twilio/voice
    app.register_blueprint(voice_webhook.recordings_bp)  # recorded languages' clips, /voice/recordings/
    app.register_blueprint(voice_alert.bp)  # urgent-alert calls: /twilio/voice/alert and /status
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics_web.bp)  # /metrics, and the webhook's timing
    app.register_blueprint(api.bp)
    app.register_blueprint(dashboard.bp)  # the staff dashboard, /dashboard
    if settings.development_tools:
        app.register_blueprint(simulator.bp)  # a signing helper: never with a Twilio account, never in production
    app.wsgi_app = webhook_fast.FastMessages(app, app.wsgi_app)  # families' messages skip Flask's request cycle
    return app
