"""Per-dialect type rules, declared once: how each database keeps the values the mapping makes.

The mapping produces the same Python values whatever the database: exact ``Decimal`` money,
aware UTC ``datetime``, ``bool`` flags and ``str`` text. Databases differ in what they can store
exactly, so each entry of ``TYPE_RULES`` says, for one SQLAlchemy dialect, how each of those is
kept so that it reads back equal and hashes equal in validation. The modules that act on a rule
read it here instead of holding their own copy:

* ``dialects`` binds values by ``decimal`` and ``datetime`` (text decimals, naive UTC datetimes);
* ``target_schema``'s portable types store by them (``ExactDecimal``, ``UtcDateTime``), and its
  MySQL tables and ``connections``' MySQL URLs take ``charset``;
* ``rowhash`` hashes rows inside the database with the ``row_hash`` spelling, and ``aggregates``
  sums inside it where decimals are ``numeric``.

Legacy MySQL/MariaDB *sources* bring two more: ``boolean`` (``BOOL`` is ``TINYINT(1)``: flags
arrive as 0/1 integers, and the spec check treats them as integers, so a flag reaches a boolean
column only through ``to_bool``, which refuses anything but 0/1) and ``zero_dates``
(``'0000-00-00 00:00:00'``, which PyMySQL hands over as text: ``parse_datetime`` reads it as no
date, and the assessment counts it per column as a ``zero_date`` finding).

A new dialect is one entry in ``TYPE_RULES``; the registries built from it (``VALUE_ADAPTERS``,
``HASH_DIALECTS``, ``TARGET_AGGREGATES``) follow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# MySQL's "no date": DATE and DATETIME (any fraction) zero values as the server writes them.
ZERO_DATES = frozenset(
    ("0000-00-00", "0000-00-00 00:00:00", *(f"0000-00-00 00:00:00.{'0' * n}" for n in range(1, 7)))
)


def is_zero_date(value: Any) -> bool:
    """A MySQL zero date (``'0000-00-00'``, ``'0000-00-00 00:00:00[.000000]'``), as text."""
    return isinstance(value, str) and value.strip() in ZERO_DATES


def _aware_timestamp() -> sa.types.TypeEngine:
    return sa.DateTime(timezone=True)


def _mysql_datetime() -> sa.types.TypeEngine:
    # plain DATETIME has no fraction: MySQL would drop the microseconds silently; TIMESTAMP would
    # shift by the session's zone and ends in 2038
    return mysql.DATETIME(fsp=6)


@dataclass(frozen=True)
class TypeRules:
    """How one dialect stores decimals, datetimes, booleans and text, and what else it can hold."""

    dialect: str
    decimal: str  # "numeric": exact NUMERIC/DECIMAL(p, s); "text": canonical text, exact digits
    datetime: str  # "aware": TIMESTAMP WITH TIME ZONE; "naive_utc": a zone-less type holding UTC
    boolean: str  # "boolean": a real type; "tinyint(1)": BOOL is TINYINT(1), read back as 0/1
    text: str  # what VARCHAR(n) counts and enforces, in which encoding
    zero_dates: str  # whether '0000-00-00' can occur, and what it becomes
    charset: str | None = None  # connection and table character set, where one must be chosen
    row_hash: str | None = None  # the SQL spelling in ``rowhash``; None: rows hashed in Python
    datetime_type: Callable[[], sa.types.TypeEngine] = field(default=_aware_timestamp)


_NO_ZERO_DATES = "impossible: the server refuses them"
_ZERO_DATES_AS_NULL = (
    "'0000-00-00[ 00:00:00]' (sql_mode without NO_ZERO_DATE) arrives as text through PyMySQL; "
    "parse_datetime reads it as no date (NULL) and the assessment counts it (zero_date)"
)

POSTGRESQL = TypeRules(
    dialect="postgresql",
    decimal="numeric",
    datetime="aware",
    boolean="boolean",
    text="VARCHAR(n) counts and enforces characters; UTF-8",
    zero_dates=_NO_ZERO_DATES,
    row_hash="postgresql",
)
MYSQL = TypeRules(
    dialect="mysql",
    decimal="numeric",
    datetime="naive_utc",
    boolean="tinyint(1)",
    text="VARCHAR(n) counts and enforces characters; utf8mb4 (MySQL's utf8 has no 4-byte "
    "characters: rarer CJK and emoji would not survive)",
    zero_dates=_ZERO_DATES_AS_NULL,
    charset="utf8mb4",
    row_hash="mysql",
    datetime_type=_mysql_datetime,
)
SQLITE = TypeRules(
    dialect="sqlite",
    # SQLite has no decimal type: a NUMERIC column would round through a float
    decimal="text",
    datetime="naive_utc",
    boolean="boolean",  # stored 0/1; SQLAlchemy's Boolean reads it back as bool
    text="VARCHAR(n) is not enforced: the loader checks lengths before writing; UTF-8",
    zero_dates="only as text copied from MySQL; parse_datetime reads it as no date (NULL)",
)
# What a dialect not declared here gets: SQLAlchemy's generic types, values bound as they are.
GENERIC = TypeRules(
    dialect="generic",
    decimal="numeric",
    datetime="aware",
    boolean="boolean",
    text="as the database declares it",
    zero_dates="not expected",
)

TYPE_RULES: dict[str, TypeRules] = {
    "postgresql": POSTGRESQL,
    "mysql": MYSQL,
    "mariadb": MYSQL,  # SQLAlchemy names a mariadb:// URL "mariadb"; mysql:// to MariaDB "mysql"
    "sqlite": SQLITE,
}


def rules_for(dialect: str) -> TypeRules:
    """The rules of ``dialect`` (a SQLAlchemy dialect name), ``GENERIC`` if none are declared."""
    return TYPE_RULES.get(dialect, GENERIC)


_TYPE_FAMILIES = (
    (sa.Boolean, "boolean"),
    (sa.Integer, "integer"),
    (sa.Numeric, "decimal"),
    (sa.Float, "decimal"),
    (sa.DateTime, "datetime"),
    (sa.Date, "date"),
    (sa.String, "text"),
)


def type_family(column_type: sa.types.TypeEngine) -> str:
    """A coarse family of a reflected type, to spot a mapping that needs a cast."""
    for cls, family in _TYPE_FAMILIES:
        if isinstance(column_type, cls):
            return family
    return "other"
