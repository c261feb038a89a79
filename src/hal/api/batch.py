"""Team API: batch writes and CSV imports (README "Batch writes and imports")."""

from __future__ import annotations

import io
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import TypeAdapter, ValidationError

from hal.api.body import StrictJSONRoute
from hal.api.deps import DatabaseDep, SettingsDep, TeamProjectDep
from hal.api.errors import describe_validation, error_responses
from hal.domain.csv_import import ImportKind
from hal.domain.errors import HalError, InvalidInput, UnsupportedMediaType
from hal.schemas import (
    ITEM_TYPES,
    BatchItem,
    BatchRequest,
    BatchResponse,
    ImportFailure,
    ImportResponse,
    ItemError,
    ItemResult,
)
from hal.services import batch, imports

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


_CSV_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"text/csv": {"schema": {"type": "string"}}},
        "description": "A CSV file with a header row, UTF-8 (a byte order mark is fine), "
        "up to 25 MiB",
    }
}


@router.post("/imports", response_model=ImportResponse, openapi_extra=_CSV_BODY)
async def import_route(
    request: Request,
    project: TeamProjectDep,
    db: DatabaseDep,
    settings: SettingsDep,
    kind: Annotated[ImportKind, Query(description="contacts or companies")],
    dry_run: Annotated[bool, Query(description="check and count without writing")] = False,
) -> ImportResponse:
    """Import a CSV of contacts or companies, as `hal import` does: the counts and every
    failed row. A fault in the header or the encoding refuses the file (nothing written)."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in {"text/csv", "application/csv"}:
        raise UnsupportedMediaType(
            "unsupported_media_type",
            "send the file with 'Content-Type: text/csv'",
            field="content-type",
        )
    body = await request.body()
    file = imports.read_import(kind, imports.open_text(io.BytesIO(body)), settings.limits)
    failures: list[ImportFailure] = []

    def failed(row: imports.RowFailure) -> None:
        failures.append(
            ImportFailure(
                line=row.line, code=row.code, error=row.message, field=row.field, row=row.row
            )
        )

    counts = await imports.import_rows(
        db=db,
        app_id=project.app_id,
        file=file,
        limits=settings.limits,
        dry_run=dry_run,
        on_failure=failed,
    )
    return ImportResponse(**counts.as_dict(), dry_run=dry_run, failures=failures)
