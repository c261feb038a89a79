"""How many idle live streams one `hal serve` process holds, and how long a committed change
takes to reach them: opens N SSE streams of one project, then commits changes one at a time
and times each from the commit's answer to its arrival on every stream.

    uv run python bench/streams.py [--streams 1000] [--changes 20] [--quick]

Prints one Markdown table row per run; bench/run.py appends it to RESULTS.md. --quick: 100
streams, 5 changes.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import bench_parser, parse, progress  # noqa: E402
from tests.servers import Server  # noqa: E402


def hal(database_url: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "hal", *args, "--database-url", database_url],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(out.stdout)


async def listen(http: httpx.AsyncClient, url: str, arrivals: dict[str, list[float]],
                 ready: asyncio.Event, opened: list[int], wanted: int) -> None:  # fmt: skip
    async with http.stream("GET", url) as response:
        opened.append(1)
        if len(opened) == wanted:
            ready.set()
        async for line in response.aiter_lines():
            if line.startswith("id:"):
                arrivals.setdefault(line[3:].strip(), []).append(time.perf_counter())


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def measure(server: Server, app_id: str, token: str, streams: int, changes: int) -> dict:
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=0)
    headers = {"Authorization": f"Bearer {token}"}
    arrivals: dict[str, list[float]] = {}
    ready, opened = asyncio.Event(), []
    url = f"{server.url}/api/projects/{app_id}/stream"
    async with httpx.AsyncClient(limits=limits, headers=headers, timeout=None) as http:
        tasks = [asyncio.create_task(listen(http, url, arrivals, ready, opened, streams))
                 for _ in range(streams)]  # fmt: skip
        await asyncio.wait_for(ready.wait(), 120)
        await asyncio.sleep(2)  # idle
        idle_rss = rss_mb(server.process.pid)
        latencies: list[float] = []
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
            for i in range(changes):
                answer = await api.post("/api/widget/identify", json={
                    "app_id": app_id, "visitor_id": f"s-{i}", "user_id": f"s-{i}"})  # fmt: skip
                committed = time.perf_counter()
                change_id = str(i + 1)
                deadline = time.monotonic() + 10
                while len(arrivals.get(change_id, [])) < streams and time.monotonic() < deadline:
                    await asyncio.sleep(0.005)
                latencies.extend(t - committed for t in arrivals.get(change_id, []))
                assert answer.status_code == 200
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    latencies.sort()
    delivered = len(latencies)
    return {
        "streams": len(opened),
        "delivered": f"{delivered}/{streams * changes}",
        "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p99_ms": latencies[int(delivered * 0.99) - 1] * 1000 if latencies else float("nan"),
        "idle_rss_mb": idle_rss,
    }


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=20)
    args = parse(parser, quick={"streams": 100, "changes": 5})
    with tempfile.TemporaryDirectory() as tmp:
        database_url = f"sqlite:///{Path(tmp) / 'streams.db'}"
        hal(database_url, "migrate")
        hal(database_url, "projects", "create", "--app-id", "bench")
        token = hal(database_url, "tokens", "create", "--app-id", "bench")["token"]
        env = {"HAL_WIDGET_RATE_PER_PROJECT": "off", "HAL_NEW_VISITORS_PER_CLIENT": "off"}
        server = Server(database_url, env=env, log=Path(tmp) / "server.log").start()
        try:
            result = asyncio.run(measure(server, "bench", token, args.streams, args.changes))
        finally:
            server.stop()
    progress(f"{result['streams']:,} streams, {result['delivered']} changes delivered")
    print(
        f"| {result['streams']:,} open streams (SQLite, one process) | {result['delivered']} | "
        f"{result['p50_ms']:.0f} ms | {result['p99_ms']:.0f} ms | {result['idle_rss_mb']:.0f} MiB |"
    )


if __name__ == "__main__":
    main()
