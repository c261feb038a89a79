"""The team side's stage writes: an agent's stage under a stage mode, kept in the history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hal.db.models import Company, Event, Project, StageChange
from hal.db.queries import locked
from hal.domain.stages import StageDecision, StageMode, StageSource, decide_stage_write


async def company_for_update(session: AsyncSession, company_id: int) -> Company:
    query = locked(select(Company).where(Company.id == company_id))
    return (await session.execute(query)).scalar_one()


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
