"""The content lock (content/content.lock): the recorded version and a fingerprint of the files, and bumping it."""

from __future__ import annotations

import hashlib
import re
import tomllib
from datetime import date
from pathlib import Path

from bot.content.model import LOCK, MANIFEST

FINGERPRINT_EXCLUDES = {LOCK, "README.md", "CHANGELOG.md"}  # docs about content, not content


def fingerprint(content_dir: Path) -> str:
    """A hash of every content file families read from, to detect edits without a version bump."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(content_dir).rglob("*") if p.is_file()):
        relative = path.relative_to(content_dir).as_posix()
        if relative in FINGERPRINT_EXCLUDES or "__pycache__" in relative:
            continue
        digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def read_lock(content_dir: Path) -> dict:
    """The recorded version and fingerprint, or {} when none was recorded."""
    path = Path(content_dir) / LOCK
    if not path.exists():
        return {}
    with open(path, "rb") as handle:
        return tomllib.load(handle)


def write_lock(content_dir: Path, version: str) -> None:
    """Record the version and the fingerprint of the files as they are now."""
    text = (
        "# Written by `aviso content bump`; do not edit.\n"
        f'version = "{version}"\nfingerprint = "{fingerprint(content_dir)}"\n'
    )
    (Path(content_dir) / LOCK).write_text(text)


def next_version(current: str, today: date) -> str:
    """The version after current: today's date and a counter (2026.11.22.1, 2026.11.22.2, ...)."""
    stem = f"{today.year}.{today.month:02d}.{today.day:02d}"
    if current.startswith(stem + "."):
        tail = current[len(stem) + 1 :]
        if tail.isdigit():
            return f"{stem}.{int(tail) + 1}"
    return f"{stem}.1"


def bump(content_dir: Path, today: date) -> str:
    """Give the content a new version (unless the manifest already has an unrecorded one) and lock it."""
    content_dir = Path(content_dir)
    manifest_path = content_dir / MANIFEST
    manifest_text = manifest_path.read_text()
    current = tomllib.loads(manifest_text)["version"]
    version = current
    if read_lock(content_dir).get("version") == current:
        version = next_version(current, today)
        manifest_text = re.sub(
            r'(?m)^version\s*=\s*"[^"]*"', f'version = "{version}"', manifest_text, count=1
        )
        manifest_path.write_text(manifest_text)
    write_lock(content_dir, version)
    return version
