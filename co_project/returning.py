"""`UPDATE … RETURNING` for querysets: change rows and read what the caller needs of them in one
statement, where an update followed by a read would cost a second round trip through the ORM.

PostgreSQL and SQLite ≥ 3.35 return the rows from the update itself. An older SQLite gets the
same answer from a locked read, the update and a second read, in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connections, router, transaction
from django.db.models import QuerySet
from django.db.models.sql import UpdateQuery


def update_returning(queryset: QuerySet, returning: Sequence[str], **values: Any) -> list[tuple[Any, ...]]:
    """`queryset.update(**values)`, answering the updated rows' `returning` fields (converted as the
    ORM reads them) instead of their number. Same rules as `update()`: no signals, no `save()`."""
    model = queryset.model
    database = queryset._db or router.db_for_write(model)
    if not connections[database].features.can_return_rows_from_update:
        with transaction.atomic(using=database):
            keys = list(queryset.select_for_update().values_list("pk", flat=True))
            model._base_manager.using(database).filter(pk__in=keys).update(**values)
            return list(model._base_manager.using(database).filter(pk__in=keys).values_list(*returning))
    query = queryset.query.chain(UpdateQuery)
    query.add_update_values(values)
    query.clear_select_clause()
    fields = [model._meta.get_field(name) for name in returning]
    with transaction.mark_for_rollback_on_error(using=database):
        return [tuple(row) for row in query.get_compiler(database).execute_returning_sql(fields)]
