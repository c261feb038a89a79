"""Team API: batch writes (README "Batch writes and imports"); CSV imports are api/imports.py."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import TypeAdapter, ValidationError

from hal.api.body import StrictJSONRoute
from hal.api.deps import DatabaseDep, SettingsDep, TeamProjectDep
from hal.api.errors import describe_validation, error_responses
from hal.domain.errors import HalError, InvalidInput
from hal.schemas import (
    ITEM_TYPES,
    BatchItem,
    BatchRequest,
    BatchResponse,
    ItemError,
    ItemResult,
)
from hal.services import batch

router = APIRouter(
    prefix="/api/projects/{app_id}",
    tags=["batch"],
    route_class=StrictJSONRoute,
    responses=error_responses(400, 401, 403, 404, 413, 415, 422),
)

_ITEM = TypeAdapter[Any](BatchItem)


def _read_item(raw: Any) -> batch.Item | HalError:
    """One item read on its own, so a bad one fails alone; its field is the item's own."""
    if not isinstance(raw, dict):
        return InvalidInput("invalid_field", "an item is a JSON object", field=None)
    if raw.get("type") not in ITEM_TYPES:
        message = f"type is one of {', '.join(ITEM_TYPES)}"
        return InvalidInput("invalid_choice", message, field="type")
    try:
        item: batch.Item = _ITEM.validate_python(raw)
    except ValidationError as exc:
        # The union's tag leads the location: ("track", "event") -> "event".
        found = [{**e, "loc": tuple(e["loc"])[1:]} for e in exc.errors()]
        code, message, field = describe_validation(found)
        return InvalidInput(code, message, field=field)
    return item


@router.post("/batch", response_model=BatchResponse, response_model_exclude_none=True)
async def batch_route(
    body: BatchRequest, project: TeamProjectDep, db: DatabaseDep, settings: SettingsDep
) -> BatchResponse:
    """Up to 1,000 identify, set_properties, track, set_stage and set_deal items, each
    committed on its own; one result per item, in order."""
    items = [_read_item(raw) for raw in body.items]
    outcomes = await batch.run_batch(
        db=db, app_id=project.app_id, items=items, limits=settings.limits
    )
    results = [
        ItemResult(
            index=o.index,
            status="ok",
            contact_id=o.contact_id,
            duplicate=o.duplicate,
            warnings=list(o.warnings) or None,
        )
        if o.error is None
        else ItemResult(
            index=o.index,
            status="error",
            error=ItemError(code=o.error.code, message=o.error.message, field=o.error.field),
        )
        for o in outcomes
    ]
    failed = sum(1 for r in results if r.status == "error")
    return BatchResponse(results=results, ok=len(results) - failed, failed=failed)
