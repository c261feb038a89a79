"""Statements compiled once and run on the driver's own connection: the hot path's lane.

SQLAlchemy's execution of a cached statement still costs about 100 us of Python a call on our
machines (execution context, cache key, events, result metadata, two greenlet switches per
driver call), five times what SQLite takes to run it (bench/RESULTS.md, "The hot path"). A
`Prepared` statement is a Core statement compiled once per dialect: its SQL text, its
parameters' order and bind processors, its result columns and their result processors are
kept, and `Tx.execute` runs it on the transaction's driver connection directly: `sqlite3`'s
own cursor (the connection runs inline, db/sqlite.py) or an asyncpg prepared statement (the
SQLAlchemy adapter's own statement cache and transaction). Same SQL, same types in and out,
the same transaction and the same exceptions (`sqlalchemy.exc.DBAPIError` subclasses, so a
lost race is retried as before); statement observers (`Database.observe`) see it like any other.

Only statements fixed at import or built once per dialect are prepared: a statement whose
SQL depends on its values (an IN list) is refused here and runs through SQLAlchemy.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from operator import itemgetter
from typing import TYPE_CHECKING, Any, ClassVar, cast

from asyncpg.exceptions import InterfaceError
from asyncpg.transaction import Transaction, TransactionState
from sqlalchemy import Executable
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ClauseElement

from hal.db import literals

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

Processor = Callable[[Any], Any] | None


class Row(tuple):  # type: ignore[type-arg]
    """A result row: by position, by column name as an attribute, and as `_mapping`."""

    __slots__ = ()
    _keys: ClassVar[dict[str, int]] = {}

    def __getattr__(self, name: str) -> Any:
        try:
            return self[self._keys[name]]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def _mapping(self) -> dict[str, Any]:
        return {key: self[index] for key, index in self._keys.items()}


class Fetched:
    """What a prepared statement answered: the rows as the driver gave them (`raw`), the
    rows processed into Python values (`rows`, on first use), and the row count."""

    __slots__ = ("_made", "_rows", "raw", "rowcount")

    def __init__(
        self, raw: Sequence[Sequence[Any]], rowcount: int, made: Callable[[], list[Row]] = list
    ) -> None:
        self.raw, self.rowcount = raw, rowcount
        self._made: Callable[[], list[Row]] | None = made
        self._rows: list[Row] = []

    @property
    def rows(self) -> list[Row]:
        if self._made is not None:
            self._rows, self._made = self._made(), None
        return self._rows

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def all(self) -> list[Row]:
        return self.rows

    def first(self) -> Row | None:
        return self.rows[0] if self.rows else None

    def one(self) -> Row:
        if len(self.rows) != 1:
            raise ValueError(f"expected one row, got {len(self.rows)}")
        return self.rows[0]

    def one_or_none(self) -> Row | None:
        if len(self.rows) > 1:
            raise ValueError(f"expected at most one row, got {len(self.rows)}")
        return self.first()

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalar_one_or_none(self) -> Any:
        row = self.one_or_none()
        return None if row is None else row[0]

    def scalars(self) -> list[Any]:
        return [row[0] for row in self.rows]


class _Form:
    """A statement as one dialect runs it."""

    __slots__ = (
        "binds",
        "computed",
        "defaults",
        "given",
        "keys",
        "names",
        "parts",
        "processed",
        "processors",
        "row",
        "sql",
        "types",
    )  # fmt: skip

    def __init__(self, statement: ClauseElement, dialect: Dialect, keys: Sequence[str]) -> None:
        # As SQLAlchemy does: an INSERT or UPDATE without values of its own sets the columns
        # its parameters name.
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect, column_keys=list(keys)))
        if "POSTCOMPILE" in compiled.string or not compiled.positional:
            raise ValueError("a statement whose SQL depends on its values cannot be prepared")
        self.sql = compiled.string
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        processors = cast(dict[str, Processor], compiled._bind_processors)  # none are tuples
        self.binds: tuple[Processor, ...] = tuple(
            _faster(compiled.binds[name].type, dialect) or processors.get(name)
            for name in self.names
        )
        self.defaults = {
            name: bind.effective_value
            for name, bind in compiled.binds.items()
            if not bind.required and name in self.names
        }
        # Python-side column defaults (`default=utcnow`): computed at each execution.
        self.computed: dict[str, Callable[[], Any]] = {}
        for column in (*compiled.insert_prefetch, *compiled.update_prefetch):
            default = column.default if column in compiled.insert_prefetch else column.onupdate
            if default is None or not (default.is_scalar or default.is_callable):
                raise ValueError(f"{column.key}: only scalar or callable defaults are prepared")
            arg: Any = default.arg  # type: ignore[attr-defined]
            self.computed[column.key] = (
                partial(_same, arg) if default.is_scalar else partial(arg, None)
            )
        columns = compiled._result_columns
        self.keys = tuple(column.keyname for column in columns)
        self.types = tuple(column.type for column in columns)
        self.processors: tuple[Processor, ...] | None = None  # on the first answer (its types)
        self.row = _row_class(self.keys)
        # `arguments`: the values read from the parameters in one C call, then processed.
        self.given: Callable[[Mapping[str, Any]], Sequence[Any]] = _getter(self.names)
        self.processed = tuple((i, p) for i, p in enumerate(self.binds) if p is not None)
        # PostgreSQL: the SQL around its parameters, for a held write (db/literals.py).
        self.parts = literals.split(self.sql) if dialect.name == "postgresql" else None

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        """The values to bind, in the SQL's order, each bind processed."""
        try:  # every value given (the usual case): read in C
            values = list(self.given(params))
        except KeyError:
            values = [
                params[name] if name in params
                else self.computed[name]() if name in self.computed
                else self.defaults[name]
                for name in self.names
            ]  # fmt: skip
        for index, process in self.processed:
            values[index] = process(values[index])
        return values

    def result_processors(self, dialect: Dialect, coltypes: Sequence[Any]) -> tuple[Processor, ...]:
        if self.processors is None:
            self.processors = tuple(
                _faster(kind, dialect, "result") or kind._cached_result_processor(dialect, coltype)
                for kind, coltype in zip(self.types, coltypes, strict=True)
            )
        return self.processors

    def rows(
        self, dialect: Dialect, raw: Sequence[Sequence[Any]], coltypes: Sequence[Any]
    ) -> list[Row]:
        if not self.keys:
            return [self.row(values) for values in raw]
        processors = self.result_processors(dialect, coltypes)
        make = self.row
        if not any(processors):
            return [make(values) for values in raw]
        return [
            make([v if p is None else p(v) for p, v in zip(processors, values, strict=True)])
            for values in raw
        ]


def _faster(kind: Any, dialect: Dialect, way: str = "bind") -> Processor:
    """A type's own faster equivalent of its bind or result processing on `dialect`, if it
    has one (db/types.py: UTCDateTime on SQLite)."""
    faster = getattr(kind, f"prepared_{way}_processor", None)
    return faster(dialect) if faster is not None else None


def _row_class(keys: Sequence[str]) -> type[Row]:
    """A Row for these columns: each name a property reading its position in C (as a named
    tuple's), where the name is free; `Row.__getattr__` answers the others."""
    indexes = _indexes(keys)
    fields = {
        name: property(itemgetter(index))
        for name, index in indexes.items()
        if name.isidentifier() and not name.startswith("_") and not hasattr(tuple, name)
    }
    return type("Row", (Row,), {"__slots__": (), "_keys": indexes, **fields})


def _getter(names: Sequence[str]) -> Callable[[Mapping[str, Any]], Sequence[Any]]:
    """The values of `names` in a mapping, as a sequence (`itemgetter` gives a lone value
    bare)."""
    if len(names) == 1:
        name = names[0]
        return lambda params: (params[name],)
    return itemgetter(*names) if names else lambda _params: ()


def _same(value: Any) -> Any:
    return value


def _indexes(keys: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, key in enumerate(keys):
        found.setdefault(key, index)
    return found


class Prepared:
    """A Core statement compiled once per dialect, run by `Tx.execute` on the driver."""

    __slots__ = ("_forms", "statement", "unlocked_read")

    def __init__(self, statement: Executable, *, unlocked_read: bool = False) -> None:
        if isinstance(statement, Insert) and not statement._returning:
            # Rows back only when asked for: PostgreSQL's dialect would add `RETURNING` of
            # the primary key, and rows back from several parameter sets send the statement
            # through SQLAlchemy's execution (Tx.execute), which then ends the transaction.
            statement = statement.inline()
        self.statement = statement
        # A read taking no lock: as a transaction's first statement on PostgreSQL, it runs
        # before BEGIN (READ COMMITTED gives it the same snapshot either way), and a
        # transaction that runs nothing else then costs no BEGIN and no COMMIT.
        self.unlocked_read = unlocked_read
        self._forms: dict[tuple[str, ...], _Form] = {}

    def form(
        self, dialect: Dialect, params: Mapping[str, Any] | list[dict[str, Any]] | None
    ) -> _Form:
        """The statement as `dialect` runs it with these parameters' names."""
        first = params[0] if isinstance(params, list) else params
        # The names in their given order: the same names in another order make another key
        # for an equal form, which costs a compilation once and spares hashing a set each call.
        key = (dialect.name, *(first or ()))
        found = self._forms.get(key)
        if found is None:
            statement = cast(ClauseElement, self.statement)
            found = self._forms[key] = _Form(statement, dialect, sorted(key[1:]))
        return found


HELD_BY = "hal.driver"  # the Driver holding writes on a connection (its `info`)


def prepared(statement: Executable, *, unlocked_read: bool = False) -> Prepared:
    return Prepared(statement, unlocked_read=unlocked_read)


class Driver:
    """A transaction's driver connection, as `Tx.execute` uses it for prepared statements."""

    def __init__(
        self,
        connection: AsyncConnection,
        raw: Any,
        *,
        observers: Sequence[Callable[[str], None]] = (),
    ) -> None:
        self.connection = connection
        self.dialect = connection.dialect
        self.adapter = raw.dbapi_connection  # SQLAlchemy's asyncio adapter of the driver
        self.postgres = self.dialect.name == "postgresql"
        self.observers = observers  # shown SQLite's BEGIN (Database.observe)
        # PostgreSQL: writes held for the next thing sent (`hold`): each one's SQL with its
        # parameters (what an error names) and with its values written in (what is sent).
        self.held: list[tuple[str, str]] = []
        if self.postgres:  # a statement SQLAlchemy runs here sends them first (Database)
            connection.sync_connection.info[HELD_BY] = self  # type: ignore[union-attr]

    @property
    def sqlite(self) -> Any:
        """SQLite's sqlite3 connection (it runs inline, db/sqlite.py)."""
        return self.adapter._connection.sqlite

    async def run(
        self,
        form: _Form,
        params: Mapping[str, Any] | list[dict[str, Any]] | None,
        *,
        begin: bool = True,
    ) -> Fetched:
        try:
            if self.postgres:
                return await self._asyncpg(form, params, begin)
            return self._sqlite(form, params, begin)
        except DBAPIError:  # held writes sent first failed (`_send_held`)
            raise
        except Exception as error:
            raise self._wrapped(form.sql, error) from error

    def hold(self, form: _Form, params: Mapping[str, Any] | list[dict[str, Any]] | None) -> bool:
        """PostgreSQL: keep a write whose answer no one reads, to go with whatever this
        connection sends next, at best the COMMIT (`end`): one round trip for both
        (db/literals.py). False where it cannot be held (SQLite, a statement answering rows,
        no transaction begun, a value not written as a literal): the caller runs it."""
        adapter = self.adapter
        if (
            form.parts is None
            or form.keys
            or adapter._transaction is None
            or not literals.conforming(adapter._connection)
        ):
            return False
        many = params if isinstance(params, list) else [params or {}]
        try:
            written = [literals.written(form.parts, form.arguments(one)) for one in many]
        except literals.NotLiteral:
            return False
        self.held.extend((form.sql, sql) for sql in written)
        return True

    async def send_held(self) -> None:
        """Send the held writes now, ahead of a statement run another way."""
        if self.held:
            async with self.adapter._execute_mutex:
                await self._send_held()

    async def _send_held(self) -> None:
        held, self.held = self.held, []
        try:
            await self.adapter._connection.execute(";".join(sql for _, sql in held))
        except Exception as error:
            raise self._wrapped(";".join(named for named, _ in held), error) from error

    async def begin_with(self, sql: str, observers: Iterable[Callable[[str], None]]) -> bool:
        """PostgreSQL: begin the transaction with `sql` in BEGIN's own message (a simple query
        of both, one round trip instead of two); False when it had begun (or begins with an
        isolation level or access mode of its own): the caller runs `sql` its own way.
        `sql` takes no parameters, so only SQL made of our own values belongs here."""
        adapter = self.adapter
        if (
            not self.postgres
            or adapter._transaction is not None
            or adapter.isolation_level is not None
            or adapter.readonly
            or adapter.deferrable
        ):
            return False
        for observe in observers:
            observe(sql)
        async with adapter._execute_mutex:
            transaction = _BegunWith(adapter._connection, sql)
            try:
                await transaction.start()
            except Exception as error:
                raise self._wrapped(sql, error) from error
            finally:
                if transaction.begun:  # even when `sql` failed: its rollback ends it
                    adapter._transaction = transaction
        return True

    async def end(self, *, commit: bool) -> None:
        """PostgreSQL: commit or roll back the transaction a prepared statement began, when
        SQLAlchemy never joined it (then SQLAlchemy ends it, db/engine.py); held writes go
        with the COMMIT, or are dropped with the ROLLBACK."""
        adapter = self.adapter
        transaction = adapter._transaction
        held, self.held = self.held, []
        if transaction is None:
            return
        ending = transaction.commit if commit else transaction.rollback
        named = "COMMIT" if commit else "ROLLBACK"
        if commit and held:  # sent with the COMMIT, one round trip for all
            ending = partial(literals.commit_after, transaction, ";".join(sql for _, sql in held))
            named = ";".join([*(sql for sql, _ in held), named])
        try:
            await adapter._call_and_discard(ending)
        except Exception as error:
            raise self._wrapped(named, error) from error

    def _sqlite(
        self,
        form: _Form,
        params: Mapping[str, Any] | list[dict[str, Any]] | None,
        begin: bool,
    ) -> Fetched:
        inline = self.adapter._connection  # db/sqlite.py
        connection = inline.sqlite
        if begin:
            if not connection.in_transaction:
                begin_immediate(connection, self.observers)
            elif inline.savepoint == "pending":  # a call joined to a shared commit
                inline.open_savepoint(self.observers)
        if isinstance(params, list):
            cursor = connection.executemany(form.sql, [form.arguments(p) for p in params])
            return Fetched([], cursor.rowcount)
        cursor = connection.execute(form.sql, form.arguments(params or {}))
        try:
            raw = cursor.fetchall() if form.keys else []
            coltypes = [None] * len(form.keys)
            return Fetched(raw, cursor.rowcount, partial(form.rows, self.dialect, raw, coltypes))
        finally:
            cursor.close()

    async def _asyncpg(
        self,
        form: _Form,
        params: Mapping[str, Any] | list[dict[str, Any]] | None,
        begin: bool,
    ) -> Fetched:
        adapter = self.adapter
        async with adapter._execute_mutex:
            if self.held:
                await self._send_held()
            if adapter._transaction is None and begin:
                await adapter._start_transaction()
            statement, attributes = await adapter._prepare(form.sql, 0)
            if isinstance(params, list):
                await statement.executemany([form.arguments(p) for p in params])
                return Fetched([], len(params))
            records = await statement.fetch(*form.arguments(params or {}))
            coltypes = [attribute.type.oid for attribute in attributes or ()]
            made = partial(form.rows, self.dialect, records, coltypes)
            return Fetched(records, _rowcount(statement), made)

    def _wrapped(self, sql: str, error: Exception) -> BaseException:
        """The exception SQLAlchemy would have raised: the driver's error as the dialect's
        DBAPI error, then as `sqlalchemy.exc.DBAPIError` (a dead connection invalidated)."""
        dbapi = self.dialect.loaded_dbapi
        if self.postgres and not isinstance(error, dbapi.Error):
            try:
                self.adapter._handle_exception(error)
            except Exception as translated:
                error = translated
        if not isinstance(error, dbapi.Error):
            return error
        invalidated = self.dialect.is_disconnect(error, self.adapter, None)
        if invalidated:
            self.connection.sync_connection.invalidate(error)  # type: ignore[union-attr]
        return DBAPIError.instance(
            sql, None, error, dbapi.Error, hide_parameters=True,
            connection_invalidated=invalidated, dialect=self.dialect,
        )  # fmt: skip


class _BegunWith(Transaction):  # type: ignore[misc]  # asyncpg has no type information
    """asyncpg's transaction begun by `BEGIN; <sql>` in one simple query (Driver.begin_with):
    its own `start` sends BEGIN alone. Committed and rolled back as any other."""

    __slots__ = ("_sql",)

    def __init__(self, connection: Any, sql: str) -> None:
        super().__init__(connection, None, False, False)
        self._sql = sql

    @property
    def begun(self) -> bool:
        return self._state is TransactionState.STARTED

    async def start(self) -> None:
        connection = self._connection
        if connection._top_xact is not None or connection._protocol.is_in_transaction():
            raise InterfaceError("a transaction was already begun on this connection")
        connection._top_xact = self
        try:
            await connection.execute(f"BEGIN; {self._sql}")
        finally:
            begun = connection._protocol.is_in_transaction()
            self._state = TransactionState.STARTED if begun else TransactionState.FAILED  # type: ignore[misc]
            if not begun:
                connection._top_xact = None


def begin_immediate(sqlite: sqlite3.Connection, observers: Iterable[Callable[[str], None]]) -> None:
    """Begin SQLite's transaction holding the write lock up front (db/sqlite.py)."""
    run_sqlite(sqlite, _BEGIN, observers)


def run_sqlite(
    sqlite: sqlite3.Connection, sql: str, observers: Iterable[Callable[[str], None]]
) -> None:
    """A statement of SQLite's transaction control (BEGIN, SAVEPOINT...) on sqlite3 itself,
    shown to the observers, its error raised as SQLAlchemy would."""
    for observe in observers:
        observe(sql)
    try:
        sqlite.execute(sql)
    except sqlite3.Error as error:
        raise DBAPIError.instance(sql, None, error, sqlite3.Error) from error


_BEGIN = "BEGIN IMMEDIATE"


def _rowcount(statement: Any) -> int:
    status = statement.get_statusmsg() or ""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else -1
