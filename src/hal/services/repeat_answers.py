"""A repeat identify's answer, kept per process and sent again while what it was made from
still holds (README "Identify", the repeat identify).

A signed-in app calls identify on every page view with the same body and the same session
token. The first such call that changes nothing answers from one read (`identify._repeat`);
its answer's bytes are kept here, keyed by the request's body and token, with what the answer
was made from: the project's settings (the cached object itself, db/project_cache.py keeps it
while the project is unchanged), the rows it read (the visitor, its contact, the contact's
companies) and the first instant one of its time-bound rules turns (the contact or visitor
not seen for a minute, the token no longer fresh, a previous identity secret's grace ending).

The same call again is answered from that read alone: the same statement runs, and if its
rows equal the kept ones, the project is the same and that instant has not come, the full
repeat would answer exactly these bytes (every rule it applies is a function of those
inputs), so they are sent without parsing or checking the body again. Anything else, or a
call that was not answered this way before, takes the usual path.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hal.db.engine import Tx
from hal.db.store.people import returning_rows
from hal.domain.projects import ProjectConfig, origin_allowed
from hal.services.installation import Claim

KEPT_ANSWERS = 10_000  # per process: a kept answer is a few kB


@dataclass(frozen=True)
class RepeatRead:
    """What a repeat identify's answer was made from."""

    project: ProjectConfig  # the cached settings object the answer was checked against
    rows: Sequence[Sequence[Any]]  # the rows read, as the driver gave them (`Returning.rows`)
    until: datetime  # the answer may be sent again before this instant


@dataclass(frozen=True)
class KeptAnswer:
    """An answer to send again, and what its call was counted as (installation, metrics)."""

    app_id: str
    visitor_id: str
    read: RepeatRead
    answer: bytes  # the response body
    claim: Claim
    warnings: tuple[str, ...]
    proven: bool
    outcome: str


async def still_holds(tx: Tx, kept: KeptAnswer, origin: str | None) -> bool:
    """Whether `kept` is what the repeat identify would answer now: one read, no lock, no
    write."""
    read = kept.read
    if tx.now >= read.until:
        return False
    project = await tx.projects.get(tx.connection, kept.app_id)
    if project is not read.project or not origin_allowed(origin, project.allowed_origins):
        return False
    rows = await returning_rows(tx, project_id=project.id, visitor_key=kept.visitor_id)
    return rows == read.rows


class RepeatAnswers:
    """The kept answers of one process, by (request body, session token): at most `size`,
    the oldest dropped first, and those whose time has passed as new ones come."""

    def __init__(self, size: int = KEPT_ANSWERS) -> None:
        self.size = size
        self.sent = 0  # answers sent again
        self._kept: OrderedDict[tuple[bytes, str], KeptAnswer] = OrderedDict()

    def get(self, body: bytes, token: str) -> KeptAnswer | None:
        return self._kept.get((body, token))

    def keep(self, body: bytes, token: str, answer: KeptAnswer) -> None:
        key = (body, token)
        self._kept.pop(key, None)
        self._kept[key] = answer
        now = datetime.now(UTC)
        while self._kept and (
            len(self._kept) > self.size or next(iter(self._kept.values())).read.until <= now
        ):
            self._kept.popitem(last=False)

    def forget(self, body: bytes, token: str) -> None:
        """A kept answer that no longer holds: the call it answered took the usual path."""
        self._kept.pop((body, token), None)

    def __len__(self) -> int:
        return len(self._kept)
