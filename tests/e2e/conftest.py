"""Browser-test fixtures: a real Contigo instance served by ``contigo serve`` (waitress) in its own
process, and Debian's Chromium driven by Playwright.

The server is started exactly as an operator would (``contigo init`` with ``--password-file``,
then ``contigo serve``), so these tests cover the console script, the migrations, the vault and
the pages together.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
USERNAME = "ana.supervisora"
PASSWORD = "una-clave-larga-de-prueba"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
START_TIMEOUT_S = 60


def contigo_command() -> list[str]:
    """The ``contigo`` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("contigo")
    if script.exists():
        return [str(script)]
    found = shutil.which("contigo")
    if found is None:
        pytest.fail("the contigo console script is not installed")
    return [found]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """One running ``contigo serve`` process over an instance folder."""

    instance: Path
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    username: str = USERNAME
    password: str = PASSWORD

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _wait_until_up(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"contigo serve exited: {server.log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/login", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    server.stop()
    pytest.fail(f"contigo serve did not answer in {START_TIMEOUT_S}s")


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTIGO_")}
    env.update(extra)
    return env


@dataclass
class Instance:
    """An initialised instance folder that can be served more than once."""

    path: Path
    servers: list[Server] = field(default_factory=list)

    def serve(self, **env: str) -> Server:
        """Start ``contigo serve`` on a free port with extra ``CONTIGO_*`` settings."""
        port = free_port()
        log = self.path / f"serve-{port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*contigo_command(), "--instance", str(self.path), "serve", "--port", str(port)],
                stdout=out, stderr=subprocess.STDOUT, env=_env(env),
            )  # fmt: skip
        server = Server(self.path, port, process, log)
        self.servers.append(server)
        _wait_until_up(server)
        return server


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    """A fresh instance: one Colombian mobile unit and its first supervisor."""
    folder = tmp_path_factory.mktemp("contigo-instance")
    secret = folder.parent / "password.txt"
    secret.write_text(PASSWORD, encoding="utf-8")
    secret.chmod(0o600)
    result = subprocess.run(
        [*contigo_command(), "--instance", str(folder), "init", "--site-code", "PE-UM-01",
         "--site-name", "Unidad móvil Tumbes", "--country", "PE", "--elevation", "10",
         "--username", USERNAME, "--display-name", "Ana Supervisora", "--language", "es",
         "--password-file", str(secret)],
        capture_output=True, text=True, env=_env({}), timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr or result.stdout
    holder = Instance(folder)
    yield holder
    for server in holder.servers:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is not installed (apt-get install chromium)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context at 1366×768, the field laptops' screen."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="es-CO")
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[[Page, str], None]:
    """Save a full-page screenshot into ``test-artifacts/e2e/<test>-NN-<step>.png``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    counter = iter(range(1, 1000))
    test = request.node.name.removeprefix("test_")

    def take(page: Page, name: str) -> None:
        path = ARTIFACTS / f"{test}-{next(counter):02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)

    return take
