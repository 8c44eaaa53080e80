"""A real MariaDB legacy table with a TINYINT(1) flag and DATETIME zero dates, through a small spec.

The source is made the way a legacy MySQL shop made it: session ``sql_mode=''`` so the server
accepts ``'0000-00-00 00:00:00'`` in a real ``DATETIME``, and ``TINYINT(1)`` flags. Its five rows,
and what must become of each:

====  =========  =====================  =====================  ==================================
id    is_active  joined_at              left_at                outcome
====  =========  =====================  =====================  ==================================
1     1          2023-05-01 08:00:00    NULL                   loaded, active
2     0          2024-02-29 12:00:00    0000-00-00 00:00:00    loaded, inactive, left_at NULL
3     1          0000-00-00 00:00:00    NULL                   quarantined: target_not_null
4     2          2023-07-01 00:00:00    NULL                   quarantined: invalid_boolean
5     NULL       2023-08-01 00:00:00    2023-09-01 18:30:00    loaded, flag unknown (NULL)
====  =========  =====================  =====================  ==================================

Each target dialect (SQLite, PostgreSQL, MariaDB) gets the same outcome, the accounting balances,
and validation (in-database hashes on the servers) finds no difference. The assessment counts one
zero date in each DATETIME column and one invalid flag.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from runbook_demo.build import ensure_database
from runbook_demo.target_schema import UtcDateTime
from runbook_lib.assess.assessment import assess_sources
from runbook_lib.load import loader
from runbook_lib.load.quarantine import count_rejects
from runbook_lib.mapping.check import check_spec
from runbook_lib.mapping.model import load_spec
from runbook_lib.validate.validation import validate as run_validation

SPEC = """\
version: 1
name: mysql-legacy-types
systems: {legacy: legacy}
x-shanghai: &shanghai {parse_datetime: {formats: ["%Y-%m-%d %H:%M:%S"], tz: Asia/Shanghai}}
targets:
  members:
    sources:
      legacy.legacy_members:
        key: id
        columns:
          name: {from: name, transform: [strip, required]}
          is_active: {from: is_active, transform: to_bool}
          joined_at: {from: joined_at, transform: *shanghai}
          left_at: {from: left_at, transform: *shanghai}
"""
SOURCE_ROWS = [
    (1, "李伟", 1, "2023-05-01 08:00:00", None),
    (2, "Ada Lovelace", 0, "2024-02-29 12:00:00", "0000-00-00 00:00:00"),
    (3, "Bob", 1, "0000-00-00 00:00:00", None),
    (4, "Eve", 2, "2023-07-01 00:00:00", None),
    (5, "Zed", None, "2023-08-01 00:00:00", "2023-09-01 18:30:00"),
]
EXPECTED = {  # source key → (name, is_active, joined_at, left_at), times in UTC
    "1": ("李伟", True, datetime(2023, 5, 1, 0, 0, tzinfo=UTC), None),
    "2": ("Ada Lovelace", False, datetime(2024, 2, 29, 4, 0, tzinfo=UTC), None),
    "5": (
        "Zed",
        None,
        datetime(2023, 7, 31, 16, 0, tzinfo=UTC),
        datetime(2023, 9, 1, 10, 30, tzinfo=UTC),
    ),
}
REJECTED = {"3": "target_not_null", "4": "invalid_boolean"}
REJECTED_BY_RULE = {"invalid_boolean": 1, "target_not_null": 1}


def _target_metadata() -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table(
        "members",
        metadata,
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("is_active", sa.Boolean),
        sa.Column("joined_at", UtcDateTime(), nullable=False),
        sa.Column("left_at", UtcDateTime()),
        sa.Column("source_system", sa.String(16), nullable=False),
        sa.Column("source_key", sa.String(64), nullable=False),
        sa.UniqueConstraint("source_system", "source_key", name="uq_members_source"),
        mysql_charset="utf8mb4",
    )
    return metadata


def _create_legacy_table(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        # as a legacy shop ran it: no NO_ZERO_DATE, no strict mode
        connection.exec_driver_sql("SET SESSION sql_mode = ''")
        connection.exec_driver_sql(
            "CREATE TABLE legacy_members (id INT PRIMARY KEY, name VARCHAR(64), "
            "is_active TINYINT(1), joined_at DATETIME NOT NULL, left_at DATETIME NULL) "
            "CHARACTER SET utf8mb4"
        )
        connection.exec_driver_sql(
            "INSERT INTO legacy_members VALUES (%s, %s, %s, %s, %s)", SOURCE_ROWS
        )
        connection.exec_driver_sql("SET SESSION sql_mode = DEFAULT")


@pytest.fixture
def legacy(mariadb_url):
    """The legacy MariaDB database holding ``legacy_members``."""
    engine = sa.create_engine(mariadb_url)
    try:
        _create_legacy_table(engine)
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "legacy_types.yaml"
    path.write_text(SPEC, encoding="utf-8")
    return load_spec(path)


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def target(request, tmp_path):
    """An empty target of each dialect holding ``members``."""
    if request.param == "sqlite":
        url = sa.make_url(f"sqlite:///{tmp_path / 'target.db'}")
    elif request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
    else:  # a database of its own next to the legacy one
        legacy_url = request.getfixturevalue("mariadb_url")
        url = legacy_url.set(database=f"runbook_test_{uuid.uuid4().hex[:10]}")
        ensure_database(url)
    engine = sa.create_engine(url)
    try:
        _target_metadata().create_all(engine)
        yield engine
    finally:
        engine.dispose()
        if request.param == "mariadb":
            admin = sa.create_engine(url.set(database=""), isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{url.database}`")
            admin.dispose()


def _load(spec, legacy, target):
    return loader.load(
        spec,
        {"legacy": legacy},
        target,
        run_id="legacy-types",
        mode="full",
        chunk_size=2,  # three chunks: the flag and the zero dates cross chunk boundaries
        max_reject_rate=0.5,
        target_label="target",
    )


@pytest.mark.mariadb
def test_pymysql_hands_a_zero_datetime_over_as_text_and_a_flag_as_an_int(legacy):
    with legacy.connect() as connection:
        rows = connection.exec_driver_sql("SELECT * FROM legacy_members ORDER BY id").all()

    assert rows[2][3] == "0000-00-00 00:00:00"  # not a datetime, not None
    assert rows[1][4] == "0000-00-00 00:00:00"
    assert rows[0][3] == datetime(2023, 5, 1, 8, 0)
    assert [r[2] for r in rows] == [1, 0, 1, 2, None]


@pytest.mark.mariadb
def test_the_assessment_counts_zero_dates_per_column_and_the_invalid_flag(legacy, spec):
    report = assess_sources({"legacy": legacy}, spec)

    found = {(f.rule, f.column): f for f in report.found}
    for column, key in (("joined_at", "3"), ("left_at", "2")):
        zero = found[("zero_date", column)]
        assert (zero.count, zero.severity) == (1, "warning")
        assert zero.breakdown == {"0000-00-00 00:00:00": 1}
        assert zero.examples == (f"id={key}: '0000-00-00 00:00:00'",)
    flag = found[("invalid_boolean", "is_active")]
    assert (flag.count, flag.severity) == (1, "error")
    assert ("unparseable_datetime", "joined_at") not in found
    profiles = {p.column: p for p in report.columns}
    assert profiles["joined_at"].type == "datetime" and profiles["is_active"].type == "integer"


@pytest.mark.mariadb
def test_the_flag_and_the_zero_dates_load_and_validate_on_every_target_dialect(
    legacy, spec, target
):
    check = check_spec(spec, {"legacy": sa.inspect(legacy)}, sa.inspect(target))
    assert check.problems == []
    types = {row.column: row.types for row in check.coverage}
    boolean = "TINYINT(1)" if target.dialect.name in ("mysql", "mariadb") else "BOOLEAN"
    assert types["is_active"] == f"TINYINT(1) → {boolean}"

    report = _load(spec, legacy, target)

    (result,) = report.results
    assert (result.source_rows, result.loaded, result.quarantined) == (5, 3, REJECTED_BY_RULE)
    assert result.balanced and report.passed, report.render()
    table = sa.Table("members", _target_metadata(), extend_existing=True)
    with target.connect() as connection:
        loaded = {
            row.source_key: (row.name, row.is_active, row.joined_at, row.left_at)
            for row in connection.execute(sa.select(table))
        }
        rejects = connection.execute(
            sa.text("SELECT source_key, rule FROM runbook_rejects WHERE run_id = 'legacy-types'")
        ).all()
    assert loaded == EXPECTED
    assert {type(flag) for _, flag, _, _ in loaded.values()} == {bool, type(None)}
    assert dict(rejects) == REJECTED
    assert {r["rule"]: r["rows"] for r in count_rejects(target, "legacy-types")} == (
        REJECTED_BY_RULE
    )

    validation = run_validation(
        spec,
        {"legacy": legacy},
        target,
        run_id="legacy-types",
        target_label="target",
        chunk_size=2,
        max_unexplained_differences=0,
    )

    assert validation.passed, validation.failures
    assert (validation.differences, validation.source_rows, validation.quarantined) == (0, 5, 2)
    expected_method = "python" if target.dialect.name == "sqlite" else "in-database"
    assert all(t.comparison["method"].startswith(expected_method) for t in validation.tables)
