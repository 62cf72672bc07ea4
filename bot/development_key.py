"""The development key: generated once per developer, kept in their config folder, never beside the data."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

SECRET_FILE_NAME = "secret.key"  # the old place of the development key, inside the data folder
DEVELOPMENT_KEY_FILE = "development.key"  # under the user's config folder, away from the Redis data


def config_dir(environ: Mapping[str, str]) -> Path:
    """Where a developer's own Aviso files live: $XDG_CONFIG_HOME/aviso, else ~/.config/aviso."""
    base = (environ.get("XDG_CONFIG_HOME") or "").strip() or None
    if base is None:
        home = (environ.get("HOME") or "").strip() or None
        base = str(Path(home) / ".config") if home else str(Path.home() / ".config")
    return Path(base) / "aviso"


def development_secret(config_dir: Path, data_dir: Path) -> str:
    """The development key, generated once into the user's config folder: a copy of the data folder
    (Redis's AOF and RDB) must not carry the key that protects it. An older key in the data folder moves out."""
    path = config_dir / DEVELOPMENT_KEY_FILE
    old = data_dir / SECRET_FILE_NAME
    if not path.exists():
        config_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = old.read_text().strip() if old.exists() else secrets.token_urlsafe(48)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process of the same start wrote it first
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(key)
    if old.exists() and old.read_text().strip() == path.read_text().strip():
        old.unlink()
    return path.read_text().strip()
