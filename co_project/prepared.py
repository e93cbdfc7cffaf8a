"""Statements that every verdict makes, compiled to SQL once instead of on every call.

The ORM builds and compiles a query anew on each call, which costs more CPU than the database
then spends running it; a verdict makes a dozen such statements (the README's benchmarks give
the paired A/B that keeps this module). The SQL of a given query never changes, only its
values. A `PreparedRead` (a SELECT) or `PreparedUpdate` builds its queryset once per database,
with a `Param` where each value goes, keeps the compiled SQL, and runs it with each call's
values — prepared for the database by the same fields, and read back through the same
converters, as the ORM would. The statement itself is the ORM's own; only the per-call building
is saved. No signals, no `save()`: as `QuerySet.update()`.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable
from typing import Any

from django.db import NotSupportedError, connections, router
from django.db.models import Expression, Field, Model, QuerySet
from django.db.models.sql import UpdateQuery
from django.db.models.sql.compiler import SQLCompiler, SQLUpdateCompiler
from django.db.transaction import TransactionManagementError


class Param(Expression):
    """Where a call's value goes: the value named `name`, prepared for the database as `field`
    prepares its values."""

    for_save = False  # a value to store (an UPDATE's SET): prepared as `save()` prepares it

    def __init__(self, name: str, field: Field) -> None:
        super().__init__(output_field=field)
        self.name = name

    def resolve_expression(
        self, query: Any = None, allow_joins: bool = True, reuse: Any = None, summarize: bool = False, for_save: bool = False
    ) -> Param:
        param = super().resolve_expression(query, allow_joins, reuse, summarize, for_save)
        param.for_save = for_save
        return param

    def as_sql(self, compiler: SQLCompiler, connection: Any) -> tuple[str, list[Any]]:
        return "%s", [self]

    def prepare(self, values: dict[str, Any], connection: Any) -> Any:
        field, value = self.output_field, values[self.name]
        if self.for_save:  # JSONField stores None as SQL NULL, not JSON null, as save() does
            return field.get_db_prep_save(value, connection)
        return field.get_db_prep_value(value, connection, prepared=False)


class _Prepared(ABC):
    """One compiled statement per database and shape (hashable, default None): `shape` tells
    apart statements whose SQL differs, such as `__in` lists of different lengths."""

    def __init__(self, model: type[Model]) -> None:
        self.model = model
        self._compiled: dict[tuple[str, Hashable], Any] = {}
        self._lock = threading.Lock()

    @abstractmethod
    def _compile(self, alias: str, shape: Hashable) -> Any:
        """The statement for this database and shape, in the form the subclass runs it."""

    def _statement(self, alias: str, shape: Hashable) -> Any:
        compiled = self._compiled.get((alias, shape))
        if compiled is None:
            compiled = self._compile(alias, shape)
            with self._lock:
                compiled = self._compiled.setdefault((alias, shape), compiled)
        return compiled

    @staticmethod
    def _execute(connection: Any, sql: str, params: list[Any], values: dict[str, Any]) -> Any:
        cursor = connection.cursor()
        cursor.execute(sql, [p.prepare(values, connection) if isinstance(p, Param) else p for p in params])
        return cursor


class PreparedRead(_Prepared):
    """A SELECT: `build(shape)` returns the queryset — a `values_list`, or a model queryset
    (with `only` for some fields) — with `Param`s for its values."""

    def __init__(self, model: type[Model], build: Callable[[Hashable], QuerySet]) -> None:
        super().__init__(model)
        self.build = build

    def _compile(self, alias: str, shape: Hashable) -> tuple[str, list[Any], SQLCompiler, bool]:
        compiler = self.build(shape).query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        locks = bool(compiler.query.select_for_update and compiler.connection.features.has_select_for_update)
        return sql, list(params), compiler, locks

    def rows(self, shape: Hashable = None, **values: Any) -> list[tuple[Any, ...]]:
        """Every row, as the queryset's `values_list` would give it (tuples)."""
        alias = router.db_for_read(self.model)
        connection = connections[alias]
        sql, params, compiler, locks = self._statement(alias, shape)
        if locks and connection.get_autocommit():  # the ORM's own check, made on every call
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        with self._execute(connection, sql, params, values) as cursor:
            fetched = cursor.fetchall()
        return list(compiler.results_iter(results=[fetched], tuple_expected=True)) if fetched else []

    def first(self, shape: Hashable = None, **values: Any) -> tuple[Any, ...] | None:
        rows = self.rows(shape, **values)
        return rows[0] if rows else None

    def instance(self, shape: Hashable = None, **values: Any) -> Model | None:
        """The first row as a model instance with only the selected fields loaded (like `only`),
        which `save(update_fields=...)` writes back as usual."""
        row = self.first(shape, **values)
        if row is None:
            return None
        alias = router.db_for_read(self.model)
        compiler = self._statement(alias, shape)[2]
        names = [column.target.attname for column, _, _ in compiler.select]
        return self.model.from_db(alias, names, row)


_RETURNING = object()  # marks the shape of a `returning()` statement


class PreparedUpdate(_Prepared):
    """`QuerySet.update()` of a fixed shape: `build(shape)` returns (queryset, {field name: value
    or expression}), with `Param`s for the per-call values. `returning()` runs it as
    `UPDATE … RETURNING` every column, for a caller that needs the rows it changed: one statement
    where an update and a read would be two."""

    def __init__(self, model: type[Model], build: Callable[[Hashable], tuple[QuerySet, dict[str, Any]]]) -> None:
        super().__init__(model)
        self.build = build

    def _compile(self, alias: str, shape: Hashable) -> tuple[str, list[Any], tuple[SQLUpdateCompiler, list[Any]] | None]:
        returning, shape = shape if isinstance(shape, tuple) and shape[:1] == (_RETURNING,) else (None, shape)
        queryset, changes = self.build(shape)
        query = queryset.query.chain(UpdateQuery)
        query.add_update_values(changes)
        compiler = query.get_compiler(using=alias)
        if returning is None:
            sql, params = compiler.as_sql()
            return sql, list(params), None
        if not compiler.connection.features.can_return_rows_from_update:
            raise NotSupportedError("UPDATE … RETURNING needs PostgreSQL or SQLite 3.35 or later")
        fields = self.model._meta.concrete_fields
        compiler.returning_fields = fields
        sql, params = compiler.as_sql()
        converters = compiler.get_converters([field.get_col(self.model._meta.db_table) for field in fields])
        return sql, list(params), (compiler, converters)

    def run(self, shape: Hashable = None, **values: Any) -> int:
        """The number of rows changed."""
        alias = router.db_for_write(self.model)
        connection = connections[alias]
        sql, params, _ = self._statement(alias, shape)
        with self._execute(connection, sql, params, values) as cursor:
            return cursor.rowcount

    def returning(self, shape: Hashable = None, **values: Any) -> list[Model]:
        """The rows changed, as model instances read back through the fields' converters."""
        alias = router.db_for_write(self.model)
        connection = connections[alias]
        sql, params, (compiler, converters) = self._statement(alias, (_RETURNING, shape))
        with self._execute(connection, sql, params, values) as cursor:
            rows = connection.ops.fetch_returned_rows(cursor, compiler.returning_params)
        if converters:
            rows = compiler.apply_converters(rows, converters)
        names = [field.attname for field in self.model._meta.concrete_fields]
        return [self.model.from_db(alias, names, tuple(row)) for row in rows]
