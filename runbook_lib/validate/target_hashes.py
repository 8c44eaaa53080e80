"""The target's row hashes, computed inside the database wherever the dialect can spell them.

For PostgreSQL and MySQL/MariaDB the canonical text of a row (``hashing.canonical`` of every
value, joined by the field separator) is built in SQL, hashed with sha256 there, and summed per
key range, so only ``(range, rows, sum)`` triples, and later the hashes of a few ranges, cross the
wire. Which dialects hash in SQL, and with which spelling, is their ``row_hash`` rule in
``type_rules`` (``HASH_DIALECTS`` is built from it); any other dialect (SQLite, whose decimals are
text and which has no sha256) and any column type without a SQL spelling fall back to reading the
rows and hashing them in Python with the very same functions, streamed.

``tests/test_validation_dialects.py`` checks, on the real servers, that the SQL text, range and
hash equal what Python computes from the values it reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from runbook_lib.db.canonical import ROW_HASH_HEX_DIGITS, SUM_MASK, key_bucket, row_hash
from runbook_lib.db.lookups import key_in
from runbook_lib.db.type_rules import TYPE_RULES
from runbook_lib.errors import UnsupportedType
from runbook_lib.mapping.compiled import owned_by

Expr = sa.ColumnElement
Sums = dict[str, tuple[int, int]]  # key range → (rows, sum of row hashes modulo 2**64)


def _lit(text: str) -> Expr:
    """A constant string written into the statement (no bind: GROUP BY compares the SQL text)."""
    return sa.literal_column("'" + text.replace("'", "''") + "'", sa.String)


def _int(value: int) -> Expr:
    return sa.literal_column(str(int(value)), sa.Integer)


def canonical_kind(type_: sa.types.TypeEngine) -> str:
    """The canonical family of a reflected column type (``UnsupportedType`` if it has none in SQL)."""
    if isinstance(type_, sa.Boolean):
        return "boolean"
    if isinstance(type_, sa.Integer):
        return "integer"
    if isinstance(type_, sa.Float):
        raise UnsupportedType(f"{type_!r}: a float has no exact canonical text in SQL")
    if isinstance(type_, sa.Numeric):
        return "decimal"
    if isinstance(type_, sa.DateTime):
        return "datetime_tz" if getattr(type_, "timezone", False) else "datetime"
    if isinstance(type_, sa.Date):
        return "date"
    if isinstance(type_, sa.String):
        return "text"
    raise UnsupportedType(repr(type_))


@dataclass(frozen=True)
class HashDialect:
    """How one SQL dialect spells the canonical text, the key range and the row hash."""

    name: str
    text: Callable[[Expr, str], Expr]  # (column, canonical kind) → text, NULL stays NULL
    sha256_hex: Callable[[Expr], Expr]  # lowercase hex of the sha256 of the UTF-8 text
    hex_to_int: Callable[[Expr], Expr]  # 15 hex digits → an integer
    null_marker: Expr
    separator: Expr

    def canonical(self, column: Expr, type_: sa.types.TypeEngine) -> Expr:
        return sa.func.coalesce(self.text(column, canonical_kind(type_)), self.null_marker)

    def row_text(self, key: Expr, columns: Sequence[tuple[Expr, sa.types.TypeEngine]]) -> Expr:
        parts = [key, *(self.canonical(c, t) for c, t in columns)]
        return sa.func.concat_ws(self.separator, *parts)

    def bucket(self, key: Expr, width: int) -> Expr:
        return sa.func.substr(self.sha256_hex(key), _int(1), _int(width))

    def digest(self, text: Expr) -> Expr:
        return self.hex_to_int(
            sa.func.substr(self.sha256_hex(text), _int(1), _int(ROW_HASH_HEX_DIGITS))
        )


# --- PostgreSQL ------------------------------------------------------------------------------

_PG_BACKSLASH = sa.func.chr(_int(92))
_PG_US = sa.func.chr(_int(31))


def _pg_text(column: Expr, kind: str) -> Expr:
    if kind == "boolean":
        return sa.case((column, _lit("1")), (sa.not_(column), _lit("0")))
    if kind in ("integer", "decimal"):
        return sa.cast(column, sa.Text)  # NUMERIC text keeps the column's scale, never exponents
    if kind in ("datetime", "datetime_tz"):
        moment = column.op("AT TIME ZONE")(_lit("UTC")) if kind == "datetime_tz" else column
        # isoformat drops a zero fraction; the date and time part holds no other '.'
        stamp = sa.func.to_char(moment, _lit("YYYY-MM-DD HH24:MI:SS.US"))
        return sa.func.replace(stamp, _lit(".000000"), _lit(""))
    if kind == "date":
        return sa.func.to_char(column, _lit("YYYY-MM-DD"))
    escaped = sa.func.replace(column, _PG_BACKSLASH, _PG_BACKSLASH.concat(_PG_BACKSLASH))
    return sa.func.replace(escaped, _PG_US, _PG_BACKSLASH.concat(_lit("x1f")))


POSTGRESQL = HashDialect(
    name="postgresql",
    text=_pg_text,
    sha256_hex=lambda value: sa.func.encode(
        sa.func.sha256(sa.func.convert_to(value, _lit("UTF8"))), _lit("hex")
    ),
    hex_to_int=lambda digits: sa.cast(
        sa.cast(_lit("x").concat(digits), postgresql.BIT(4 * ROW_HASH_HEX_DIGITS)), sa.BigInteger
    ),
    null_marker=_PG_BACKSLASH.concat(_lit("N")),
    separator=_PG_US,
)


# --- MySQL and MariaDB -----------------------------------------------------------------------


def _my_char(code: int) -> Expr:
    return sa.literal_column(f"CHAR({int(code)} USING utf8mb4)", sa.String)


_MY_BACKSLASH = _my_char(92)
_MY_US = _my_char(31)


def _my_text(column: Expr, kind: str) -> Expr:
    if kind == "boolean":
        return sa.case((column != 0, _lit("1")), (column == 0, _lit("0")))
    if kind in ("integer", "decimal"):
        return sa.cast(column, sa.String)  # CAST(x AS CHAR): DECIMAL keeps its scale
    if kind in ("datetime", "datetime_tz"):
        stamp = sa.func.date_format(column, _lit("%Y-%m-%d %H:%i:%s.%f"))
        return sa.func.replace(stamp, _lit(".000000"), _lit(""))
    if kind == "date":
        return sa.func.date_format(column, _lit("%Y-%m-%d"))
    escaped = sa.func.replace(column, _MY_BACKSLASH, sa.func.concat(_MY_BACKSLASH, _MY_BACKSLASH))
    return sa.func.replace(escaped, _MY_US, sa.func.concat(_MY_BACKSLASH, _lit("x1f")))


MYSQL = HashDialect(
    name="mysql",
    text=_my_text,
    sha256_hex=lambda value: sa.func.sha2(value, _int(256)),
    # 60 bits fit a signed BIGINT, whose SUM MySQL computes as an exact DECIMAL
    hex_to_int=lambda digits: sa.cast(sa.func.conv(digits, _int(16), _int(10)), sa.Integer),
    null_marker=sa.func.concat(_MY_BACKSLASH, _lit("N")),
    separator=_MY_US,
)


SPELLINGS: dict[str, HashDialect] = {"postgresql": POSTGRESQL, "mysql": MYSQL}

HASH_DIALECTS: dict[str, HashDialect] = {
    name: SPELLINGS[rules.row_hash] for name, rules in TYPE_RULES.items() if rules.row_hash
}


def register_hash_dialect(name: str, dialect: HashDialect) -> None:
    """Teach validation to hash rows inside another database (``name`` as SQLAlchemy calls it)."""
    HASH_DIALECTS[name] = dialect


# --- the target side of a comparison ---------------------------------------------------------


class TargetRows:
    """One source system's rows of one target table, as the comparison needs them.

    ``columns`` are compared in this order after the key; ``method`` says where hashes are made.
    """

    method = "python"

    def __init__(
        self,
        engine: sa.Engine,
        table: sa.Table,
        system: str,
        columns: Sequence[str],
        chunk_size: int,
        key_prefix: str = "",
    ) -> None:
        self.engine = engine
        self.table = table
        self.system = system
        self.columns = list(columns)
        self.chunk_size = chunk_size
        self._key = table.c.source_key
        self._where = owned_by(table, system, key_prefix)

    def bucket_sums(self, width: int, within: Sequence[str] = ()) -> Sums:
        """(rows, hash sum) per key range of ``width`` digits, inside the ranges ``within``."""
        sums: dict[str, list[int]] = {}
        for key, digest in self._hashes(within):
            entry = sums.setdefault(key_bucket(key, width), [0, 0])
            entry[0] += 1
            entry[1] = (entry[1] + digest) & SUM_MASK
        return {bucket: (rows, total) for bucket, (rows, total) in sums.items()}

    def digests(self, ranges: Sequence[str]) -> list[tuple[str, int]]:
        """(key, row hash) of every row in the key ranges ``ranges`` (of any widths)."""
        return list(self._hashes(ranges))

    def rows(self, keys: Sequence[str]) -> list[tuple[str, tuple]]:
        """(key, values) of the rows with these keys (a duplicated key comes back twice)."""
        found = []
        with self.engine.connect() as connection:
            for condition in key_in(self._key, sorted(set(keys)), self.engine.dialect.name):
                query = sa.select(self._key, *(self.table.c[c] for c in self.columns)).where(
                    self._where, condition
                )
                found.extend((row[0], tuple(row[1:])) for row in connection.execute(query))
        return found

    def _hashes(self, ranges: Sequence[str]) -> Iterator[tuple[str, int]]:
        wanted = KeyRangeSet(ranges)
        query = sa.select(self._key, *(self.table.c[c] for c in self.columns)).where(self._where)
        with self.engine.connect() as connection:
            result = connection.execution_options(
                stream_results=True, yield_per=self.chunk_size
            ).execute(query)
            for row in result:
                key = row[0]
                if wanted.holds(key):
                    yield key, row_hash(key, row[1:])


class SqlTargetRows(TargetRows):
    """The same answers, computed by the database: only ranges, counts and hashes come back."""

    def __init__(
        self, engine, table, system, columns, chunk_size, dialect: HashDialect, key_prefix: str = ""
    ) -> None:
        super().__init__(engine, table, system, columns, chunk_size, key_prefix)
        self.dialect = dialect
        self.method = f"in-database ({dialect.name})"
        typed = [(table.c[c], table.c[c].type) for c in self.columns]
        self._digest = dialect.digest(dialect.row_text(self._key, typed))

    def _in_ranges(self, ranges: Sequence[str]) -> Expr:
        by_width: dict[int, list[str]] = {}
        for prefix in ranges:
            by_width.setdefault(len(prefix), []).append(prefix)
        return sa.or_(
            *(self.dialect.bucket(self._key, w).in_(sorted(p)) for w, p in by_width.items())
        )

    def bucket_sums(self, width: int, within: Sequence[str] = ()) -> Sums:
        bucket = self.dialect.bucket(self._key, width).label("key_range")
        query = sa.select(bucket, sa.func.count(), sa.func.sum(self._digest)).where(self._where)
        if within:
            query = query.where(self._in_ranges(within))
        query = query.group_by(bucket)
        with self.engine.connect() as connection:
            return {
                prefix: (rows, int(total) & SUM_MASK)
                for prefix, rows, total in connection.execute(query)
            }

    def digests(self, ranges: Sequence[str]) -> list[tuple[str, int]]:
        if not ranges:
            return []
        query = sa.select(self._key, self._digest).where(self._where, self._in_ranges(ranges))
        with self.engine.connect() as connection:
            return [(key, int(digest)) for key, digest in connection.execute(query)]


def target_rows(
    engine: sa.Engine,
    table: sa.Table,
    system: str,
    columns: Sequence[str],
    chunk_size: int,
    key_prefix: str = "",
) -> TargetRows:
    """In-database hashing where the dialect is registered and every column has a SQL spelling."""
    dialect = HASH_DIALECTS.get(engine.dialect.name)
    if dialect is not None:
        try:
            for name in columns:
                canonical_kind(table.c[name].type)
        except UnsupportedType:
            dialect = None
    if dialect is None:
        return TargetRows(engine, table, system, columns, chunk_size, key_prefix)
    return SqlTargetRows(engine, table, system, columns, chunk_size, dialect, key_prefix)


class KeyRangeSet:
    """Membership of a key in a set of key ranges of any widths (empty: every key)."""

    def __init__(self, ranges: Sequence[str]) -> None:
        self.widths = sorted({len(r) for r in ranges})
        self.ranges = set(ranges)

    def holds(self, key: str) -> bool:
        if not self.ranges:
            return True
        full = key_bucket(key, self.widths[-1])
        return any(full[:w] in self.ranges for w in self.widths)
