"""The operator's commands: `aviso doctor` (is this deployment set up as Aviso needs?), `aviso backup FILE` and
`aviso restore FILE` (an encrypted snapshot of everything Aviso keeps in Redis)."""

from __future__ import annotations

import sys

import click

from bot.cli.context import settings as _settings

MARKS = {"OK": "green", "WARN": "yellow", "FAIL": "red"}


@click.command()
def doctor() -> None:
    """Check this deployment: Redis settings, keys, public URL, Twilio's URLs, worker, scheduler, content."""
    from bot.services import doctor as checks

    report = checks.diagnose(_settings())
    width = max(len(check.name) for check in report.checks)
    for check in report.checks:
        click.echo(click.style(f"{check.status:5}", fg=MARKS[check.status], bold=True) +
                   f" {check.name:{width}}  {check.advice}")
    tally = {status: sum(check.status == status for check in report.checks) for status in MARKS}
    click.echo(f"{tally['FAIL']} FAIL, {tally['WARN']} WARN, {tally['OK']} OK")
    if report.failed:
        sys.exit(1)


COMMANDS = (doctor,)
