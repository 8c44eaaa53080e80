"""Portable column types that keep the mapping's values exact in every target dialect.

Declare them in your own target schema (SQLAlchemy Core or ORM): ``ExactDecimal`` stores exact
``NUMERIC(p, s)`` where the dialect has it and canonical text where it has not (SQLite, whose
``NUMERIC`` columns hold binary floats); ``UtcDateTime`` gives aware UTC datetimes in Python and
stores ``TIMESTAMP WITH TIME ZONE`` or naive UTC, as each dialect's ``type_rules`` say.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

from runbook_lib.db.type_rules import rules_for


class ExactDecimal(TypeDecorator):
    """NUMERIC(precision, scale), or canonical text by the type rules; ``Decimal`` in Python."""

    impl = sa.Numeric
    cache_ok = True

    def __init__(self, precision: int = 14, scale: int = 2) -> None:
        super().__init__(precision=precision, scale=scale, asdecimal=True)
        self.scale = scale

    def load_dialect_impl(self, dialect):
        if rules_for(dialect.name).decimal == "text":
            return dialect.type_descriptor(sa.String(40))
        return dialect.type_descriptor(sa.Numeric(self.impl.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = Decimal(value).quantize(Decimal(1).scaleb(-self.scale))
        return str(value) if rules_for(dialect.name).decimal == "text" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return Decimal(value).quantize(Decimal(1).scaleb(-self.scale))


class UtcDateTime(TypeDecorator):
    """TIMESTAMP WITH TIME ZONE, or naive UTC, by the type rules; aware UTC in Python."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        return dialect.type_descriptor(rules_for(dialect.name).datetime_type())

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(
                f"naive datetime {value!r}: the target stores UTC, give an aware value"
            )
        value = value.astimezone(UTC)
        return value if rules_for(dialect.name).datetime == "aware" else value.replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
