"""Validation of a merge target: each source record's link, and each survivor's values.

A merge target (customers) has no one-to-one image of a source row: several records become one
row, whose fields come from different records by survivorship. So each expected record is
checked against the row its crosswalk entry points at, in load order, a chunk at a time:

* a record linked as ``new`` owns its row (the row's source system and key are the record's);
* a record linked by ``match:<column>`` has that column's value equal to the row's;
* with a ``supplied_fields`` crosswalk column (which record supplied which field): every field a
  record supplied holds that record's value; every non-empty field was supplied by exactly one
  record; no field is empty while a linked record has a value; and no supplier ranks below a
  record that also had a value (``MergeSpec.rank``);
* without it, the default order: the owner's non-empty values are kept, and no field stays
  empty while a linked record has a value.

A wrong value is attributed to the row's owner (the planted key when someone edits the row); a
wrong link to the record. Memory holds one chunk and the ids of rows already found wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from runbook_lib.db.canonical import canonical
from runbook_lib.db.lookups import key_in
from runbook_lib.mapping.model import TargetMapping

SUPPLIED_FIELDS = "supplied_fields"


@dataclass
class SurvivorProblem:
    """What is wrong with one key: the columns and a sentence each."""

    columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    values: dict[str, tuple] = field(default_factory=dict)  # column → (expected, actual)

    def add(self, column: str, note: str, values: tuple | None = None) -> None:
        if column not in self.columns:
            self.columns.append(column)
        self.notes.append(f"{column}: {note}")
        if values is not None:
            self.values.setdefault(column, values)


def _same(value: object, have: object) -> bool:
    """Equal as validation compares values: by canonical text (text equal as it is: faster)."""
    if type(value) is str and type(have) is str:
        return value == have
    return canonical(value) == canonical(have)


class SurvivorCheck:
    """Checks every record of every source of one merge target, in load order."""

    def __init__(self, name: str, target: TargetMapping, table: sa.Table, xref: sa.Table) -> None:
        self.name = name
        self.merge = target.merge
        self.id_column = target.id_column
        self.table = table
        self.xref = xref
        protected = {self.id_column, "source_system", "source_key"}
        self.fields = [c.name for c in table.columns if c.name not in protected]
        self._names = list(table.columns.keys())
        self.tracked = SUPPLIED_FIELDS in xref.c
        self.problems: dict[tuple[str, str], SurvivorProblem] = {}
        self.wrong_rows: set[int] = set()

    def _problem(self, system, key, column, note, values: tuple | None = None) -> None:
        self.problems.setdefault((system, key), SurvivorProblem()).add(column, note, values)

    def _rank(self, name: str, system: str) -> int:
        rank = getattr(self.merge, "rank", None)
        if rank is not None:
            return rank(name, system)
        order = self.merge.survivorship
        return order.index(system) if system in order else len(order)

    def _overridden(self, name: str) -> bool:
        return bool(getattr(self.merge, "survivorship_by_field", {}).get(name))

    # --- reading the target ------------------------------------------------------------------

    def _links(self, connection: sa.Connection, system: str, keys: list[str]) -> dict[str, tuple]:
        """Key → (customer id, rule, supplied fields, the row as a dict or None)."""
        x, t = self.xref, self.table
        supplied = x.c[SUPPLIED_FIELDS] if self.tracked else sa.literal_column("NULL")
        found = {}
        for condition in key_in(x.c.source_key, keys, connection.dialect.name):
            query = (
                sa.select(x.c.source_key, x.c[self.id_column], x.c.match_rule, supplied, t)
                .select_from(x.outerjoin(t, t.c[self.id_column] == x.c[self.id_column]))
                .where(x.c.source_system == system, condition)
            )
            for row in connection.execute(query):
                entity = dict(zip(self._names, row[4:], strict=True))
                present = entity[self.id_column] is not None
                names = set(row[3].split(",")) if row[3] else set()
                found[row[0]] = (row[1], row[2], names, entity if present else None)
        return found

    def _suppliers(self, connection: sa.Connection, ids: list[int]) -> dict[int, list[tuple]]:
        """Every record linked to each customer id: [(system, key, supplied fields)]."""
        x = self.xref
        found: dict[int, list[tuple]] = {}
        for condition in key_in(x.c[self.id_column], sorted(ids), connection.dialect.name):
            query = sa.select(
                x.c[self.id_column], x.c.source_system, x.c.source_key, x.c[SUPPLIED_FIELDS]
            ).where(condition)
            for entity_id, system, key, names in connection.execute(query):
                found.setdefault(entity_id, []).append(
                    (system, key, set(names.split(",")) if names else set())
                )
        return found

    # --- the checks --------------------------------------------------------------------------

    def check(self, connection: sa.Connection, system: str, rows: list[tuple[str, dict]]) -> None:
        """Check one chunk of expected records of ``system`` (in load order)."""
        links = self._links(connection, system, [key for key, _out in rows])
        ids = sorted({link[0] for link in links.values() if link[3] is not None})
        suppliers = self._suppliers(connection, ids) if self.tracked else {}
        for key, out in rows:
            link = links.get(key)
            if link is None or link[3] is None:
                continue  # no crosswalk row (a missing key) or a dangling one (an orphan)
            entity_id, rule, supplied, entity = link
            owner = (entity["source_system"], entity["source_key"])
            if rule == "new":
                if owner != (system, key):
                    self._problem(
                        system,
                        key,
                        "crosswalk",
                        f"linked as new to the row of {owner[0]}:{owner[1]}",
                    )
                    continue
                if self.tracked:
                    self._check_coverage(owner, entity, suppliers.get(entity_id, []))
            else:
                self._check_match(system, key, rule, out, entity, entity_id)
            for name in self.fields:
                if name not in out:
                    continue
                if self.tracked:
                    self._check_supplied(
                        system,
                        key,
                        owner,
                        name,
                        out[name],
                        entity,
                        supplied,
                        suppliers.get(entity_id, []),
                    )
                else:
                    self._check_default(rule, system, key, owner, name, out[name], entity)

    def _flag(self, owner, entity, name, note, expected=None) -> None:
        self.wrong_rows.add(entity[self.id_column])
        self._problem(*owner, name, note, (expected, entity[name]))

    def _check_match(self, system, key, rule, out, entity, entity_id) -> None:
        column = rule.partition(":")[2]
        if column not in self.fields or entity_id in self.wrong_rows:
            return
        if not _same(out.get(column), entity[column]):
            owner = f"{entity['source_system']}:{entity['source_key']}"
            self._problem(
                system, key, column, f"linked by {column} to {owner}, whose {column} differs"
            )

    def _check_coverage(self, owner, entity, linked: list[tuple]) -> None:
        """Every non-empty field supplied by exactly one linked record."""
        counts: dict[str, int] = {}
        for _system, _key, names in linked:
            for name in names:
                counts[name] = counts.get(name, 0) + 1
        for name in self.fields:
            filled = entity[name] is not None
            if filled and counts.get(name, 0) == 0:
                self._flag(owner, entity, name, "holds a value no source record supplied")
            elif counts.get(name, 0) > 1:
                self._flag(owner, entity, name, f"supplied by {counts[name]} records")

    def _check_supplied(self, system, key, owner, name, value, entity, supplied, linked) -> None:
        have = entity[name]
        if name in supplied:
            if not _same(value, have):
                self._flag(owner, entity, name, f"supplied by {system}:{key}", value)
            return
        if value is None:
            return
        if have is None:
            self._flag(owner, entity, name, f"empty although {system}:{key} has a value", value)
            return
        winner = next(((s, k) for s, k, names in linked if name in names), None)
        if winner and self._rank(name, system) < self._rank(name, winner[0]):
            note = f"taken from {winner[0]}:{winner[1]}, but {system}:{key} ranks first"
            self._flag(owner, entity, name, note, value)

    def _check_default(self, rule, system, key, owner, name, value, entity) -> None:
        have = entity[name]
        if rule == "new" and value is not None and not self._overridden(name):
            if not _same(value, have):
                self._flag(owner, entity, name, "differs from the record that owns the row", value)
        elif value is not None and have is None:
            self._flag(owner, entity, name, f"empty although {system}:{key} has a value", value)

    def extra_rows(self, connection: sa.Connection, system: str) -> list[str]:
        """Keys of ``system``'s rows in the merge target that no ``new`` crosswalk row owns.

        ``EXCEPT`` rather than ``NOT EXISTS``: a set difference is hashed or sorted whatever the
        planner believes, and right after a bulk load (no statistics yet) PostgreSQL turns a
        correlated anti-join into a quadratic nested loop.
        """
        t, x = self.table, self.xref
        rows = sa.select(t.c.source_key, t.c[self.id_column]).where(t.c.source_system == system)
        owned = sa.select(x.c.source_key, x.c[self.id_column]).where(
            x.c.source_system == system, x.c.match_rule == "new"
        )
        return sorted({key for key, _id in connection.execute(sa.except_(rows, owned))})
