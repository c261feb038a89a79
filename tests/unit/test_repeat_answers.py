"""The kept repeat answers of a process (services/repeat_answers.py): bounded, oldest first,
and none kept past its time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hal.services.installation import Claim
from hal.services.repeat_answers import KeptAnswer, RepeatAnswers, RepeatRead


def _answer(until: datetime) -> KeptAnswer:
    read = RepeatRead(project=Any, rows=(), until=until)  # type: ignore[arg-type]
    return KeptAnswer("app", "v", read, b"{}", Claim(None), (), False, "matched")


def test_at_most_size_answers_are_kept_the_oldest_dropped_first() -> None:
    answers = RepeatAnswers(size=3)
    later = datetime.now(UTC) + timedelta(minutes=1)
    for n in range(5):
        answers.keep(b"%d" % n, "t", _answer(later))
    assert len(answers) == 3
    assert answers.get(b"0", "t") is None and answers.get(b"1", "t") is None
    assert answers.get(b"4", "t") is not None
    assert answers.get(b"4", "another token") is None


def test_answers_past_their_time_are_dropped_as_new_ones_come() -> None:
    answers = RepeatAnswers()
    now = datetime.now(UTC)
    answers.keep(b"old", "t", _answer(now - timedelta(seconds=1)))
    answers.keep(b"new", "t", _answer(now + timedelta(minutes=1)))
    assert answers.get(b"old", "t") is None
    assert answers.get(b"new", "t") is not None
    answers.forget(b"new", "t")
    assert len(answers) == 0
