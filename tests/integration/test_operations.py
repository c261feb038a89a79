"""README "Operations: metrics, request ids, readiness": request ids on every answer,
readiness, and Prometheus metrics, on the app itself (both databases) and on real `hal serve`
processes."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hal.app import create_app
from hal.config import Settings
from hal.db.engine import Database
from hal.logs import RequestIdFilter
from tests.factories import (
    TestProject,
    identify_payload,
    make_project,
    make_token,
    unique,
    unique_email,
)
from tests.integration.test_webhook_delivery import drop_endpoint, endpoint_for
from tests.receiver import running_receiver
from tests.servers import Worker, free_port, running_server

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
async def metered(database: Database) -> AsyncIterator[httpx.AsyncClient]:
    """The app with HAL_METRICS=true, over ASGI."""
    app = create_app(Settings(database_url=database.url, metrics=True), database=database)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hal.test") as http:
        yield http


async def scrape(http: httpx.AsyncClient) -> Samples:
    response = await http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


async def test_every_answer_carries_a_request_id(widget, project: TestProject):
    http = widget.http
    for response in [
        await http.get("/healthz"),
        await http.get("/no/such/page"),
        await widget.identify(project, user_id=unique("u")),
        await widget.identify(project),  # refused: no user_id or email
        await http.post("/api/widget/identify", content=b"{", headers={"content-type": "x"}),
    ]:
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"]), response


async def test_a_well_formed_request_id_is_kept_and_another_is_replaced(widget):
    http = widget.http
    kept = "req-1.A_b"
    assert (await http.get("/healthz", headers={"X-Request-ID": kept})).headers[
        "x-request-id"
    ] == kept
    for bad in ["has space", "x" * 129, "semi;colon", "é"]:
        headers = {"X-Request-ID": bad.encode("utf-8")}
        answered = (await http.get("/healthz", headers=headers)).headers["x-request-id"]
        assert answered != bad and re.fullmatch(r"[0-9a-f]{32}", answered)


async def test_metrics_are_not_served_unless_enabled(widget):
    assert (await widget.http.get("/metrics")).status_code == 404


async def test_readyz_answers_200_while_the_database_answers(widget):
    response = await widget.http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_503_when_the_database_is_unreachable():
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    app = create_app(Settings(database_url=url))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hal.test") as http:
        response = await http.get("/readyz")
        assert (await http.get("/healthz")).status_code == 200  # liveness is not readiness
    await app.state.database.dispose()
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "database_unavailable"
    assert "SELECT" not in error["message"]
    assert response.headers["x-request-id"]


async def test_identify_outcomes_are_counted(metered: httpx.AsyncClient, new_project):
    project = await new_project()
    before = await scrape(metered)

    async def identify(**fields: object) -> httpx.Response:
        return await metered.post("/api/widget/identify", json=identify_payload(project, **fields))

    user = unique("u")
    assert (await identify(user_id=user)).status_code == 200  # created
    assert (await identify(user_id=user)).status_code == 200  # matched
    email = unique_email()
    assert (await identify(email=email)).status_code == 200  # created (a lead)
    assert (await identify(user_id=unique("u"), email=email)).status_code == 200  # claimed
    lead_email = unique_email("lead")
    assert (await identify(email=lead_email)).status_code == 200  # created (a lead)
    assert (await identify(user_id=user, email=lead_email)).status_code == 200  # merged
    assert (await identify()).status_code == 422  # refused
    assert (await identify(user_id=" padded ")).status_code == 422  # refused

    after = await scrape(metered)

    def moved(outcome: str) -> float:
        return value(after, "hal_identify_total", outcome=outcome) - value(
            before, "hal_identify_total", outcome=outcome
        )

    assert {o: moved(o) for o in ["created", "matched", "claimed", "merged", "refused"]} == {
        "created": 3,
        "matched": 1,
        "claimed": 1,
        "merged": 1,
        "refused": 2,
    }
    route = {"method": "POST", "route": "/api/widget/identify"}
    ok = value(after, "hal_http_requests_total", status="200", **route) - value(
        before, "hal_http_requests_total", status="200", **route
    )
    assert ok == 6
    histogram = value(after, "hal_http_request_duration_seconds_count", **route) - value(
        before, "hal_http_request_duration_seconds_count", **route
    )
    assert histogram == 8


async def test_requests_are_labelled_by_route_template_never_raw_path(metered, new_project):
    project = await new_project()
    await metered.get(f"/api/projects/{project.app_id}/contacts/12345")  # 401, no token
    await metered.get("/wp-login.php")
    samples = await scrape(metered)
    routes = {dict(labels).get("route") for name, labels in samples if name.startswith("hal_http")}
    assert "/api/projects/{app_id}/contacts/{contact_id}" in routes
    assert "unmatched" in routes
    assert not any(project.app_id in str(route) or "wp-login" in str(route) for route in routes)


async def test_pool_use_is_reported(metered):
    samples = await scrape(metered)
    assert value(samples, "hal_db_pool_size") >= 1
    assert value(samples, "hal_db_pool_checked_out") >= 0
    assert value(samples, "hal_webhook_oldest_undelivered_seconds") >= 0
    assert ("hal_webhook_oldest_undelivered_seconds", frozenset()) in samples


PROCESS_METRICS = (
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
)


def by_pid(samples: Samples, name: str) -> dict[str, float]:
    return {dict(labels)["pid"]: v for (n, labels), v in samples.items() if n == name}


def assert_runtime_metrics(samples: Samples, pids: set[str]) -> None:
    """Each process's own numbers by pid, and the garbage collector's counts by generation."""
    for name in PROCESS_METRICS:
        assert set(by_pid(samples, name)) == pids, name
    for pid in pids:
        assert by_pid(samples, "process_resident_memory_bytes")[pid] > 10_000_000
        assert by_pid(samples, "process_open_fds")[pid] >= 3
        assert 0 < by_pid(samples, "process_start_time_seconds")[pid] <= time.time()
    for name in ("python_gc_collections_total", "python_gc_objects_collected_total"):
        assert value(samples, name, generation="0") > 0, name
    assert ("python_gc_objects_uncollectable_total", frozenset({("generation", "2")})) in samples
    assert any(name == "python_info" for name, _ in samples)


async def test_process_and_runtime_metrics_are_reported(metered):
    await metered.get("/healthz")
    samples = await scrape(metered)
    assert_runtime_metrics(samples, {str(os.getpid())})
    cpu = by_pid(samples, "process_cpu_seconds_total")[str(os.getpid())]
    assert (
        cpu > 0
        and cpu <= by_pid(await scrape(metered), "process_cpu_seconds_total")[str(os.getpid())]
    )


# Real processes: `hal serve --workers 2` counting in one multiprocess folder.


@asynccontextmanager
async def open_stream(url: str, app_id: str, token: str) -> AsyncIterator[None]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as http:
        headers = {"Authorization": f"Bearer {token}"}
        async with http.stream("GET", f"{url}/api/projects/{app_id}/stream", headers=headers) as r:
            assert r.status_code == 200
            yield


def scrape_fresh(url: str) -> Samples:
    """One scrape on a new connection (whichever worker accepts it answers)."""
    response = httpx.get(f"{url}/metrics", headers={"Connection": "close"}, timeout=10)
    assert response.status_code == 200, response.text
    return parse(response.text)


async def until(check: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.1)


@pytest.mark.server
async def test_metrics_add_up_across_worker_processes(database_url, database):
    project = await make_project(database)
    token = await make_token(database, project)
    pool = database.engine.sync_engine.pool
    per_process = pool.size() + pool._max_overflow
    env = {
        "HAL_METRICS": "true",
        "HAL_WEBHOOKS_ALLOW_PRIVATE": "true",
        "HAL_WEBHOOK_POLL_SECONDS": "0.1",
    }
    with running_receiver() as receiver:
        endpoint = await endpoint_for(database, project, receiver.url)
        try:
            with running_server(database_url, workers=2, env=env) as url:
                # Both workers are up (the server answers as soon as one is) when the sum of
                # their pools is: one worker alone shows one pool.
                await until(lambda: value(scrape_fresh(url), "hal_db_pool_size") == 2 * per_process)
                async with open_stream(url, project.app_id, token):
                    for _ in range(6):  # new connections: both workers take some
                        async with httpx.AsyncClient(base_url=url) as http:
                            body = identify_payload(project, user_id=unique("u"))
                            assert (await http.post("/api/widget/identify", json=body)).is_success
                    async with httpx.AsyncClient(base_url=url) as http:
                        refused = await http.post(
                            "/api/widget/identify", json=identify_payload(project)
                        )
                        assert refused.status_code == 422
                    await receiver.wait_for(6)
                    await until(
                        lambda: (
                            value(
                                scrape_fresh(url),
                                "hal_webhook_deliveries_total",
                                result="delivered",
                            )
                            == len(receiver.requests)
                        )
                    )
                    for _ in range(6):  # every worker answers with every worker's numbers
                        samples = scrape_fresh(url)
                        assert value(samples, "hal_identify_total", outcome="created") == 6
                        assert value(samples, "hal_identify_total", outcome="refused") == 1
                        assert value(samples, "hal_open_streams") == 1
                        assert value(samples, "hal_db_pool_size") == 2 * per_process
                        delivered = "hal_webhook_deliveries_total"
                        assert value(samples, delivered, result="delivered") == len(
                            receiver.requests
                        )
                        assert value(samples, "hal_webhook_attempt_duration_seconds_count") >= 6
                        assert value(samples, "hal_webhook_oldest_undelivered_seconds") == 0
                        requests = value(
                            samples,
                            "hal_http_requests_total",
                            method="POST",
                            route="/api/widget/identify",
                            status="200",
                        )
                        assert requests == 6
                await until(lambda: value(scrape_fresh(url), "hal_open_streams") == 0)
                # Each worker's process metrics by its pid, whichever worker answers.
                workers = set(by_pid(scrape_fresh(url), "process_resident_memory_bytes"))
                assert len(workers) == 2
                for _ in range(4):
                    assert_runtime_metrics(scrape_fresh(url), workers)
        finally:
            await drop_endpoint(database, endpoint.id)


@pytest.mark.server
async def test_json_log_lines_carry_the_request_id_and_no_secrets(database_url, database, tmp_path):
    project = await make_project(database)
    log = tmp_path / "server.log"
    env = {"HAL_LOG_FORMAT": "json"}
    token = await make_token(database, project)
    email, user_id = unique_email("private"), unique("private-user")
    with running_server(database_url, log=log, env=env, log_level="info") as url:
        async with httpx.AsyncClient(base_url=url) as http:
            body = identify_payload(project, user_id=user_id, email=email, signed=True)
            headers = {"X-Request-ID": "trace-7.a_b"}
            identified = await http.post("/api/widget/identify", json=body, headers=headers)
            assert identified.is_success
            session_token = identified.json()["session_token"]
            missing = await http.get("/nowhere", headers={"X-Request-ID": "bad id"})
            query = {"app_id": project.app_id, "visitor_id": "v0", "session_token": session_token}
            await http.get("/api/widget/stream", params=query)
            auth = {"Authorization": f"Bearer {token}"}
            await http.get(f"/api/projects/{project.app_id}/contacts?email={email}", headers=auth)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert all(isinstance(line, dict) and "message" in line for line in lines)
    access = [line for line in lines if line.get("logger") == "hal.access"]
    traced = [line for line in access if line.get("request_id") == "trace-7.a_b"]
    assert len(traced) == 1
    assert traced[0]["route"] == "/api/widget/identify"
    assert traced[0]["status"] == 200
    assert traced[0]["level"] == "info"
    replaced = [
        line for line in access if line.get("request_id") == missing.headers["x-request-id"]
    ]
    assert replaced and replaced[0]["status"] == 404 and replaced[0]["route"] == "unmatched"
    assert any(line.get("logger", "").startswith("uvicorn") for line in lines)  # uvicorn's too
    text = log.read_text()
    for secret in [email, user_id, project.hash(user_id), session_token, token, project.secret]:
        assert secret not in text


@pytest.mark.server
async def test_a_worker_sharing_the_folder_is_counted_by_the_server(
    database_url, database, tmp_path
):
    """`hal worker` beside `hal serve` on one host: its deliveries show in the server's
    /metrics, and in its own on --metrics-port."""
    project = await make_project(database)
    worker_port = free_port()
    shared = {
        "HAL_METRICS": "true",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "HAL_WEBHOOKS_ALLOW_PRIVATE": "true",
        "HAL_WEBHOOK_POLL_SECONDS": "0.1",
    }
    (tmp_path / "metrics").mkdir()
    with running_receiver() as receiver:
        endpoint = await endpoint_for(database, project, receiver.url)
        worker = Worker(
            database_url, env={**shared, "HAL_WORKER_METRICS_PORT": str(worker_port)}
        ).start()
        try:
            with running_server(database_url, env={**shared, "HAL_WEBHOOK_WORKER": "false"}) as url:
                async with httpx.AsyncClient(base_url=url) as http:
                    for _ in range(3):
                        body = identify_payload(project, user_id=unique("u"))
                        assert (await http.post("/api/widget/identify", json=body)).is_success
                await receiver.wait_for(3)
                delivered = "hal_webhook_deliveries_total"
                await until(
                    lambda: (
                        value(scrape_fresh(url), delivered, result="delivered")
                        == len(receiver.requests)
                    )
                )
                own = parse(httpx.get(f"http://127.0.0.1:{worker_port}/", timeout=5).text)
                assert value(own, delivered, result="delivered") == len(receiver.requests)
        finally:
            worker.stop()
            await drop_endpoint(database, endpoint.id)


async def test_a_500_carries_the_request_id_and_its_traceback_line_too(database, caplog):
    app = create_app(Settings(database_url=database.url), database=database)

    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/broken", broken)  # a route with a bug, for this test only
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(RequestIdFilter())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://hal.test") as http:
        response = await http.get("/broken", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert response.headers["x-request-id"] == "boom-1"
    traceback = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert [r.request_id for r in traceback] == ["boom-1"]
    access = [r for r in caplog.records if r.name == "hal.access"]
    assert [(r.request_id, r.status) for r in access] == [("boom-1", 500)]


_SETTLED = """
import asyncio, gc
from hal.server import GC_THRESHOLDS, served_app

async def main():
    app = served_app()
    before = gc.get_freeze_count()
    async with app.router.lifespan_context(app):
        assert before == 0 and gc.get_freeze_count() > 50_000, (before, gc.get_freeze_count())
        assert gc.get_threshold() == GC_THRESHOLDS, gc.get_threshold()

asyncio.run(main())
"""


async def test_a_served_process_keeps_what_it_started_with_out_of_the_collector(
    database_url, database
):
    """`hal serve`'s app (hal.server.served_app) freezes what it holds once started: the
    oldest generation's collection no longer walks the whole process (bench/RESULTS.md)."""
    env = {**os.environ, "HAL_DATABASE_URL": database_url}
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", _SETTLED], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
