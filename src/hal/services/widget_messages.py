"""The widget's chat: a visitor writes into its open conversation and reads the ones it may
(README "Widget messages")."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from hal.db.engine import Database, Tx
from hal.db.store.timeline import (
    add_message,
    is_readable,
    messages_of,
    open_conversation,
    readable_conversations,
    start_conversation,
    touch_conversation,
)
from hal.domain.changes import ChangeType
from hal.domain.limits import Limits
from hal.domain.sessions import read_session_token
from hal.schemas import WidgetMessageRequest
from hal.services.change_data import conversation_data, message_data
from hal.services.change_feed import Concerning
from hal.services.conversations import OPEN, check_body
from hal.services.widget_call import Caller, WidgetCall, find_widget_call, open_widget_call


@dataclass(frozen=True)
class Thread:
    conversation: Any  # conversation row
    messages: list[Any]  # message rows


async def post_widget_message(
    tx: Tx, *, request: WidgetMessageRequest, caller: Caller, limits: Limits
) -> tuple[Any, Any]:
    """Append to the visitor's open conversation under its current contact, creating it with
    the contact, the active company and whether the visitor had proven to be that contact."""
    call = await open_widget_call(
        tx, app_id=request.app_id, visitor_id=request.visitor_id, caller=caller, limits=limits
    )
    body = check_body(request.body)
    visitor, contact = call.widget_visitor, call.contact
    conversation = await open_conversation(tx, visitor)
    active = visitor.active_company_id
    started = conversation is None
    if conversation is None:
        conversation = await start_conversation(
            tx,
            {
                "project_id": call.project.id,
                "visitor_row_id": visitor.id,
                "contact_id": visitor.contact_id,
                "company_id": active,
                "verified_contact_id": visitor.contact_id if call.verified else None,
            },
        )
    else:
        changes = {"company_id": active} if active is not None else {}
        conversation = await touch_conversation(tx, conversation.id, changes)
    message = await add_message(
        tx,
        {
            "conversation_id": conversation.id,
            "author": "visitor",
            "author_name": contact.name if contact is not None else None,
            "body": body,
            "sender_verified": call.verified,
        },
    )
    anonymous = visitor.id if conversation.contact_id is None else None
    if started:
        data = conversation_data(conversation)
        tx.record(call.project.id, ChangeType.CONVERSATION_CREATED, data, visitor_row_id=anonymous)
    data = message_data(conversation, message)
    tx.record(call.project.id, ChangeType.MESSAGE_CREATED, data, visitor_row_id=anonymous)
    return conversation, message


async def read_widget_messages(
    tx: Tx, *, app_id: str, visitor_id: str, caller: Caller, limits: Limits
) -> tuple[Thread | None, list[Thread]]:
    """The conversations this visitor may read: the ones it started under its current
    contact, and, once its binding is verified, those of the contact started by visitors
    verified as that contact. Nothing an unverified request attached becomes readable."""
    call = await find_widget_call(
        tx, app_id=app_id, visitor_id=visitor_id, caller=caller, limits=limits
    )
    if call is None:
        return None, []
    conversations = await readable_conversations(
        tx, project_id=call.project.id, visitor=call.widget_visitor, verified=call.verified
    )
    grouped = await messages_of(tx, [c.id for c in conversations])
    threads = [Thread(c, grouped[c.id]) for c in conversations]
    own = [
        t
        for t in threads
        if t.conversation.visitor_row_id == call.widget_visitor.id
        and t.conversation.contact_id == call.widget_visitor.contact_id
    ]
    current = next((t for t in own if t.conversation.status == OPEN), own[0] if own else None)
    return current, threads


CHAT_CHANGES = frozenset({"message.created", "conversation.closed", "conversation.reopened"})


@dataclass
class VisitorStream:
    """What a visitor's stream may carry: changes of the conversations it may read (as
    `GET /api/widget/messages` decides, at the time the stream opened), for as long as the
    session token it was opened with still vouches for the visitor."""

    call: WidgetCall
    readable: set[int]
    refused: set[int]
    session_token: str | None  # the token that vouched for the visitor's binding, if one did

    @property
    def concerning(self) -> Concerning:
        """The changes that can concern this visitor: its contact's, and its own anonymous
        ones (a replay reads only those, then `carries` decides)."""
        visitor = self.call.widget_visitor
        return Concerning(visitor.contact_id, visitor.id, frozenset(CHAT_CHANGES))

    async def still_authorized(self, database: Database) -> bool:
        """Whether the session token still vouches for the visitor's binding under the
        project's current session secret (`rotate-secret --revoke-sessions` replaces it) and
        has not expired. A stream opened without one has no credential that can end."""
        if self.session_token is None:
            return True
        app_id = self.call.project.app_id
        project = await database.run(lambda tx: tx.projects.get(tx.connection, app_id))
        if project is None:
            return False
        visitor = self.call.widget_visitor
        vouched = read_session_token(
            secret=project.session_secret,
            token=self.session_token,
            app_id=project.app_id,
            visitor_id=visitor.visitor_key,
        )
        return vouched is not None and vouched == visitor.contact_id

    async def carries(self, database: Database, change_type: str, data: dict[str, Any]) -> bool:
        if change_type not in CHAT_CHANGES:
            return False
        conversation_id = data.get("conversation_id", data.get("id"))
        if not isinstance(conversation_id, int) or conversation_id in self.refused:
            return False
        if conversation_id in self.readable:
            return True
        if data.get("contact_id") != self.call.widget_visitor.contact_id:
            self.refused.add(conversation_id)
            return False
        call = self.call
        readable = await database.run(
            partial(
                is_readable,
                project_id=call.project.id,
                visitor=call.widget_visitor,
                verified=call.verified,
                conversation_id=conversation_id,
            )
        )
        (self.readable if readable else self.refused).add(conversation_id)
        return readable


async def open_visitor_stream(
    tx: Tx, *, app_id: str, visitor_id: str, caller: Caller, limits: Limits
) -> VisitorStream | None:
    """The checks of `GET /api/widget/messages`, for a stream; None for an unknown visitor."""
    call = await find_widget_call(
        tx, app_id=app_id, visitor_id=visitor_id, caller=caller, limits=limits
    )
    if call is None:
        return None
    conversations = await readable_conversations(
        tx,
        project_id=call.project.id,
        visitor=call.widget_visitor,
        verified=call.verified,
        limit=500,
    )
    token = caller.bearer if call.session else None
    return VisitorStream(call, {c.id for c in conversations}, set(), token)
