"""What every `aviso` command starts from: the settings, and an app with its services."""

from __future__ import annotations

import click

from bot.config import ConfigError, Settings, load_settings


def settings(default_env: str = "production") -> Settings:
    """The settings from the environment; a bad one ends the command with one clear line."""
    try:
        return load_settings(default_env=default_env)
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None


def services(chosen: Settings):
    """An app built with these settings, and its services."""
    from bot import create_app  # imported here: most commands need no app
    from bot import services as app_services

    app = create_app(chosen)
    return app, app_services.current_from(app)


def aviso():
    """The services of an app built from the environment's settings."""
    return services(settings())[1]


def member(aviso, staff_id: str):
    """A staff member by id; an unknown id ends the command with one clear line."""
    found = aviso.roster.get(staff_id)
    if found is None:
        raise click.ClickException(f"no staff member {staff_id} (aviso staff list)")
    return found
