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
    obj: models.Model,
    *,
    conflict: Sequence[str],
    returning: str = "",
    returning_params: Sequence = (),
    before: Sequence[tuple[str, list]] = (),
) -> tuple | None:
    """INSERT obj unless a row with the same `conflict` fields exists; returns the RETURNING row
    (the primary key, then `returning`'s expressions) when it inserted, None when it did not.

    Sets obj.pk when it inserted. `returning` is SQL appended to the RETURNING list (it may hold
    a scalar subquery: the same statement reads another table, for one round trip instead of two).
    """
    rows = insert_all_or_ignore(
        [obj], conflict=conflict, returning=returning, returning_params=returning_params, before=before
    )
    if not rows:
        return None
    obj.pk = rows[0][0]
    obj._state.adding = False
    obj._state.db = _connection(type(obj)).alias
    return rows[0]


def insert_all_or_ignore(
    objs: Sequence[models.Model],
    *,
    conflict: Sequence[str],
    returning: str = "",
    returning_params: Sequence = (),
    before: Sequence[tuple[str, list]] = (),
) -> list[tuple]:
    """insert_or_ignore for several rows of one model in one statement: the RETURNING rows of
    those it inserted (say in `returning` which they are: the order is the database's).
    `before`: statements (SQL and parameters, e.g. insert_sql's) written with it, in the same
    statement where the database allows it (PostgreSQL: data-modifying WITH queries), else one
    after another, first."""
    model = type(objs[0])
    connection = _connection(model)
    qn = connection.ops.quote_name
    sql, params = insert_sql(objs, conflict=conflict)
    sql += f" RETURNING {qn(model._meta.pk.column)}" + (f", {returning}" if returning else "")
    with connection.cursor() as cursor:
        if before and connection.vendor != "postgresql":
            for statement in before:
                cursor.execute(*statement)
            before = ()
        if before:
            sql = f"WITH {', '.join(f'b{index} AS ({statement[0]})' for index, statement in enumerate(before))} {sql}"
        cursor.execute(sql, [*(param for statement in before for param in statement[1]), *params, *returning_params])
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


def insert_sql(
    objs: Sequence[models.Model], *, conflict: Sequence[str], update: Sequence[str] = ()
) -> tuple[str, list]:
    """The INSERT of `objs` (one model) as SQL and parameters: a row whose `conflict` fields exist
    is left alone, or with `update` its fields are set to the new row's (an upsert)."""
    meta = type(objs[0])._meta
    connection = _connection(type(objs[0]))
    qn = connection.ops.quote_name
    fields = [field for field in meta.local_concrete_fields if field is not meta.pk]
    params = [field.get_db_prep_save(field.pre_save(obj, True), connection) for obj in objs for field in fields]
    conflict_columns = ", ".join(qn(meta.get_field(name).column) for name in conflict)
    row_sql = f"({', '.join(['%s'] * len(fields))})"
    columns = [qn(meta.get_field(name).column) for name in update]
    action = f"DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in columns)}" if columns else "DO NOTHING"
    sql = (
        f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(field.column) for field in fields)}) "
        f"VALUES {', '.join([row_sql] * len(objs))} ON CONFLICT ({conflict_columns}) {action}"
    )
    return sql, params


def update_sql(model: type[models.Model], *, pk: object, values: dict) -> tuple[str, list]:
    """The UPDATE of one row's fields (`values`: field name -> value, saved as the ORM saves them)."""
    meta = model._meta
    connection = _connection(model)
    qn = connection.ops.quote_name
    fields = [meta.get_field(name) for name in values]
    params = [field.get_db_prep_save(value, connection) for field, value in zip(fields, values.values())]
    sets = ", ".join(f"{qn(field.column)} = %s" for field in fields)
    return f"UPDATE {qn(meta.db_table)} SET {sets} WHERE {qn(meta.pk.column)} = %s", [*params, pk]


def write_together(
    *,
    model: type[models.Model],
    first: tuple[str, list] | None,
    returns: str,
    then: Sequence[tuple[str, list]],
    last: tuple[str, list],
) -> list:
    """Run the statements `first` (an INSERT), `then` and `last` (SQL and parameters) as one
    statement where the database allows it (PostgreSQL: data-modifying WITH queries, each run
    once and to its end), else one after another. Returns the column `returns` of the rows
    `first` wrote."""
    connection = _connection(model)
    qn = connection.ops.quote_name
    if first is not None:
        first = (f"{first[0]} RETURNING {qn(returns)}", first[1])
    if connection.vendor != "postgresql":
        returned: list = []
        with connection.cursor() as cursor:
            if first is not None:
                cursor.execute(*first)
                returned = [row[0] for row in cursor.fetchall()]
            for statement in (*then, last):
                cursor.execute(*statement)
        return returned
    statements = [statement for statement in (first, *then) if statement is not None]
    names = [f"w{index}" for index in range(len(statements))]
    sql = ", ".join(f"{name} AS ({statement[0]})" for name, statement in zip(names, statements))
    sql = f"WITH {sql} {last[0]}" if statements else last[0]
    if first is not None:
        sql += f" RETURNING (SELECT array_agg(w0.{qn(returns)}) FROM w0)"
    with connection.cursor() as cursor:
        cursor.execute(sql, [param for statement in (*statements, last) for param in statement[1]])
        row = cursor.fetchone() if first is not None else None  # only `first` adds a RETURNING
    return list(row[0]) if row is not None and row[0] is not None else []
