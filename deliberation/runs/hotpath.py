"""Single-statement writes for the hot path of a run: one round trip where the ORM takes several.

A run writes an event per step and looks up the completion cache per model call, so what each of
those costs in database round trips is the harness's overhead per step (bench/
bench_experiment_throughput.py). The ORM's get_or_create is SELECT, SAVEPOINT, INSERT, RELEASE
(inside BEGIN/COMMIT); an INSERT ... ON CONFLICT DO NOTHING RETURNING is one statement, in
autocommit one round trip, and as atomic as the ORM's. Both PostgreSQL and SQLite (3.35+) run
these statements.

The rows are built from model instances (each field's pre_save and get_db_prep_save, as the ORM's
own insert), so defaults and auto_now_add apply and a field added later is written too.
"""

from collections.abc import Sequence

from django.db import connections, models, router


def _connection(model: type[models.Model]):
    return connections[router.db_for_write(model)]


def insert_or_ignore(
    obj: models.Model, *, conflict: Sequence[str], returning: str = "", returning_params: Sequence = ()
) -> tuple | None:
    """INSERT obj unless a row with the same `conflict` fields exists; returns the RETURNING row
    (the primary key, then `returning`'s expressions) when it inserted, None when it did not.

    Sets obj.pk when it inserted. `returning` is SQL appended to the RETURNING list (it may hold
    a scalar subquery: the same statement reads another table, for one round trip instead of two).
    """
    rows = insert_all_or_ignore([obj], conflict=conflict, returning=returning, returning_params=returning_params)
    if not rows:
        return None
    obj.pk = rows[0][0]
    obj._state.adding = False
    obj._state.db = _connection(type(obj)).alias
    return rows[0]


def insert_all_or_ignore(
    objs: Sequence[models.Model], *, conflict: Sequence[str], returning: str = "", returning_params: Sequence = ()
) -> list[tuple]:
    """insert_or_ignore for several rows of one model in one statement: the RETURNING rows of
    those it inserted (say in `returning` which they are: the order is the database's)."""
    model = type(objs[0])
    meta = model._meta
    connection = _connection(model)
    qn = connection.ops.quote_name
    fields = [field for field in meta.local_concrete_fields if field is not meta.pk]
    params = [field.get_db_prep_save(field.pre_save(obj, True), connection) for obj in objs for field in fields]
    conflict_columns = ", ".join(qn(meta.get_field(name).column) for name in conflict)
    row_sql = f"({', '.join(['%s'] * len(fields))})"
    sql = (
        f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(field.column) for field in fields)}) "
        f"VALUES {', '.join([row_sql] * len(objs))} ON CONFLICT ({conflict_columns}) DO NOTHING "
        f"RETURNING {qn(meta.pk.column)}" + (f", {returning}" if returning else "")
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *returning_params])
        return cursor.fetchall()


def update_returning(
    model: type[models.Model], *, set_sql: str, where: dict, fields: Sequence[str]
) -> models.Model | None:
    """UPDATE one row (`set_sql`, e.g. "hits = hits + 1", on the row whose fields equal `where`)
    and return it as an instance holding `fields` (converted as the ORM would), or None when no
    row matched."""
    meta = model._meta
    conditions = [(meta.get_field(name), value) for name, value in where.items()]
    connection = _connection(model)
    qn = connection.ops.quote_name
    rows = _update_returning(
        model,
        set_sql=set_sql,
        where_sql=" AND ".join(f"{qn(field.column)} = %s" for field, _ in conditions),
        params=[field.get_db_prep_value(value, connection) for field, value in conditions],
        fields=fields,
    )
    return rows[0] if rows else None


def update_returning_many(
    model: type[models.Model], *, set_sql: str, key: str, values: Sequence, fields: Sequence[str]
) -> list[models.Model]:
    """update_returning for the rows whose field `key` is any of `values`, in one statement: the
    rows it updated (in the database's order; put `key` in `fields` to tell them apart)."""
    if not values:
        return []
    field = model._meta.get_field(key)
    connection = _connection(model)
    return _update_returning(
        model,
        set_sql=set_sql,
        where_sql=f"{connection.ops.quote_name(field.column)} IN ({', '.join(['%s'] * len(values))})",
        params=[field.get_db_prep_value(value, connection) for value in values],
        fields=fields,
    )


def _update_returning(
    model: type[models.Model], *, set_sql: str, where_sql: str, params: Sequence, fields: Sequence[str]
) -> list[models.Model]:
    meta = model._meta
    connection = _connection(model)
    qn = connection.ops.quote_name
    wanted = {meta.get_field(name) for name in fields}
    selected = [field for field in meta.concrete_fields if field in wanted]  # from_db wants model order
    sql = (
        f"UPDATE {qn(meta.db_table)} SET {set_sql} WHERE {where_sql} "
        f"RETURNING {', '.join(qn(field.column) for field in selected)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    columns = [field.get_col(meta.db_table) for field in selected]
    converters = [connection.ops.get_db_converters(column) + column.get_db_converters(connection) for column in columns]
    instances = []
    for row in rows:
        values = []
        for column, converting, value in zip(columns, converters, row):
            for converter in converting:
                value = converter(value, column, connection)
            values.append(value)
        instances.append(model.from_db(connection.alias, [field.attname for field in selected], values))
    return instances
