"""POST /api/projects/{app_id}/batch: team writes, each item committed on its own
(README "Batch writes and imports").

Every item goes through the widget's own use-case code, opened by `open_team_call`: the same
matching, stage modes, company resolution and limits, the contact named by user_id or email.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from hal.db.engine import Database, Tx
from hal.domain.errors import HalError, InvalidInput
from hal.domain.limits import Limits
from hal.schemas import (
    ContactKey,
    IdentifyItem,
    SetDealItem,
    SetPropertiesItem,
    SetStageItem,
    TrackItem,
)
from hal.services.crm import write_set_deal, write_set_stage, write_track
from hal.services.identify import identify_contact
from hal.services.properties import write_properties
from hal.services.widget_call import WidgetCall, open_team_call

Item = IdentifyItem | SetPropertiesItem | TrackItem | SetStageItem | SetDealItem


@dataclass(frozen=True)
class ItemOutcome:
    index: int
    contact_id: int | None = None
    duplicate: bool | None = None
    warnings: tuple[str, ...] = ()
    error: HalError | None = None  # its field already prefixed with the item's path


def item_field(index: int, field: str | None) -> str:
    """Where in the body an item's error is: `items[3].user_id`, or `items[3]`."""
    return f"items[{index}].{field}" if field else f"items[{index}]"


async def _named(tx: Tx, app_id: str, item: ContactKey, limits: Limits) -> WidgetCall:
    if item.user_id is None and item.email is None:
        raise InvalidInput(
            "missing_identity", "name the contact by user_id or email", field="user_id"
        )
    return await open_team_call(
        tx, app_id=app_id, user_id=item.user_id, email=item.email, limits=limits
    )


async def write_item(tx: Tx, *, app_id: str, index: int, item: Item, limits: Limits) -> ItemOutcome:
    """One item in its own transaction, through the use case of its type."""
    if isinstance(item, IdentifyItem):
        written = await identify_contact(tx, app_id=app_id, request=item, limits=limits)
        return ItemOutcome(index, written.contact.id, warnings=written.warnings)
    call = await _named(tx, app_id, item, limits)
    contact = call.require_contact()
    if isinstance(item, SetPropertiesItem):
        await write_properties(call, item, limits)
    elif isinstance(item, TrackItem):
        tracked = await write_track(call, item, limits)
        return ItemOutcome(index, contact.id, duplicate=tracked.duplicate)
    elif isinstance(item, SetStageItem):
        await write_set_stage(call, item, limits)
    else:
        await write_set_deal(call, item, limits)
    return ItemOutcome(index, contact.id)


async def run_batch(
    *, db: Database, app_id: str, items: Sequence[Item | HalError], limits: Limits
) -> list[ItemOutcome]:
    """Write each item in order, each committed on its own; an item that fails is reported
    (its error's field as `items[i].field`) and the next one goes on. Items that could not be
    read arrive here as their error."""
    outcomes = []
    for index, item in enumerate(items):
        try:
            if isinstance(item, HalError):
                raise item
            work = partial(write_item, app_id=app_id, index=index, item=item, limits=limits)
            outcome = await db.run(work)
        except HalError as exc:
            exc.field = item_field(index, exc.field)
            outcome = ItemOutcome(index, error=exc)
        outcomes.append(outcome)
    return outcomes
