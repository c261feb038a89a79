"""Stream tickets: a browser's EventSource cannot send the Authorization header, so an API
token asks for a ticket that opens its project's stream once, as `?ticket=`, within a minute.
Tickets live in the database (any server process may be the one the stream reaches), hashed
like API tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from hal.db.models import Project, StreamTicket
from hal.db.types import utcnow
from hal.services.projects import project_for_api_token_id

TICKET_LIFETIME = timedelta(seconds=60)
MAX_TICKET_LENGTH = 128  # a ticket is 43 characters; anything much longer is not one


@dataclass(frozen=True)
class IssuedTicket:
    """A new ticket, shown this once, and when it stops opening anything."""

    ticket: str
    expires_at: datetime


def _ticket_hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


async def issue_stream_ticket(*, session: AsyncSession, token_id: int) -> IssuedTicket:
    """A ticket for the project's stream, vouched for by the API token that asked for it;
    only its hash is stored. Tickets expired by now are dropped on the way."""
    now = utcnow()
    await session.execute(delete(StreamTicket).where(StreamTicket.expires_at <= now))
    ticket = secrets.token_urlsafe(32)
    expires_at = now + TICKET_LIFETIME
    session.add(
        StreamTicket(
            ticket_hash=_ticket_hash(ticket),
            token_id=token_id,
            created_at=now,
            expires_at=expires_at,
        )
    )
    await session.flush()
    return IssuedTicket(ticket, expires_at)


async def redeem_stream_ticket(
    *, session: AsyncSession, ticket: str
) -> tuple[Project, str, int] | None:
    """Spend a ticket: the project, scope and id of the API token that asked for it, when the
    ticket was unspent and unexpired and that token is still valid; else None. The first use
    spends it, whatever that use was (two processes racing on one ticket: one wins)."""
    if not ticket or len(ticket) > MAX_TICKET_LENGTH:
        return None
    spent = await session.execute(
        delete(StreamTicket)
        .where(StreamTicket.ticket_hash == _ticket_hash(ticket))
        .returning(StreamTicket.token_id, StreamTicket.expires_at)
        .execution_options(synchronize_session=False)
    )
    row = spent.first()
    if row is None or row.expires_at <= utcnow():
        return None
    return await project_for_api_token_id(session=session, token_id=row.token_id)
