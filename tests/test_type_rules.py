"""The per-dialect type rules are declared once and every module that acts on them follows them.

``type_rules.TYPE_RULES`` says how each dialect keeps decimals, datetimes, booleans and text;
here each consumer (value binding, the portable column types, in-database hashing and sums, the
MySQL charset) is checked against the table rather than against a copy of it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from runbook_demo.target_schema import TARGET_METADATA, ExactDecimal, UtcDateTime
from runbook_lib.config.connections import make_engine
from runbook_lib.db import writes
from runbook_lib.db.type_rules import GENERIC, TYPE_RULES, ZERO_DATES, is_zero_date, rules_for
from runbook_lib.validate import aggregates, target_hashes

DIALECTS = {
    "postgresql": postgresql.dialect(),
    "mysql": mysql.dialect(),
    "sqlite": sqlite.dialect(),
}
SHANGHAI = timezone(timedelta(hours=8))


def test_every_rule_of_every_dialect_has_one_of_the_known_values():
    for name, rules in TYPE_RULES.items():
        assert rules.decimal in ("numeric", "text"), name
        assert rules.datetime in ("aware", "naive_utc"), name
        assert rules.boolean in ("boolean", "tinyint(1)"), name
        assert rules.text and rules.zero_dates, name
        assert rules.row_hash is None or rules.row_hash in target_hashes.SPELLINGS, name
    assert rules_for("mariadb") is rules_for("mysql")
    assert rules_for("oracle") is GENERIC


@pytest.mark.parametrize("name", sorted(TYPE_RULES))
def test_values_are_bound_as_the_decimal_and_datetime_rules_say(name):
    rules = TYPE_RULES[name]
    adapt = writes.adapter_for(name)
    moment = datetime(2024, 3, 1, 10, 30, tzinfo=SHANGHAI)

    bound = adapt(moment)
    if rules.datetime == "aware":
        assert bound is moment
    else:
        assert bound == datetime(2024, 3, 1, 2, 30) and bound.tzinfo is None
    assert adapt(Decimal("12.50")) == ("12.50" if rules.decimal == "text" else Decimal("12.50"))
    assert adapt(True) is True  # flags bind as bool everywhere; each driver spells its own
    assert writes.adapt_rows(name, [{"amount": Decimal("-0.01")}]) == [
        {"amount": "-0.01" if rules.decimal == "text" else Decimal("-0.01")}
    ]


def test_an_undeclared_dialect_binds_values_as_they_are():
    value = datetime(2024, 1, 1, tzinfo=UTC)
    assert writes.adapter_for("oracle")(value) is value


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_the_portable_column_types_store_as_the_rules_say(name):
    dialect, rules = DIALECTS[name], TYPE_RULES[name]
    decimal_ddl = ExactDecimal(14, 2).compile(dialect=dialect)
    datetime_ddl = UtcDateTime().compile(dialect=dialect)

    assert decimal_ddl == ("VARCHAR(40)" if rules.decimal == "text" else "NUMERIC(14, 2)")
    assert datetime_ddl == rules.datetime_type().compile(dialect=dialect)
    expected_datetime = {
        "postgresql": "TIMESTAMP WITH TIME ZONE",
        "mysql": "DATETIME(6)",  # microseconds kept, no zone: naive UTC
        "sqlite": "DATETIME",
    }
    assert datetime_ddl == expected_datetime[name]
    bind = UtcDateTime().process_bind_param(datetime(2024, 3, 1, 10, 30, tzinfo=SHANGHAI), dialect)
    assert bind.replace(tzinfo=None) == datetime(2024, 3, 1, 2, 30)
    assert (bind.tzinfo is not None) == (rules.datetime == "aware")


def test_the_target_tables_take_the_mysql_charset_and_mysql_urls_get_it_too():
    assert TYPE_RULES["mysql"].charset == "utf8mb4"
    for table in TARGET_METADATA.tables.values():
        assert table.dialect_options["mysql"]["charset"] == "utf8mb4", table.name
    engine = make_engine(sa.make_url("mysql+pymysql://someone@127.0.0.1:3306/db"))
    assert engine.url.query["charset"] == "utf8mb4"
    engine.dispose()
    engine = make_engine(sa.make_url("postgresql+psycopg://someone@127.0.0.1:5432/db"))
    assert "charset" not in engine.url.query
    engine.dispose()


def test_rows_are_hashed_and_summed_in_the_database_exactly_where_the_rules_allow():
    assert set(target_hashes.HASH_DIALECTS) == {n for n, r in TYPE_RULES.items() if r.row_hash}
    for name, spelling in target_hashes.HASH_DIALECTS.items():
        assert spelling is target_hashes.SPELLINGS[TYPE_RULES[name].row_hash]
    assert "sqlite" not in target_hashes.HASH_DIALECTS  # no sha256, decimals are text
    numeric = {n for n, r in TYPE_RULES.items() if r.decimal == "numeric"}
    assert set(aggregates.TARGET_AGGREGATES) == numeric
    assert "sqlite" not in aggregates.TARGET_AGGREGATES  # it would sum text decimals as floats


def test_zero_dates_are_mysqls_spellings_of_no_date_and_nothing_else():
    for text in ("0000-00-00", "0000-00-00 00:00:00", " 0000-00-00 00:00:00.000000 "):
        assert is_zero_date(text), text
    assert "0000-00-00 00:00:00.000" in ZERO_DATES
    for value in (None, "", "2024-00-00", "0000-01-01", "00000000000000", 0, "0000-00-00T00:00"):
        assert not is_zero_date(value), value
