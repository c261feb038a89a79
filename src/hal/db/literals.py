"""Held writes on PostgreSQL (`Driver.hold`, db/prepared.py): a write whose answer no one reads
is kept, its values written into its SQL as literals, and sent with what its transaction sends
next on the connection, at best the COMMIT: one simple query, one round trip for the writes
and the commit (asyncpg sends a parameterized statement and a COMMIT as two).

A value is written in only where its literal is exact: NULL, booleans, integers, strings
(valid UTF-8 without NUL, on a server whose `standard_conforming_strings` is on, where a quote
doubled is the only escape) and aware datetimes. The SQL's own casts (`$3::JSONB`) stay, so
each literal is read as the type the bound value would have been. A statement with any other
value, or with a quoted string of its own, is not held: it runs as it is.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from asyncpg.transaction import Transaction, TransactionState

_PARAMETER = re.compile(r"\$(\d+)")


class NotLiteral(ValueError):
    """A value this module does not write as a literal."""


def split(sql: str) -> list[str | int] | None:
    """PostgreSQL's SQL around its numbered parameters: text, then each parameter's index
    (from 0) and the text after it; None where the SQL quotes a string of its own (a `$n`
    inside it is no parameter)."""
    if "'" in sql:
        return None
    parts: list[str | int] = []
    for index, part in enumerate(_PARAMETER.split(sql)):
        parts.append(int(part) - 1 if index % 2 else part)
    return parts


def written(parts: Sequence[str | int], values: Sequence[Any]) -> str:
    """The SQL with each parameter's value written in (`NotLiteral` for one that is not)."""
    return "".join(literal(values[part]) if type(part) is int else part for part in parts)  # type: ignore[misc]


def literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, str):
        if "\x00" in value or not (value.isascii() or _utf8(value)):
            raise NotLiteral("a string PostgreSQL would refuse")
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, datetime) and value.tzinfo is not None:
        return "'" + value.isoformat() + "'"
    raise NotLiteral(f"{type(value).__name__} is not written as a literal")


def _utf8(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def conforming(connection: Any) -> bool:
    """Whether the asyncpg connection's server reads a backslash in a string as itself."""
    settings = connection.get_settings()
    return getattr(settings, "standard_conforming_strings", None) == "on"


async def commit_after(transaction: Transaction, sql: str) -> None:
    """Commit asyncpg's transaction with `sql` run just before, in the COMMIT's own query.
    If `sql` fails the COMMIT never runs: the transaction is rolled back here (its connection
    left clean) and the error raised."""
    connection = transaction._connection
    if connection._top_xact is transaction:
        connection._top_xact = None
    try:
        await connection.execute(f"{sql};COMMIT")
    except BaseException as error:
        transaction._state = TransactionState.FAILED
        failed = isinstance(error, Exception)  # not cancelled: the connection answers
        if failed and connection._protocol.is_in_transaction() and not connection.is_closed():
            with contextlib.suppress(Exception):  # the first error is the one to raise
                await connection.execute("ROLLBACK")
        raise
    transaction._state = TransactionState.COMMITTED
