"""Seeing a running Aviso: JSON logs, metrics and error reports, beneath every other package."""
