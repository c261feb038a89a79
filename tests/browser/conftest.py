"""Browser tests: real headless Chromium (Debian's package) driving a real `hal serve`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import chromium_path, require_or_skip
from tests.servers import running_server

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def hal(database_url: str, *args: str, stdin: str | None = None) -> dict[str, Any]:
    """Run the `hal` command line and parse its JSON output."""
    result = subprocess.run(
        [sys.executable, "-m", "hal", *args, "--database-url", database_url],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


@dataclass(frozen=True)
class Site:
    url: str
    database_url: str
    app_id: str
    secret: str
    token: str
    agent_email: str
    agent_password: str


@contextmanager
def serve_site(directory: Path, log: Path) -> Iterator[Site]:
    """A fresh database with the project "acme-app", its agent and a team token, served."""
    database_url = f"sqlite:///{directory / 'hal.db'}"
    hal(database_url, "migrate")
    project = hal(
        database_url, "projects", "create", "--name", "Acme support", "--app-id", "acme-app"
    )
    password = "correct horse battery"
    hal(
        database_url,
        "agents",
        "create",
        "--app-id",
        "acme-app",
        "--email",
        "sam@acme.com",
        "--name",
        "Sam",
        "--password-stdin",
        stdin=password + "\n",
    )
    token = hal(database_url, "tokens", "create", "--app-id", "acme-app")["token"]
    # Webhook receivers in these tests listen on 127.0.0.1.
    allow_private = {"HAL_WEBHOOKS_ALLOW_PRIVATE": "true"}
    with running_server(database_url, log=log, env=allow_private) as url:
        yield Site(
            url,
            database_url,
            "acme-app",
            project["identity_secret"],
            token,
            "sam@acme.com",
            password,
        )


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path) -> Iterator[Site]:
    with serve_site(tmp_path_factory.mktemp("browser"), artifacts_dir / "server-browser.log") as s:
        yield s


@pytest.fixture(scope="module")
def empty_site(tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path) -> Iterator[Site]:
    """A site of the module's own, for tests that count every record of the project."""
    with serve_site(tmp_path_factory.mktemp("empty"), artifacts_dir / "server-empty.log") as s:
        yield s


def cached_npm_package(package: str, needed_for: str) -> Path:
    """An npm package (`name@version`; the package alone, no dependencies) unpacked once with
    `npm pack` into the user's cache; its folder. Skipped locally, failed in CI, when npm
    cannot fetch it."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hal-tests"
    name, _, version = package.rpartition("@") if package.count("@") else (package, "", "")
    target = cache / f"{name}-{version or 'latest'}"
    if (target / "package.json").exists():
        return target
    npm = shutil.which("npm")
    if npm is None:
        require_or_skip(f"npm is not installed (needed for {needed_for})")
    assert npm is not None
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as work:
        packed = subprocess.run(
            [npm, "pack", package, "--silent", "--pack-destination", work],
            capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        if packed.returncode != 0:
            require_or_skip(f"npm pack {package} failed: {packed.stderr.strip()[-300:]}")
        tarball = Path(work) / packed.stdout.strip().splitlines()[-1]
        with tarfile.open(tarball) as archive:
            archive.extractall(work, filter="data")
        shutil.rmtree(target, ignore_errors=True)
        (Path(work) / "package").replace(target)
    return target


def cached_npm_file(package: str, path: str) -> Path:
    """A file of an npm package (see `cached_npm_package`)."""
    return cached_npm_package(package, "the accessibility check") / path


def node_path(needed_for: str) -> str:
    """Node.js, which runs the TypeScript compiler and evaluates the SDK's scripts (skipped
    locally, failed in CI, when it is missing)."""
    node = shutil.which("node")
    if node is None:
        require_or_skip(f"node is not installed (needed for {needed_for})")
    assert node is not None
    return node


@dataclass(frozen=True)
class DemoSite:
    url: str
    database_url: str
    token: str
    port: int
    log: Path

    def team(self, path: str, **params: str | int | float | bool | None) -> dict[str, Any]:
        import httpx

        response = httpx.get(
            f"{self.url}/api/projects/demo{path}",
            params={k: v for k, v in params.items() if v is not None},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document

    def server(self) -> AbstractContextManager[str]:
        """Start (or start again) the demo server on its port."""
        return running_server(
            self.database_url, log=self.log, env={"HAL_DEMO": "true"}, port=self.port
        )


def demo_site(tmp_path: Path, artifacts_dir: Path, name: str) -> DemoSite:
    from tests.servers import free_port

    database_url = f"sqlite:///{tmp_path / 'hal.db'}"
    hal(database_url, "migrate")
    hal(database_url, "projects", "create", "--name", "Demo", "--app-id", "demo")
    token = hal(database_url, "tokens", "create", "--app-id", "demo")["token"]
    port = free_port()
    return DemoSite(
        f"http://127.0.0.1:{port}", database_url, token, port, artifacts_dir / f"server-{name}.log"
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path) -> Iterator[DemoSite]:
    site = demo_site(tmp_path_factory.mktemp("demo"), artifacts_dir, "demo")
    with site.server():
        yield site


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Module-scoped: sync Playwright runs an event loop of its own, which must be gone
    before the asyncio tests of other folders run."""
    executable = chromium_path()
    if executable is None:
        require_or_skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()
