"""Stage modes: whether a stage write replaces the company's current stage (README "Stage
modes")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from hal.domain.errors import InvalidInput


class StageMode(StrEnum):
    OVERWRITE = "overwrite"
    IF_EMPTY = "if_empty"
    FORWARD_ONLY = "forward_only"
    AGENT_WINS = "agent_wins"


class StageSource(StrEnum):
    WIDGET = "widget"
    AGENT = "agent"
    API = "api"


@dataclass(frozen=True)
class StageDecision:
    applied: bool
    previous: str | None
    reason: str | None  # why a write was skipped; None when applied


def check_stage(
    *, mode: StageMode, new: str, pipeline: Sequence[str], field: str = "stage"
) -> None:
    """The request's stage is one the mode can apply at all: under `forward_only`, a stage of
    the pipeline (checked before anything is written)."""
    if mode is StageMode.FORWARD_ONLY and new not in pipeline:
        raise InvalidInput(
            "unknown_stage",
            f"{field} {new!r} is not in the project's stage pipeline {list(pipeline)}",
            field=field,
        )


def decide_stage_write(
    *,
    mode: StageMode,
    current: str | None,
    current_source: StageSource | None,
    new: str,
    pipeline: Sequence[str],
    field: str = "stage",
) -> StageDecision:
    """Apply the mode's rule. A skipped write is not an error; an unknown stage under
    `forward_only` is (it cannot be ordered)."""
    check_stage(mode=mode, new=new, pipeline=pipeline, field=field)
    if new == current:
        return StageDecision(applied=False, previous=current, reason="unchanged")
    if mode is StageMode.IF_EMPTY and current is not None:
        return StageDecision(applied=False, previous=current, reason="stage_already_set")
    if (
        mode is StageMode.FORWARD_ONLY
        and current in pipeline
        and pipeline.index(new) < pipeline.index(current)
    ):
        return StageDecision(applied=False, previous=current, reason="not_forward")
    if mode is StageMode.AGENT_WINS and current_source is StageSource.AGENT:
        return StageDecision(applied=False, previous=current, reason="set_by_agent")
    return StageDecision(applied=True, previous=current, reason=None)
