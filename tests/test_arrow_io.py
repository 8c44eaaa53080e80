"""Sources read through ADBC as Arrow batches hold exactly what the row path's driver returns.

SQLite through ``adbc-driver-sqlite`` coerces a column to the type of its first batch (2^53 + 1
read as a double is 2^53; a first batch of NULLs types the column int64 and later text fails),
so ``arrow_io`` reads each column by its storage classes. The batches must give back, value
for value and type for type, the rows SQLAlchemy gives the loader today, and the mapping over
them must be what ``transform_batch`` makes of those rows.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from runbook_lib.config.params import load_params
from runbook_lib.db import arrow_io
from runbook_lib.mapping.compiled import ordered_sources
from runbook_lib.run.context import StageContext
from runbook_lib.transforms.kernels import to_python


def _rows(batches) -> list[tuple]:
    rows = []
    for batch in batches:
        columns = [to_python(batch.column(i)) for i in range(batch.num_columns)]
        rows.extend(zip(*columns, strict=True))
    return rows


def test_adbc_alone_loses_an_integer_in_a_numeric_column_of_reals(tmp_path):
    import adbc_driver_sqlite.dbapi as adbc_sqlite

    path = str(tmp_path / "t.db")
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v NUMERIC)")
        db.executemany("INSERT INTO t VALUES (?, ?)", [(1, 2.5), (2, 2**53 + 1)])
    with adbc_sqlite.connect(path) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT v FROM t ORDER BY id")
        assert cursor.fetch_arrow_table().column(0).to_pylist() == [2.5, 2.0**53]  # the trap


def test_a_sqlite_table_of_every_storage_class_mix_reads_back_exactly(tmp_path):
    path = tmp_path / "mixed.db"
    rows = [(i, None, None, None, None) for i in range(1, 3000)]  # a first batch of NULLs
    rows += [
        (3000, 12, "a", b"\x00", 1.5),
        (3001, 12.5, 7, None, 2),
        (3002, 2**53 + 1, 2.5, b"\x01", "x"),
        (3003, "abc", None, None, None),
        (3004, None, "欧阳", None, 2**63 - 1),
    ]
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, n NUMERIC, t TEXT, b BLOB, x)")
        db.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", rows)
        expected = db.execute("SELECT id, n, t, b, x FROM t WHERE id > 5 ORDER BY id").fetchall()
    table = sa.table("t", *(sa.column(c) for c in ("id", "n", "t", "b", "x")))
    query = sa.select(*table.c).where(table.c.id > 5).order_by(table.c.id)
    found = _rows(arrow_io.sqlite_batches(str(path), "t", query, batch_rows=1000))
    assert repr(found) == repr(expected)


def test_every_ci_demo_source_reads_and_maps_the_same_through_adbc(ci_project, ci_demo):
    ctx = StageContext(load_params("ci", project_root=ci_project), None)
    engines = ctx.source_engines()
    for pipeline in ordered_sources(ctx.spec):
        query = pipeline.select()
        with engines[pipeline.system].connect() as connection:
            rows = [tuple(r) for r in connection.execute(query)]
        path = engines[pipeline.system].url.database
        batches = list(arrow_io.sqlite_batches(path, pipeline.table, query, batch_rows=700))
        assert repr(_rows(batches)) == repr(rows), pipeline.label
        start = 0
        for batch in batches:  # the mapping over each batch ≡ the column path over its rows
            chunk = rows[start : start + batch.num_rows]
            start += batch.num_rows
            expected, expected_rejects = pipeline.transform_batch(chunk)
            found, rejects = pipeline.transform_arrow(batch)
            assert repr(found.to_column_batch().pairs()) == repr(expected.pairs()), pipeline.label
            assert repr(rejects) == repr(expected_rejects)


@pytest.mark.postgres
def test_postgresql_batches_are_exact_and_binary_copy_appends_them(postgres_url):
    engine = sa.create_engine(postgres_url)
    values = [
        (
            1,
            Decimal("12.50"),
            Decimal("1.5"),
            "a",
            datetime(2023, 1, 5, 2, tzinfo=UTC),
            True,
            date(2023, 1, 5),
            b"\x01",
            2**40,
        ),
        (2, None, Decimal("NaN"), None, None, None, None, None, None),
        (
            3,
            Decimal("-0.01"),
            Decimal("123456789012345678901234567890.123"),
            "欧阳",
            datetime(1999, 12, 31, tzinfo=UTC),
            False,
            date(1, 1, 1),
            b"",
            -1,
        ),
    ]
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "CREATE TABLE src (id int PRIMARY KEY, price numeric(12, 2), free numeric, name text,"
                " at timestamptz, flag boolean, day date, raw bytea, big bigint)"
            )
        )
        connection.execute(
            sa.text("INSERT INTO src VALUES (:a, :b, :c, :d, :e, :f, :g, :h, :i)"),
            [dict(zip("abcdefghi", row, strict=True)) for row in values],
        )
        connection.execute(sa.text("CREATE TABLE dst (LIKE src)"))
    table = sa.table(
        "src",
        *(sa.column(c) for c in ("id", "price", "free", "name", "at", "flag", "day", "raw", "big")),
    )
    query = sa.select(*table.c).order_by(table.c.id)
    dsn = postgres_url.set(drivername="postgresql").render_as_string(hide_password=False)
    batches = list(arrow_io.postgresql_batches(dsn, query, batch_rows=2))
    found = _rows(batches)
    # repr: the scale of a Decimal and a NaN (not equal to itself) must come back as they are
    assert repr([r[:4] + r[5:] for r in found]) == repr([r[:4] + r[5:] for r in values])
    assert [r[4] for r in found] == [r[4] for r in values]  # the same instants, in UTC
    import adbc_driver_postgresql.dbapi as adbc_postgresql

    with adbc_postgresql.connect(dsn) as connection:
        with pytest.raises(ValueError, match="union column"):  # NaN: no binary COPY form
            arrow_io.postgresql_append(connection, "dst", batches[0])
        connection.rollback()
        plain = [batch.drop_columns(["free"]) for batch in batches]
        written = sum(arrow_io.postgresql_append(connection, "dst", batch) for batch in plain)
        connection.commit()
    assert written == 3
    with engine.connect() as connection:
        back = [tuple(r) for r in connection.execute(sa.text("SELECT * FROM dst ORDER BY id"))]
    expected = [r[:2] + (None,) + r[3:] for r in values]
    assert repr([r[:4] + r[5:] for r in back]) == repr([r[:4] + r[5:] for r in expected])
    assert [r[4] for r in back] == [r[4] for r in values]
    engine.dispose()
