"""The team stream in a browser (README "Change log and live stream"): the customer's server
asks for a ticket with its team token, and a page on the customer's own origin opens the
stream with `new EventSource(url + "?ticket=...")`, which cannot send an Authorization header."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.factories import unique

pytestmark = pytest.mark.browser

PAGE = b"<!doctype html><html lang=en><title>Support dashboard</title><h1>Live changes</h1>"

OPEN_STREAM = """(url) => {
    window.received = [];
    window.state = "connecting";
    const source = new EventSource(url);
    source.onopen = () => { window.state = "open"; };
    source.onerror = () => { window.state = source.readyState === 2 ? "refused" : "retrying"; };
    source.addEventListener("contact.created", (event) => {
        window.received.push(JSON.parse(event.data));
    });
    window.source = source;
}"""


class _Dashboard(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def dashboard() -> Iterator[str]:
    """The customer's own page, served from another origin than HAL's (`localhost` beside
    HAL's `127.0.0.1`): the stream is a cross-origin request, as it is in production."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Dashboard)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def ticket_for(site) -> str:
    """What the customer's backend does: its team token never reaches the browser."""
    answer = httpx.post(
        f"{site.url}/api/projects/{site.app_id}/stream-tickets",
        headers={"Authorization": f"Bearer {site.token}"},
    )
    assert answer.status_code == 201, answer.text
    ticket: str = answer.json()["ticket"]
    return ticket


def test_a_page_opens_the_team_stream_with_a_ticket_and_receives_a_change(page, site, dashboard):
    page.goto(dashboard)
    assert not site.url.startswith(dashboard.rstrip("/"))
    stream_url = f"{site.url}/api/projects/{site.app_id}/stream?ticket={ticket_for(site)}"
    page.evaluate(OPEN_STREAM, stream_url)
    page.wait_for_function("() => window.state === 'open'")

    user_id = unique("streamed")
    identified = httpx.post(
        f"{site.url}/api/widget/identify",
        json={"app_id": site.app_id, "visitor_id": unique("v"), "user_id": user_id},
    )
    assert identified.status_code == 200, identified.text
    page.wait_for_function(
        "(user) => window.received.some((change) => change.data.user_id === user)", arg=user_id
    )
    [change] = [
        c for c in page.evaluate("() => window.received") if c["data"]["user_id"] == user_id
    ]
    assert change["type"] == "contact.created"
    page.evaluate("() => window.source.close()")

    # The ticket was spent by that stream: the same URL is refused, and the browser gives up.
    page.evaluate(OPEN_STREAM, stream_url)
    page.wait_for_function("() => window.state === 'refused'")
