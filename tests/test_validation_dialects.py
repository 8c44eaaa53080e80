"""The canonical text, key range and row hash built in SQL equal what Python makes of the values.

One table with every type the target uses and the awkward values of each (NULL next to the empty
string and the text ``\\N``, backslashes, the field separator, CJK and emoji, negative and zero
decimals at their scale, timestamps with and without a fraction, dates, booleans) is created on
the real PostgreSQL and MariaDB servers; each row's SQL text must equal ``hashing.row_text`` of
the values SQLAlchemy reads back, and its SQL hash and range must equal Python's.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from runbook_lib.db.canonical import canonical, key_bucket, row_hash, row_text
from runbook_lib.errors import UnsupportedType
from runbook_lib.validate.target_hashes import (
    HASH_DIALECTS,
    SqlTargetRows,
    TargetRows,
    canonical_kind,
    target_rows,
)

TEXTS = ["", "\\N", "a\\b", "tab\there", "sep\x1fsep", "李伟", "欧阳娜娜 😀", "O'Brien", "%Y %%"]
DECIMALS = ["0.00", "-0.01", "-12.50", "12.50", "999999999999.99", "1.05"]
MOMENTS = [
    datetime(2024, 3, 1, 2, 30, 15, tzinfo=UTC),
    datetime(2024, 3, 1, 2, 30, 15, 250000, tzinfo=UTC),
    datetime(2023, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
    datetime(1999, 1, 1, 0, 0, tzinfo=UTC),
]


def _rows(naive_times: bool) -> list[dict]:
    rows = []
    for i in range(max(len(TEXTS), len(DECIMALS), len(MOMENTS))):
        moment = MOMENTS[i % len(MOMENTS)]
        rows.append(
            {
                "source_system": "legacy_a",
                "source_key": f"{i}|k{i}",
                "name": TEXTS[i % len(TEXTS)],
                "amount": Decimal(DECIMALS[i % len(DECIMALS)]),
                "big": 10**15 + i,
                "qty": -i,
                "at": moment.replace(tzinfo=None) if naive_times else moment,
                "day": date(2024, 2, 29),
                "flag": i % 2 == 0,
            }
        )
    rows.append(dict.fromkeys(rows[0]) | {"source_system": "legacy_a", "source_key": "nulls"})
    return rows


def _table(metadata: sa.MetaData, mariadb: bool) -> sa.Table:
    return sa.Table(
        "hashed",
        metadata,
        sa.Column("source_system", sa.String(16), nullable=False),
        sa.Column("source_key", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(64)),
        sa.Column("amount", sa.Numeric(14, 2)),
        sa.Column("big", sa.BigInteger),
        sa.Column("qty", sa.Integer),
        sa.Column("at", mysql.DATETIME(fsp=6) if mariadb else sa.DateTime(timezone=True)),
        sa.Column("day", sa.Date),
        sa.Column("flag", sa.Boolean),
        mysql_charset="utf8mb4",
    )


COLUMNS = ["source_system", "name", "amount", "big", "qty", "at", "day", "flag"]


def _check_sql_equals_python(engine: sa.Engine, mariadb: bool) -> None:
    _table(sa.MetaData(), mariadb).create(engine)
    with engine.begin() as connection:
        connection.execute(_table(sa.MetaData(), mariadb).insert(), _rows(naive_times=mariadb))
    table = sa.Table("hashed", sa.MetaData(), autoload_with=engine)
    rows = target_rows(engine, table, "legacy_a", COLUMNS, chunk_size=100)
    assert isinstance(rows, SqlTargetRows)
    dialect = HASH_DIALECTS[engine.dialect.name]
    typed = [(table.c[c], table.c[c].type) for c in COLUMNS]
    text = dialect.row_text(table.c.source_key, typed)
    query = sa.select(
        table.c.source_key,
        text,
        dialect.digest(text),
        dialect.bucket(table.c.source_key, 5),
        *(dialect.canonical(c, t) for c, t in typed),
        *(table.c[c] for c in COLUMNS),
    )
    written = {row["source_key"]: row for row in _rows(naive_times=mariadb)}
    checked = 0
    with engine.connect() as connection:
        for row in connection.execute(query):
            key, sql_text, sql_hash, sql_bucket = row[:4]
            sql_values = row[4 : 4 + len(COLUMNS)]
            values = row[4 + len(COLUMNS) :]
            assert list(sql_values) == [canonical(v) for v in values], key
            # a flag the mapping made a bool (to_bool) hashes as the database stores it: MariaDB's
            # BOOL is TINYINT(1) and reads back 0/1, PostgreSQL's is a boolean
            flag = sql_values[COLUMNS.index("flag")]
            assert flag == canonical(written[key]["flag"]), key
            assert sql_text == f"{key}\x1f{row_text(values)}", key
            assert int(sql_hash) == row_hash(key, values), key
            assert sql_bucket == key_bucket(key, 5), key
            checked += 1
    assert checked == len(_rows(False))
    # and the sums per range agree with the same rows hashed in Python
    python = TargetRows(engine, table, "legacy_a", COLUMNS, chunk_size=100)
    assert rows.bucket_sums(2) == python.bucket_sums(2)
    some = sorted(python.bucket_sums(3))[:3]
    assert sorted(rows.digests(some)) == sorted(python.digests(some))


@pytest.mark.postgres
def test_postgresql_builds_the_same_canonical_text_and_hashes_as_python(postgres_url):
    engine = sa.create_engine(postgres_url)
    try:
        _check_sql_equals_python(engine, mariadb=False)
    finally:
        engine.dispose()


@pytest.mark.mariadb
def test_mariadb_builds_the_same_canonical_text_and_hashes_as_python(mariadb_url):
    engine = sa.create_engine(mariadb_url)
    try:
        _check_sql_equals_python(engine, mariadb=True)
    finally:
        engine.dispose()


def test_sqlite_falls_back_to_hashing_in_python(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 't.db'}")
    table = _table(sa.MetaData(), mariadb=False)
    table.create(engine)
    rows = target_rows(engine, table, "legacy_a", COLUMNS, chunk_size=100)
    assert type(rows) is TargetRows and rows.method == "python"


def test_a_float_column_has_no_sql_spelling_so_its_table_is_hashed_in_python():
    with pytest.raises(UnsupportedType):
        canonical_kind(sa.Float())
    assert canonical_kind(sa.Numeric(14, 2)) == "decimal"
    assert canonical_kind(sa.DateTime(timezone=True)) == "datetime_tz"
    assert canonical_kind(sa.Boolean()) == "boolean"


def test_negative_zero_is_zero_in_every_dialect():
    assert canonical(Decimal("-0.00")) == canonical(Decimal("0.00")) == "0.00"
    assert canonical(-0.0) == "0.0"


def test_the_key_range_is_a_prefix_of_the_wider_range():
    assert key_bucket("SO-000123", 4).startswith(key_bucket("SO-000123", 3))
    assert len(key_bucket("1", 2)) == 2 and int(key_bucket("1", 2), 16) < 256


def test_the_row_hash_depends_on_the_key_and_on_every_value():
    base = row_hash("1", ("a", Decimal("1.00"), None))
    assert 0 <= base < 2**60
    assert base != row_hash("2", ("a", Decimal("1.00"), None))
    assert base != row_hash("1", ("a", Decimal("1.0"), None))
    assert base != row_hash("1", ("a", Decimal("1.00"), ""))
