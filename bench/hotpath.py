"""Where a widget call's time goes, in process: the app called as ASGI (no sockets, no HTTP
parsing), each route N times in a loop, the mean per call against echo's, and optionally a
cProfile of one route. Complements bench/run.py (which measures from outside with wrk).

    uv run python bench/hotpath.py [--backend sqlite|postgres] [--calls 2000]
                                   [--profile repeat-identify] [--top 40]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import drop_database, hal, new_database  # noqa: E402

from hal.domain.verification import compute_user_hash  # noqa: E402

ENV = {
    "HAL_BENCH_ECHO": "true",
    "HAL_WIDGET_RATE_PER_PROJECT": "off",
    "HAL_WIDGET_RATE_PER_VISITOR": "off",
    "HAL_NEW_VISITORS_PER_PROJECT": "off",
    "HAL_NEW_VISITORS_PER_CLIENT": "off",
    "HAL_LOG_LEVEL": "WARNING",
}


ROUTES = ("echo", "identify", "repeat-identify", "track", "set-properties")
WARM = 50


class Call:
    """One prepared request, sent straight to the ASGI app."""

    def __init__(self, path: str, body: bytes, headers: dict[str, str]) -> None:
        raw = [(b"content-type", b"application/json"), (b"host", b"127.0.0.1"),
               (b"content-length", str(len(body)).encode())]  # fmt: skip
        raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        self.scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "headers": raw,
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
        }  # fmt: skip
        self.body = body

    async def send_to(self, app: Callable) -> tuple[int, bytes]:
        sent = False
        status, chunks = 0, []

        async def receive() -> dict:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}

        async def send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await app(dict(self.scope), receive, send)
        return status, b"".join(chunks)


def _identify_body(secret: str, user: str, visitor: str, company: int) -> bytes:
    return json.dumps({
        "app_id": "bench", "visitor_id": visitor, "user_id": user,
        "email": f"{user}@example.com", "name": f"User {user}",
        "metadata": {"plan": "enterprise", "role": "admin"},
        "company": {"id": f"co-{company}", "name": f"Company {company}", "stage": "Qualified",
                    "metadata": {"arr_band": "50k-100k", "crm_owner": "Sam"}},
        "user_hash": compute_user_hash(secret, user),
    }).encode()  # fmt: skip


async def prepare(
    app: Callable, secret: str, team_token: str, users: int, count: int
) -> dict[str, list[Call]]:
    """The calls of bench/widget.lua: echo; identify, half new users and half returning ones
    with another company; a signed-in user's repeat identify (with its session token); track
    and set-properties on unsigned identified visitors. As there, the calls other than the
    repeat carry the team API token as their bearer (not a session token)."""
    calls: dict[str, list[Call]] = {name: [] for name in ROUTES}
    team = {"authorization": f"Bearer {team_token}"}
    for i in range(users):
        body = _identify_body(secret, f"u-{i}", f"v-{i}", i % 50)
        status, answer = await Call("/api/widget/identify", body, {}).send_to(app)
        assert status == 200, answer
        session = {"authorization": f"Bearer {json.loads(answer)['session_token']}"}
        calls["repeat-identify"].append(Call("/api/widget/identify", body, session))
        calls["echo"].append(Call("/api/widget/echo", body, {}))
        # Unsigned visitors for track and set-properties (bench/run.py's warm_visitors).
        unsigned = {"app_id": "bench", "visitor_id": f"t-{i}", "user_id": f"t-{i}",
                    "company": {"id": "co-unsigned"}}  # fmt: skip
        status, answer = await Call(
            "/api/widget/identify", json.dumps(unsigned).encode(), {}
        ).send_to(app)
        assert status == 200, answer
        # Returning users of the mixed identify (each call changes their company).
        status, answer = await Call(
            "/api/widget/identify", _identify_body(secret, f"m-{i}", f"vm-{i}", 0), {}
        ).send_to(app)
        assert status == 200, answer
    rng = random.Random(1)
    for n in range(count + WARM):
        if n % 2:
            user, visitor = f"new-{n}", f"vn-{n}"
        else:
            returning = rng.randrange(users)
            user, visitor = f"m-{returning}", f"vm-{returning}"
        body = _identify_body(secret, user, visitor, rng.randrange(500))
        calls["identify"].append(Call("/api/widget/identify", body, team))
        keys = {"app_id": "bench", "visitor_id": f"t-{rng.randrange(users)}"}
        track = {**keys, "event": "page-viewed", "properties": {"path": "/pricing", "n": n},
                 "event_id": f"e-{n}"}  # fmt: skip
        calls["track"].append(Call("/api/widget/track", json.dumps(track).encode(), team))
        properties = {**keys, "properties": {"seats": rng.randrange(500), "last_page": "/b"}}
        calls["set-properties"].append(
            Call("/api/widget/set-properties", json.dumps(properties).encode(), team)
        )
    return calls


async def measure(app: Callable, calls: list[Call], count: int, clients: int = 1) -> float:
    """Mean CPU microseconds of the event loop's thread a call, over `count` calls cycling
    through `calls` (CPU time, not wall time: other work on the machine counts less), sent by
    `clients` concurrent tasks (as wrk's connections)."""
    for call in calls[:WARM]:
        await call.send_to(app)  # warm caches
    numbers = iter(range(WARM, WARM + count))

    async def client() -> None:
        for n in numbers:
            status, answer = await calls[n % len(calls)].send_to(app)
            if status != 200:
                path = calls[n % len(calls)].scope["path"]
                print(f"{path}: {status} {answer[:300]!r}", flush=True)
                os._exit(1)  # asyncio.run would wait for the app's background tasks

    started = time.thread_time()
    await asyncio.gather(*(client() for _ in range(clients)))
    return (time.thread_time() - started) / count * 1e6


async def main_async(args: argparse.Namespace, database_url: str) -> None:
    os.environ.update({**ENV, "HAL_DATABASE_URL": database_url})
    from hal.app import create_app
    from hal.config import Settings
    from hal.server import settle_gc

    project = hal(database_url, "projects", "create", "--app-id", "bench")
    token = hal(database_url, "tokens", "create", "--app-id", "bench")["token"]
    app = create_app(Settings())
    async with app.router.lifespan_context(app):
        settle_gc()  # as `hal serve` does once started
        calls = await prepare(app, project["identity_secret"], token, args.users, args.calls)
        routes = [r for r in calls if not args.routes or r in args.routes.split(",")]
        figures = {
            name: await measure(app, calls[name], args.calls, args.clients) for name in routes
        }
        echo = figures.get("echo")
        print(f"| {args.backend} in process, {args.clients} clients | us/call | echo/route |")
        print("|---|---|---|")
        for name, us in figures.items():
            ratio = f"{echo / us:.0%}" if echo else ""
            print(f"| {name} | {us:,.0f} | {ratio} |")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            await measure(app, calls[args.profile], args.calls, args.clients)
            profiler.disable()
            if args.dump:
                profiler.dump_stats(args.dump)
            stats = pstats.Stats(profiler).strip_dirs()
            stats.sort_stats(args.sort).print_stats(args.top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--clients", type=int, default=1, help="concurrent callers")
    parser.add_argument("--routes", default="", help="comma-separated; all when empty")
    parser.add_argument("--profile", default="", help="a route to profile after measuring")
    parser.add_argument("--dump", default="", help="where to write the profile (pstats format)")
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        database_url, pg_name = new_database(args.backend, Path(workdir))
        try:
            hal(database_url, "migrate")
            uvloop.run(main_async(args, database_url))  # as `hal serve` runs
        finally:
            drop_database(pg_name)


if __name__ == "__main__":
    main()
