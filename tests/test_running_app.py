"""The README's run command for real: `aviso dev` (embedded Redis, gunicorn, worker), the phone
simulator in Debian's chromium, and `aviso chat` in a terminal."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]
ARTIFACTS = ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def clean_env(data_dir: Path) -> dict[str, str]:
    """A developer's fresh environment: nothing configured but where the data goes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "AVISO_", "REDIS_", "PUBLIC_"))}
    env["AVISO_DATA_DIR"] = str(data_dir)
    env["XDG_CONFIG_HOME"] = str(data_dir.parent / "config")  # the development key, away from the data
    return env


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """`aviso dev` as the README's run command starts it, on a free port, in a clean directory."""
    data_dir = tmp_path_factory.mktemp("dev") / "var"
    port = free_port()
    log = open(data_dir.parent / "dev.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "dev", "--port", str(port)],
        cwd=ROOT, env=clean_env(data_dir), stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        # Web, worker, scheduler and Redis all up: on a machine busy with other work that took over 30 s once.
        wait_for(base + "/healthz", seconds=120.0)
        yield base, data_dir, data_dir.parent / "dev.log"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_run_command_starts_web_worker_and_embedded_redis(running):
    base, data_dir, log_path = running
    with urllib.request.urlopen(base + "/healthz") as response:
        assert response.status == 200
    assert (data_dir / "redis.sock").exists()
    assert (data_dir / "appendonly.aof").exists()  # AOF persistence is on
    expected = (r"Listening on urgent, default, low", r"Scheduler for [a-z, ]+ started")
    deadline = time.monotonic() + 20
    while not all(re.search(line, log_path.read_text()) for line in expected) and time.monotonic() < deadline:
        time.sleep(0.2)
    log = log_path.read_text()
    assert "Phone simulator: " + base + "/dev/phone" in log
    assert re.search(expected[0], log)  # the RQ worker runs
    assert re.search(expected[1], log)  # with its scheduler


def test_aviso_chat_answers_derechos_in_spanish(running, shipped_content):
    base, data_dir, _ = running
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat", "--url", base, "--from", "+13235550111"],
        input="DERECHOS\n1\n", capture_output=True, text=True, cwd=ROOT, env=clean_env(data_dir), timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert shipped_content.text("es", "rights.intro").strip().splitlines()[0] in result.stdout
    assert shipped_content.text("es", "rights.home").strip().splitlines()[0] in result.stdout


@pytest.mark.browser
def test_phone_simulator_answers_derechos_in_spanish(running, shipped_content):
    from playwright.sync_api import expect, sync_playwright

    base, _, _ = running
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 360, "height": 740})
        page.goto(base + "/dev/phone")
        page.get_by_label("Your phone number").fill("+13235550142")
        page.get_by_label("Message").fill("DERECHOS")
        page.get_by_role("button", name="Send").click()
        first_line = shipped_content.text("es", "rights.intro").strip().splitlines()[0]
        expect(page.locator(".from-aviso").last).to_contain_text(first_line)
        page.get_by_label("Message").fill("1")
        page.get_by_label("Message").press("Enter")
        expect(page.locator(".from-aviso")).to_have_count(2)
        home = shipped_content.text("es", "rights.home").strip().splitlines()[0]
        expect(page.locator(".from-aviso").last).to_contain_text(home)
        page.get_by_label("Channel").select_option("whatsapp")
        page.get_by_label("Message").fill("STOP")
        page.get_by_label("Message").press("Enter")
        expect(page.locator(".from-aviso").last).to_contain_text(shipped_content.text("en", "stop.done"))
        page.screenshot(path=str(ARTIFACTS / "simulator-derechos.png"), full_page=True)
        browser.close()


@pytest.mark.browser
def test_the_simulator_keypad_walks_the_real_voice_line(running, shipped_content):
    from playwright.sync_api import expect, sync_playwright

    from bot.content.voice import VoiceContent

    voice = VoiceContent.of(shipped_content)
    base, _, _ = running
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 360, "height": 740})
        page.goto(base + "/dev/phone")
        page.get_by_label("Your phone number").fill("+13235550143")
        page.get_by_role("button", name="Call Aviso").click()
        expect(page.locator(".from-call").first).to_contain_text(voice.say("en", "greeting"))
        page.get_by_role("button", name="Key 2").click()  # Spanish
        expect(page.locator(".from-call").last).to_contain_text(voice.say("es", "menu.main"))
        page.get_by_role("button", name="Key 1").click()  # rights
        expect(page.locator(".from-call").last).to_contain_text(voice.say("es", "menu.rights"))
        page.get_by_role("button", name="Key 1").click()  # at home
        expect(page.locator(".from-call").last).to_contain_text(voice.say("es", "after"))
        expect(page.locator(".from-call").nth(-2)).to_contain_text(voice.say("es", "rights.home")[:60])
        page.get_by_role("button", name="Key 0").click()  # the hotline
        expect(page.locator(".note").last).to_contain_text("(call ended)")
        expect(page.locator(".note", has_text="connecting you to +1")).to_have_count(1)
        browser.close()

