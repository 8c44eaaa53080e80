"""Sources read as Arrow record batches and target rows written by binary COPY, through ADBC.

Not wired into the loader yet (issue 15): ``CompiledSource.transform_arrow`` takes these
batches as they come, and :func:`postgresql_append` writes its output. Every batch holds the
values the row path's driver returns, exactly, in the forms ``transforms.kernels.arrays`` reads
(a union child per kind where a column mixes kinds), so the two executions stay comparable:

* **SQLite** (``adbc-driver-sqlite``) types a column by its first batch and then coerces: a
  NUMERIC column of INTEGER and REAL comes back as double (2^53 + 1 becomes 2^53), TEXT in it
  as a number, a first batch of NULLs as int64 (later text then fails). So each source table's
  storage classes are read first (one ``typeof`` scan), and a column with NULLs or several
  classes is selected as its class per row plus one never-NULL column per class, put back
  together as the class says.
* **PostgreSQL** (``adbc-driver-postgresql``) types by the server; ``numeric`` arrives as text
  and becomes ``decimal128(38, scale)`` where the column declares its scale, else exact
  Decimal text (a union child ``decimal-text``).

MySQL/MariaDB have no ADBC driver on PyPI: they stay on PyMySQL rows and
``record_batch_from_rows`` (see ``bench/bench_transforms.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import closing

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

# SQLite storage classes: the Arrow type ADBC gives a column holding only that class, and a
# value of the class that stands in for NULL in a never-NULL per-class column
_CLASSES = {
    "integer": (pa.int64(), "0"),
    "real": (pa.float64(), "0.0"),
    "text": (pa.string(), "''"),
    "blob": (pa.binary(), "x''"),
}


def sqlite_storage_classes(connection, table: str, columns: Sequence[str]) -> dict[str, set[str]]:
    """Per column, the SQLite storage classes its values hold (``null`` included)."""
    quote = '"{}"'.format
    listing = ", ".join(f"group_concat(DISTINCT typeof({quote(c)}))" for c in columns)
    with closing(connection.cursor()) as cursor:
        cursor.execute(f"SELECT {listing} FROM {quote(table)}")
        found = cursor.fetchone()
    return {c: set((v or "null").split(",")) for c, v in zip(columns, found, strict=True)}


def _sqlite_projection(query: sa.Select, classes: dict[str, set[str]]) -> tuple[str, list]:
    """The query's SQL with each column that needs it split by storage class.

    Returns the SQL and, per source column, how to read it: ``(name, None)`` as it is, or
    ``(name, [classes])`` from a ``name#class`` column and one ``name#<class>`` per class.
    """
    expressions, plan = [], []
    for column in query.selected_columns:
        name = column.name
        present = classes[name] - {"null"}
        if len(present) <= 1 and "null" not in classes[name]:
            expressions.append(column)
            plan.append((name, None))
            continue
        kinds = sorted(present)
        expressions.append(sa.func.typeof(column).label(f"{name}#class"))
        for kind in kinds:
            stand_in = sa.literal_column(_CLASSES[kind][1])
            expressions.append(
                sa.case((sa.func.typeof(column) == kind, column), else_=stand_in).label(
                    f"{name}#{kind}"
                )
            )
        plan.append((name, kinds))
    split = query.with_only_columns(*expressions)
    sql = str(split.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    return sql, plan


def _assemble(batch: pa.RecordBatch, plan: list) -> pa.RecordBatch:
    arrays = []
    for name, kinds in plan:
        if kinds is None:
            arrays.append(batch.column(name))
            continue
        storage = batch.column(f"{name}#class")
        if len(kinds) == 0:  # only NULLs
            arrays.append(pa.nulls(len(storage)))
            continue
        if len(kinds) == 1:
            values = batch.column(f"{name}#{kinds[0]}").cast(_CLASSES[kinds[0]][0])
            arrays.append(
                pc.if_else(pc.equal(storage, "null"), pa.scalar(None, values.type), values)
            )
            continue
        arrays.append(_union_of_classes(batch, name, kinds, storage))
    return pa.RecordBatch.from_arrays(arrays, names=[name for name, _kinds in plan])


def _union_of_classes(batch: pa.RecordBatch, name: str, kinds: list[str], storage) -> pa.Array:
    """A dense union with one child per storage class (and one for NULL), in row order."""
    classes = storage.to_numpy(zero_copy_only=False)
    codes = np.full(len(classes), len(kinds), dtype=np.int8)  # NULL is the last child
    offsets = np.zeros(len(classes), dtype=np.int32)
    children = []
    for code, kind in enumerate(kinds):
        rows = np.flatnonzero(classes == kind)
        codes[rows] = code
        offsets[rows] = np.arange(len(rows), dtype=np.int32)
        column = batch.column(f"{name}#{kind}").cast(_CLASSES[kind][0])
        children.append(column.take(pa.array(rows)))
    children.append(pa.nulls(1))
    # child names are the Python kinds kernels.arrays reads (plain ones decode as they are)
    names = [{"integer": "int", "real": "float", "text": "str", "blob": "bytes"}[k] for k in kinds]
    return pa.UnionArray.from_dense(pa.array(codes), pa.array(offsets), children, [*names, "null"])


def sqlite_batches(
    path: str, table: str, query: sa.Select, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """The rows of ``query`` (over ``table`` of the SQLite file ``path``) as exact record batches."""
    import adbc_driver_sqlite.dbapi as adbc_sqlite

    with closing(adbc_sqlite.connect(path)) as connection:
        names = [c.name for c in query.selected_columns]
        classes = sqlite_storage_classes(connection, table, names)
        sql, plan = _sqlite_projection(query, classes)
        with closing(connection.cursor()) as cursor:
            cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(batch_rows)})
            cursor.execute(sql)
            for batch in cursor.fetch_record_batch():
                yield _assemble(batch, plan)


# --- PostgreSQL -----------------------------------------------------------------------------


def _numeric_scale(field: pa.Field) -> int | None:
    """The declared scale of a ``numeric(p, s)`` column (typmod = (p << 16 | s) + 4), else None."""
    typmod = int((field.metadata or {}).get(b"POSTGRESQL:typmod", b"-1"))
    return None if typmod < 4 else (typmod - 4) & 0xFFFF


def _exact_numeric(array: pa.Array, field: pa.Field) -> pa.Array:
    text = array.storage if isinstance(array, pa.ExtensionArray) else array
    scale = _numeric_scale(field)
    if scale is not None and scale <= 38:
        try:  # every value prints with the declared scale: the cast is exact (NaN is not)
            return text.cast(pa.decimal128(38, scale))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    nulls = np.flatnonzero(pc.is_null(text).to_numpy(zero_copy_only=False))
    codes = np.zeros(len(text), dtype=np.int8)
    codes[nulls] = 1
    offsets = np.arange(len(text), dtype=np.int32)
    offsets[nulls] = 0
    return pa.UnionArray.from_dense(
        pa.array(codes),
        pa.array(offsets),
        [pc.fill_null(text, "0"), pa.nulls(1)],
        ["decimal-text", "null"],
    )


def _is_numeric(field: pa.Field) -> bool:
    return (field.metadata or {}).get(b"POSTGRESQL:type") == b"numeric"


def postgresql_batches(dsn: str, query: sa.Select, batch_rows: int) -> Iterator[pa.RecordBatch]:
    """The rows of ``query`` on PostgreSQL (``dsn``: a libpq URL) as exact record batches."""
    import adbc_driver_postgresql.dbapi as adbc_pg

    sql = str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    with (
        closing(adbc_pg.connect(dsn)) as connection,
        closing(connection.cursor()) as cursor,
    ):
        cursor.adbc_statement.set_options(
            **{"adbc.postgresql.batch_size_hint_bytes": str(batch_rows * 256)}
        )
        cursor.execute(sql)
        for batch in cursor.fetch_record_batch():
            arrays = [
                _exact_numeric(batch.column(i), field) if _is_numeric(field) else batch.column(i)
                for i, field in enumerate(batch.schema)
            ]
            yield pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def postgresql_append(connection, table: str, batch: pa.RecordBatch) -> int:
    """Append ``batch`` to the existing ``table`` by binary COPY (``adbc_ingest``).

    In the connection's transaction. Columns are cast to the table's own types first (int64
    into an ``integer`` column, say), which fails loudly on a value that does not fit; decimals
    go to ``numeric`` as they are. A union column (values no plain Arrow type holds, such as a
    numeric NaN) is refused: write that chunk by the text COPY of ``db.writes``.
    """
    target = connection.adbc_get_table_schema(table)
    names, arrays = [], []
    for field in target:
        if field.name not in batch.schema.names:
            continue
        array = batch.column(field.name)
        if pa.types.is_union(array.type):
            raise ValueError(f"{table}.{field.name}: a union column has no binary COPY form")
        if not isinstance(field.type, pa.BaseExtensionType) and array.type != field.type:
            array = array.cast(field.type)
        names.append(field.name)
        arrays.append(array)
    with closing(connection.cursor()) as cursor:
        return cursor.adbc_ingest(
            table, pa.RecordBatch.from_arrays(arrays, names=names), mode="append"
        )
