"""The import worker of a process without a polling loop runs jobs when it queues them
(`wake`): a job queued while the drain's last look is under way is not left behind."""

import asyncio
from datetime import timedelta
from typing import Any, cast

from hal.domain.limits import Limits
from hal.services.import_jobs import ImportWorker, WorkerOptions


class Scripted(ImportWorker):
    """A worker whose steps find the jobs `queued` holds when each step looks."""

    def __init__(self) -> None:
        options = WorkerOptions(Limits(), timedelta(seconds=30), 1.0, 100, timedelta(days=1))
        super().__init__(cast(Any, None), options)
        self.queued: list[str] = []
        self.ran: list[str] = []
        self.looking = asyncio.Event()
        self.go_on = asyncio.Event()

    async def step(self) -> bool:
        found = self.queued.pop(0) if self.queued else None
        if found is None:
            self.looking.set()  # found nothing; still in its step (purging ended jobs)
            await self.go_on.wait()
            return False
        self.ran.append(found)
        return True


async def test_a_job_queued_during_the_drains_last_look_runs() -> None:
    worker = Scripted()
    worker.queued.append("first")
    worker.wake()
    await worker.looking.wait()
    worker.queued.append("second")
    worker.wake()  # the drain is still running: no second drain starts
    worker.go_on.set()
    assert worker._drain is not None
    await asyncio.wait_for(worker._drain, 5)
    assert worker.ran == ["first", "second"]


async def test_the_drain_ends_when_nothing_is_queued() -> None:
    worker = Scripted()
    worker.go_on.set()
    worker.wake()
    assert worker._drain is not None
    await asyncio.wait_for(worker._drain, 5)
    assert worker.ran == []
