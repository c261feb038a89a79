"""CRM writes from the widget: which company a call targets, events' times, deal fields."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

import pycountry

from hal.domain.errors import Conflict, Forbidden, InvalidInput

MAX_FUTURE = timedelta(days=1)
MAX_AMOUNT = Decimal("1e15")


def resolve_company(*, requested: str | None, linked: Mapping[str, int], active: int | None) -> int:
    """The company a company-scoped call writes to (README "CRM writes"): an explicit `company_id`
    linked to the contact > the visitor's active company > the contact's only company."""
    if requested is not None:
        if requested not in linked:
            raise Forbidden(
                "company_not_linked",
                f"company {requested!r} is not linked to this contact; identify with it first",
                field="company_id",
            )
        return linked[requested]
    if active is not None and active in linked.values():
        return active
    if len(linked) == 1:
        return next(iter(linked.values()))
    if not linked:
        raise Conflict(
            "no_linked_company",
            "this contact has no linked company; send company on identify first",
            field="company_id",
        )
    raise Conflict(
        "company_required",
        "this contact has several companies and none is active: send company_id",
        field="company_id",
    )


class EventScope(StrEnum):
    CONTACT = "contact"
    COMPANY = "company"


def parse_instant(value: str, *, field: str) -> datetime:
    """ISO 8601; a time without an offset is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(
            "invalid_datetime", f"{field} must be an ISO 8601 date-time", field=field
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def instant_text(moment: datetime) -> str:
    """An instant as every answer, stream and webhook writes it: UTC, ending in `Z` (as
    pydantic writes the REST answers' date-times)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event_time(*, occurred_at: str | None, sent_at: str | None, received_at: datetime) -> datetime:
    """When the event happened, on the server's clock.

    With `sent_at`, the client's clock error (`received - sent`) is added to `occurred_at`,
    as Segment does; without `occurred_at` the event happened when it was received.
    """
    if occurred_at is None:
        return received_at
    occurred = parse_instant(occurred_at, field="occurred_at")
    if sent_at is not None:
        occurred += received_at - parse_instant(sent_at, field="sent_at")
    if occurred > received_at + MAX_FUTURE:
        raise InvalidInput(
            "occurred_in_future",
            "occurred_at is more than a day in the future (after clock-skew correction)",
            field="occurred_at",
        )
    return occurred


class DealStatus(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


def check_amount(value: int | float) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise InvalidInput(
            "invalid_amount", "deal.amount must be a number", field="deal.amount"
        ) from None
    if not amount.is_finite() or amount < 0 or amount >= MAX_AMOUNT:
        raise InvalidInput(
            "invalid_amount", "deal.amount must be >= 0 and below 10^15", field="deal.amount"
        )
    return amount.quantize(Decimal("0.0001"))


def check_currency(value: str) -> str:
    code = value.strip().upper()
    if len(code) != 3 or pycountry.currencies.get(alpha_3=code) is None:
        raise InvalidInput(
            "invalid_currency",
            f"deal.currency {value!r} is not an ISO 4217 currency code",
            field="deal.currency",
        )
    return code


def check_close_date(value: str) -> str:
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise InvalidInput(
            "invalid_date",
            "deal.close_date must be a date like 2026-12-31",
            field="deal.close_date",
        ) from None


def changed_fields(current: Mapping[str, Any], values: Mapping[str, Any]) -> list[str]:
    """The names of the fields whose value the write changes."""
    return sorted(key for key, value in values.items() if current.get(key) != value)
