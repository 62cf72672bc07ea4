"""`python -m bot.cli`: the same as the `aviso` command."""

from bot.cli.main import main

main()
