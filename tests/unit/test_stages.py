"""Stage modes as pure rules, with properties over any sequence of writes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hal.domain.errors import InvalidInput
from hal.domain.stages import StageMode, StageSource, decide_stage_write

PIPELINE = ["Lead", "Qualified", "Trial", "Customer"]


def decide(mode, current, new, source=StageSource.WIDGET):
    return decide_stage_write(
        mode=mode, current=current, current_source=source, new=new, pipeline=PIPELINE
    )


def test_overwrite_always_replaces():
    assert decide(StageMode.OVERWRITE, "Customer", "Lead").applied


def test_if_empty_writes_only_a_missing_stage():
    assert decide(StageMode.IF_EMPTY, None, "Lead").applied
    skipped = decide(StageMode.IF_EMPTY, "Lead", "Trial")
    assert (skipped.applied, skipped.previous, skipped.reason) == (
        False,
        "Lead",
        "stage_already_set",
    )


def test_forward_only_moves_only_later_in_the_pipeline():
    assert decide(StageMode.FORWARD_ONLY, "Lead", "Trial").applied
    assert decide(StageMode.FORWARD_ONLY, "Trial", "Lead").reason == "not_forward"


def test_forward_only_refuses_a_stage_outside_the_pipeline():
    with pytest.raises(InvalidInput) as refused:
        decide(StageMode.FORWARD_ONLY, "Lead", "Galaxy")
    assert refused.value.code == "unknown_stage"


def test_agent_wins_keeps_a_stage_an_agent_set():
    skipped = decide(StageMode.AGENT_WINS, "Trial", "Lead", source=StageSource.AGENT)
    assert skipped.reason == "set_by_agent"
    assert decide(StageMode.AGENT_WINS, "Trial", "Lead", source=StageSource.WIDGET).applied


def test_writing_the_current_stage_is_reported_unchanged():
    result = decide(StageMode.OVERWRITE, "Lead", "Lead")
    assert (result.applied, result.reason) == (False, "unchanged")


def run(mode, writes, source=StageSource.WIDGET):
    stage, history = None, []
    for new in writes:
        decision = decide_stage_write(
            mode=mode, current=stage, current_source=source, new=new, pipeline=PIPELINE
        )
        if decision.applied:
            stage = new
            history.append(new)
    return stage, history


@given(st.lists(st.sampled_from(PIPELINE), max_size=30))
def test_forward_only_never_moves_back_whatever_arrives(writes):
    _, history = run(StageMode.FORWARD_ONLY, writes)
    positions = [PIPELINE.index(stage) for stage in history]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)


@given(st.lists(st.sampled_from(PIPELINE), min_size=1, max_size=30))
def test_if_empty_keeps_the_first_write(writes):
    stage, history = run(StageMode.IF_EMPTY, writes)
    assert stage == writes[0] and history == [writes[0]]


@given(st.lists(st.sampled_from(PIPELINE), min_size=1, max_size=30))
def test_overwrite_ends_on_the_last_write(writes):
    stage, _ = run(StageMode.OVERWRITE, writes)
    assert stage == writes[-1]


@given(st.sampled_from(PIPELINE), st.lists(st.sampled_from(PIPELINE), max_size=30))
def test_agent_wins_never_replaces_an_agent_stage_from_the_widget(agent_stage, writes):
    for new in writes:
        decision = decide_stage_write(
            mode=StageMode.AGENT_WINS,
            current=agent_stage,
            current_source=StageSource.AGENT,
            new=new,
            pipeline=PIPELINE,
        )
        assert not decision.applied
