"""Companies, their links to contacts, and stage writes under a stage mode."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hal.db.models import Company, ContactCompany, Event, Project, StageChange
from hal.db.queries import insert_ignoring_conflict, locked
from hal.domain.stages import StageDecision, StageMode, StageSource, decide_stage_write
from hal.domain.validation import merge_metadata


async def upsert_companies(
    *, session: AsyncSession, project: Project, external_ids: Iterable[str]
) -> dict[str, int]:
    """Create the companies that do not exist yet (bare) and return every row id by its id."""
    wanted = sorted(set(external_ids))
    if not wanted:
        return {}
    await insert_ignoring_conflict(
        session,
        Company,
        [{"project_id": project.id, "external_id": eid, "metadata": {}} for eid in wanted],
        ["project_id", "external_id"],
    )
    rows = await session.execute(
        select(Company.external_id, Company.id).where(
            Company.project_id == project.id, Company.external_id.in_(wanted)
        )
    )
    return {external_id: row_id for external_id, row_id in rows}  # noqa: C416


async def company_for_update(session: AsyncSession, company_id: int) -> Company:
    query = locked(select(Company).where(Company.id == company_id))
    return (await session.execute(query)).scalar_one()


def update_company(
    company: Company, *, name: str | None, metadata: Mapping[str, Any] | None
) -> None:
    if name is not None:
        company.name = name
    if metadata:
        company.metadata_ = merge_metadata(company.metadata_, metadata)


async def link_contact(
    *, session: AsyncSession, contact_id: int, company_ids: Iterable[int]
) -> None:
    await insert_ignoring_conflict(
        session,
        ContactCompany,
        [{"contact_id": contact_id, "company_id": cid} for cid in sorted(set(company_ids))],
        ["contact_id", "company_id"],
    )


async def write_stage(
    *,
    session: AsyncSession,
    project: Project,
    company: Company,
    stage: str,
    mode: StageMode,
    source: StageSource,
    now: datetime,
    contact_id: int | None = None,
    field: str = "stage",
) -> StageDecision:
    """Apply a stage write under `mode`; an applied change is kept in the stage history and
    appended to the company's timeline as a `stage-changed` event."""
    decision = decide_stage_write(
        mode=mode,
        current=company.stage,
        current_source=StageSource(company.stage_source) if company.stage_source else None,
        new=stage,
        pipeline=project.stages,
        field=field,
    )
    if decision.applied:
        company.stage = stage
        company.stage_source = source.value
        company.stage_updated_at = now
        session.add(
            StageChange(
                company_id=company.id,
                value=stage,
                previous=decision.previous,
                source=source.value,
                mode=mode.value,
                created_at=now,
            )
        )
        session.add(
            Event(
                project_id=project.id,
                company_id=company.id,
                contact_id=contact_id,
                scope="company",
                name="stage-changed",
                properties={"stage": stage, "previous": decision.previous, "source": source.value},
                occurred_at=now,
                received_at=now,
            )
        )
    return decision
