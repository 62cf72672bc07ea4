"""The digest of what the lock files are resolved from: pyproject.toml's build requirements, requires-python,
dependencies and extras.

scripts/lock writes it into each requirements/*.txt (`# inputs: ...`); tests/test_install.py recomputes it, so a
dependency changed in pyproject.toml without re-running scripts/lock fails the suite. Other edits of
pyproject.toml (pytest, ruff, package data) do not change it.

    python3 scripts/lock_inputs.py [PYPROJECT]
    python3 scripts/lock_inputs.py --build-requires     # build-system.requires, one a line (scripts/lock)
"""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def inputs(pyproject: Path = ROOT / "pyproject.toml") -> dict:
    """The parts of pyproject.toml a resolution depends on."""
    document = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    project = document["project"]
    return {
        "build-system": sorted(document.get("build-system", {}).get("requires", [])),
        "requires-python": project.get("requires-python", ""),
        "dependencies": sorted(project.get("dependencies", [])),
        "optional-dependencies": {name: sorted(reqs)
                                  for name, reqs in sorted(project.get("optional-dependencies", {}).items())},
    }


def digest(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """sha256 of those parts, in a canonical JSON form."""
    canonical = json.dumps(inputs(pyproject), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--build-requires"]:  # what builds Aviso itself, one requirement a line
        print("\n".join(inputs()["build-system"]))
    else:
        print(digest(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "pyproject.toml"))
