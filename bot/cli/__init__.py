"""The `aviso` command: its groups (staff, broadcasts, workshops) and the development runner."""

from bot.cli.main import main

__all__ = ["main"]
