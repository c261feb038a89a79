"""The one stage write (README "Stage modes"), for the widget's set-stage and identify, the
team API and the inbox: decide under the mode, then write the company's stage with its other
values, the history entry and timeline event, and the `company.stage_changed` change."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from hal.db.engine import Tx
from hal.db.store.base import CompanyRow
from hal.db.store.companies import add_stage_change, update_company
from hal.domain.changes import ChangeType
from hal.domain.stages import StageDecision, StageMode, StageSource, decide_stage_write
from hal.services.change_data import stage_change_data


@dataclass(frozen=True)
class StageWrite:
    """A requested stage and what its mode decided for the company as it was."""

    stage: str
    mode: StageMode
    source: StageSource
    decision: StageDecision


def decide_stage(
    company: CompanyRow,
    *,
    stage: str,
    mode: StageMode,
    source: StageSource,
    pipeline: Sequence[str],
    field: str = "stage",
) -> StageWrite:
    """The mode's decision for this company as it is now."""
    decision = decide_stage_write(
        mode=mode,
        current=company.stage,
        current_source=StageSource(company.stage_source) if company.stage_source else None,
        new=stage,
        pipeline=pipeline,
        field=field,
    )
    return StageWrite(stage, mode, source, decision)


async def write_company_and_stage(
    tx: Tx,
    *,
    project_id: int,
    company: CompanyRow,
    values: Mapping[str, Any],
    stage: StageWrite | None,
    contact_id: int | None,
) -> CompanyRow:
    """Write the company's `values` and, when `stage` applies, its stage (one UPDATE for
    both), the stage's history entry and timeline event; the company as it now is. The
    caller bumps `version` in `values`, and records `stage_changed` after any change of its
    own about the company."""
    written = dict(values)
    applied = stage is not None and stage.decision.applied
    if stage is not None and applied:
        source = stage.source.value
        written.update(stage=stage.stage, stage_source=source, stage_updated_at=tx.now)
        await add_stage_change(
            tx,
            project_id=project_id,
            company_id=company.id,
            contact_id=contact_id,
            stage=stage.stage,
            previous=stage.decision.previous,
            source=source,
            mode=stage.mode.value,
        )
    await update_company(tx, company.id, written)
    return replace(
        company,
        name=written.get("name", company.name),
        metadata_=written.get("metadata", company.metadata_),
        stage=written.get("stage", company.stage),
        stage_source=written.get("stage_source", company.stage_source),
        version=written.get("version", company.version),
    )


def stage_changed(
    tx: Tx, *, project_id: int, company: CompanyRow, stage: StageWrite | None
) -> None:
    """`company.stage_changed` for a stage write that applied (`company` as written)."""
    if stage is not None and stage.decision.applied:
        data = stage_change_data(company, stage.decision, mode=stage.mode, source=stage.source)
        tx.record(project_id, ChangeType.COMPANY_STAGE_CHANGED, data)
