"""Column profiles of every source table, computed inside the source database.

Per table one aggregate query gives rows, and per column nulls, distinct values, min, max and
(for text) values with surrounding spaces. Per text column a ``GROUP BY`` on its *shape* (digits
become ``9``; for phones, letters become ``a``/``A``) counts the formats found, and each shape is
named by the date format that reads it, if any (``%Y/%m/%d %H:%M``: 42 rows). Repetitive columns
get their top values. Memory holds aggregates only, whatever the table size.

Personal values never leave unmasked: min, max and top values go through ``masking``, and names,
emails, addresses and credentials get no shape profile at all (a shape would spell them out).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime

import sqlalchemy as sa

from runbook_lib.db.canonical import canonical
from runbook_lib.db.type_rules import type_family
from runbook_lib.privacy.classification import (
    CATEGORIES,
    SAMPLE_SIZE,
    classify_values,
    is_person_table,
)
from runbook_lib.privacy.masking import EvidenceMasker

# Candidate formats for date-like text the spec does not parse; the spec's own come first.
COMMON_DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y%m%d%H%M%S",
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y%m%d",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
)
MAX_SHAPES = 25  # more shapes than this: free text, no formats listed
TOP_VALUES = 5
# Shapes would spell these out; their quality shows as findings instead.
_NO_SHAPES = {"name", "email", "address", "credential", "company", "contact_text", "username"}


@dataclass(frozen=True)
class ColumnProfile:
    """Aggregates of one source column (personal values masked)."""

    system: str
    table: str
    column: str
    type: str
    inferred_type: str
    classification: str
    category: str
    rows: int
    nulls: int
    distinct: int
    min: str | None
    max: str | None
    untrimmed: int = 0
    formats: dict[str, int] = field(default_factory=dict)
    shapes: int = 0
    top_values: list[list] = field(default_factory=list)

    @property
    def null_rate(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0

    @property
    def date_formats(self) -> dict[str, int]:
        """The formats found that are date formats (``%``-patterns), with their rows."""
        return {label: n for label, n in self.formats.items() if label.startswith("%")}

    def to_dict(self) -> dict:
        return asdict(self) | {"null_rate": round(self.null_rate, 6)}


def profile_table(
    connection: sa.Connection,
    system: str,
    table: str,
    columns: list[dict],
    date_formats: dict[str, tuple[str, ...]] | None = None,
    masker: EvidenceMasker | None = None,
) -> list[ColumnProfile]:
    """Profile every column of ``table``; ``date_formats`` are the spec's formats per column.

    ``masker`` classifies each column and masks the values a profile shows (min, max, top values);
    a text column it does not know and whose name says nothing is classified from a sample of
    its values (``classify_values``).
    """
    masker = masker or EvidenceMasker()
    where = f"{system}.{table}"
    source = sa.table(table, *(sa.column(c["name"]) for c in columns))
    families = {c["name"]: type_family(c["type"]) for c in columns}
    masker = masker.with_columns(
        where, classify_by_values(connection, source, families, masker, where)
    )
    aggregates: list[sa.ColumnElement] = [sa.func.count().label("rows")]
    for c in columns:
        col = source.c[c["name"]]
        untrimmed = (
            sa.func.sum(sa.case((col != sa.func.trim(col), 1), else_=0))
            if families[c["name"]] == "text"
            else sa.literal(0)
        )
        aggregates += [
            sa.func.count(col),
            sa.func.count(sa.distinct(col)),
            sa.func.min(col),
            sa.func.max(col),
            untrimmed,
        ]
    values = connection.execute(sa.select(*aggregates).select_from(source)).one()
    rows = values[0]
    profiles = []
    for index, c in enumerate(columns):
        name = c["name"]
        non_null, distinct, low, high, untrimmed = values[1 + 5 * index : 6 + 5 * index]
        classification = masker.classification(where, name)
        category = CATEGORIES.get(classification, "other")
        family = families[name]
        formats: dict[str, int] = {}
        shapes = 0
        if family == "text" and classification not in _NO_SHAPES and non_null:
            formats, shapes = column_formats(
                connection,
                source,
                name,
                (date_formats or {}).get(name, ()),
                # letters of identifiers in person tables (user names) are masked too
                letters=classification == "phone" or (is_person_table(table) and distinct > 50),
            )
        top = []
        if 0 < distinct < non_null and (distinct <= 50 or distinct * 10 <= non_null):
            top = top_values(connection, source, name, masker.for_column(where, name))
        profiles.append(
            ColumnProfile(
                system=system,
                table=table,
                column=name,
                type=family,
                inferred_type=infer_type(family, classification, formats, non_null),
                classification=classification,
                category=category,
                rows=rows,
                nulls=rows - non_null,
                distinct=distinct,
                min=masker.text(where, name, low),
                max=masker.text(where, name, high),
                untrimmed=int(untrimmed or 0),
                formats=formats,
                shapes=shapes,
                top_values=top,
            )
        )
    return profiles


def classify_by_values(
    connection: sa.Connection,
    source: sa.TableClause,
    families: dict[str, str],
    masker: EvidenceMasker,
    where: str,
) -> dict[str, str]:
    """Text columns that neither the masker nor their name classify, classified by their values."""
    found = {}
    for name, family in families.items():
        if family != "text" or masker.known(where, name) is not None:
            continue
        if masker.classification(where, name) != "other":
            continue
        col = source.c[name]
        sample = connection.execute(
            sa.select(col).where(col.is_not(None)).distinct().limit(SAMPLE_SIZE)
        ).scalars()
        kind = classify_values(sample)
        if kind is not None:
            found[name] = kind
    return found


def shape_of(column: sa.ColumnElement) -> sa.ColumnElement:
    """SQL for the value's digit shape: every digit becomes 9 (portable nested ``replace``)."""
    expression = column
    for digit in "012345678":
        expression = sa.func.replace(expression, digit, "9")
    return expression


_LETTER = re.compile(r"[^\W\d_]")


def column_formats(
    connection: sa.Connection,
    source: sa.TableClause,
    column: str,
    spec_formats: tuple[str, ...],
    *,
    letters: bool,
) -> tuple[dict[str, int], int]:
    """Rows per format found in a text column, and how many distinct shapes it has.

    A shape that a date format reads (tried on the shape's largest value) is named by that
    format; any other shape is shown as itself, with ``letters`` also turned into ``a``/``A``
    (phones, person tables: a letter in a number is a defect worth seeing, the letter is not).
    A column with more than ``MAX_SHAPES`` shapes is free text: no formats are listed.
    """
    col = source.c[column]
    shape = shape_of(col).label("shape")
    # the largest value names the shape: a MySQL zero date shares the shape of the dates around
    # it and would be the smallest
    query = (
        sa.select(shape, sa.func.count().label("n"), sa.func.max(col).label("example"))
        .select_from(source)
        .where(col.is_not(None))
        .group_by(shape)
        .order_by(sa.func.count().desc(), shape)
    )
    formats: dict[str, int] = {}
    shapes = 0
    for text, rows, example in connection.execute(query):
        shapes += 1
        if shapes > MAX_SHAPES:
            continue
        label = date_format_of(example, spec_formats)
        if label is None:
            label = _LETTER.sub(lambda m: "A" if m[0].isupper() else "a", text) if letters else text
        formats[label] = formats.get(label, 0) + rows
    if shapes > MAX_SHAPES:
        return {}, shapes
    return dict(sorted(formats.items(), key=lambda item: -item[1])), shapes


def date_format_of(value: object, spec_formats: tuple[str, ...] = ()) -> str | None:
    """The date format that reads ``value``: the spec's first, then a common one exactly.

    The spec's formats are taken as ``parse_datetime`` takes them; a common format must also
    write the value back identically, so digits that merely fit (a phone number read as
    ``%Y%m%d%H%M%S``) are not taken for a date.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or not any(ch.isdigit() for ch in text):
        return None
    for fmt in spec_formats:
        try:
            datetime.strptime(text, fmt)
        except ValueError:
            continue
        return fmt
    for fmt in COMMON_DATE_FORMATS:
        try:
            moment = datetime.strptime(text, fmt)
        except ValueError:
            continue
        if moment.strftime(fmt) == text:
            return fmt
    return None


def top_values(
    connection: sa.Connection, source: sa.TableClause, column: str, mask: Callable[[object], object]
) -> list[list]:
    """The most frequent values with their rows, masked by the column's classification."""
    col = source.c[column]
    query = (
        sa.select(col, sa.func.count().label("n"))
        .select_from(source)
        .where(col.is_not(None))
        .group_by(col)
        .order_by(sa.func.count().desc(), col)
        .limit(TOP_VALUES)
    )
    return [
        [None if value is None else canonical(mask(value)), rows]
        for value, rows in connection.execute(query)
    ]


def infer_type(family: str, classification: str, formats: dict[str, int], non_null: int) -> str:
    """What the values are, beyond the declared type: text that holds dates, numbers, phones."""
    if family != "text" or not non_null:
        return family
    if classification in ("email", "phone", "name", "address", "credential"):
        return classification
    dated = sum(n for label, n in formats.items() if label.startswith("%"))
    if dated * 100 >= non_null * 95:
        return "datetime"
    shapes = [label for label in formats if not label.startswith("%")]
    if shapes and sum(formats[s] for s in shapes) == non_null:
        if all(set(s) <= set("9-") and s.lstrip("-") for s in shapes):
            return "integer"
        if all(set(s) <= set("9.-") and s.count(".") == 1 for s in shapes):
            return "decimal"
    return "text"
