"""The trial's sample: a deterministic, referentially whole share of every source.

A source's own rows are picked as its ``sample:`` says — a hash of a root key (``{column: id}``),
or membership of a sampled parent (``{column: order_id, parent: orders}``); no ``sample:`` means
every row. Then the sample follows references *upwards*, so a sampled row never finds its parent
missing in the trial:

* a row referenced by a sampled row of another source of the same system is sampled too (the
  support rep of a sampled customer, the product of a sampled invoice line);
* for a reference into the source itself (an employee's manager, a category's parent), every
  ancestor of a sampled row is sampled (a recursive query up the hierarchy).

References that a sample already covers by construction are not followed again: a child sampled by
its parent, or by the same hash of the key it references. A reference through a transform, or to
another system's source, cannot be followed in one database's SQL; its rows may be orphans in the
trial. Everything is built as SQLAlchemy expressions, so names are quoted for each dialect.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from runbook_lib.mapping.model import LoadedSpec, SourceMapping

# Knuth's multiplicative hash folded to 32 bits: the same integer arithmetic in every dialect.
_MULTIPLIER, _FOLD = 2654435761, 4294967296


@dataclass(frozen=True)
class Edge:
    """Column ``column`` of source ``child`` holds key values of source ``parent`` (same system)."""

    child: tuple[str, str]
    column: str
    parent: tuple[str, str]


def references(spec: LoadedSpec) -> list[Edge]:
    """Every direct reference of the spec (one input, no transform) from one source to another."""
    edges = []
    for target_name, _target, system, table, source in spec.sources():
        for mapping in source.columns.values():
            if mapping.parent_target is None or len(mapping.inputs) != 1 or mapping.steps():
                continue
            parent = _parent_table(spec, target_name, system, mapping)
            if parent is not None:
                edges.append(Edge((system, table), mapping.inputs[0], parent))
    return edges


def _parent_table(
    spec: LoadedSpec, target_name: str, system: str, mapping
) -> tuple[str, str] | None:
    parent = spec.spec.targets.get(mapping.parent_target)
    if parent is None:
        return None
    if mapping.parent_source is not None:
        named_system, _, named_table = mapping.parent_source.partition(".")
        return (named_system, named_table) if named_system == system else None
    same = [name for name in parent.sources if name.partition(".")[0] == system]
    return (system, same[0].partition(".")[2]) if len(same) == 1 else None


def sample_clause(spec: LoadedSpec, system: str, table: str, percent: int) -> sa.ColumnElement:
    """The rows of ``system.table`` in a ``percent`` trial sample, as a WHERE clause."""
    return _Sampler(spec, int(percent)).clause((system, table), frozenset())


class _Sampler:
    def __init__(self, spec: LoadedSpec, percent: int) -> None:
        self.spec = spec
        self.percent = percent
        self.edges = references(spec)

    def source(self, name: tuple[str, str]) -> SourceMapping | None:
        return self.spec.source(*name)

    def own(self, name: tuple[str, str], visiting: frozenset) -> sa.ColumnElement | None:
        """The rows a source's own ``sample:`` picks (None: every row)."""
        source = self.source(name)
        sample = source.sample if source else None
        if sample is None:
            return None
        if sample.parent is None:
            column = sa.column(sample.column)
            return ((column * _MULTIPLIER) % _FOLD) % 100 < self.percent
        parent_name = (name[0], sample.parent)
        parent = self.source(parent_name)
        if parent is None:
            raise ValueError(f"sample parent {name[0]}.{sample.parent} is not a mapped source")
        parent_key = sa.column(sample.parent_key or parent.key_columns[0])
        inner = self.clause(parent_name, visiting | {name})
        query = sa.select(parent_key).select_from(sa.table(sample.parent))
        if inner is not None:
            query = query.where(inner)
        return sa.column(sample.column).in_(query)

    def clause(self, name: tuple[str, str], visiting: frozenset) -> sa.ColumnElement | None:
        own = self.own(name, visiting)
        if own is None:
            return sa.true() if not visiting else None
        if name in visiting:
            return own
        source = self.source(name)
        key = source.key_columns[0] if len(source.key_columns) == 1 else None
        picked = [own]
        for edge in self.edges:
            if edge.parent != name or edge.child == name or key is None:
                continue
            if self._covered(edge, name) or edge.child in visiting:
                continue
            child = self.clause(edge.child, visiting | {name})
            query = sa.select(sa.column(edge.column)).select_from(sa.table(edge.child[1]))
            query = query.where(sa.column(edge.column).is_not(None))
            if child is not None:
                query = query.where(child)
            picked.append(sa.column(key).in_(query))
        combined = sa.or_(*picked) if len(picked) > 1 else own
        upwards = [e.column for e in self.edges if e.child == e.parent == name]
        if upwards and key is not None:
            # one recursive step per query (PostgreSQL allows one recursive reference): a second
            # self-reference of the same table is followed from the first one's ancestors
            for column in upwards:
                combined = sa.column(key).in_(self._ancestors(name, key, column, combined))
        return combined

    def _covered(self, edge: Edge, parent: tuple[str, str]) -> bool:
        """Whether the child's own sample already keeps every parent it references sampled."""
        child = self.source(edge.child)
        sample = child.sample if child else None
        if sample is None:
            return False
        if sample.parent is not None:
            return (edge.child[0], sample.parent) == parent and sample.column == edge.column
        parent_source = self.source(parent)
        parent_sample = parent_source.sample if parent_source else None
        return (
            sample.column == edge.column
            and parent_sample is not None
            and parent_sample.parent is None
            and parent_sample.column == parent_source.key_columns[0]
        )

    def _ancestors(
        self, name: tuple[str, str], key: str, column: str, picked: sa.ColumnElement
    ) -> sa.Select:
        """Keys of the rows ``picked`` and of every ancestor through ``column`` (recursive)."""
        table = name[1]
        start = sa.select(sa.column(key).label("k")).select_from(sa.table(table)).where(picked)
        tree = start.cte(f"sample_up_{table}_{column}", recursive=True, nesting=True)
        rows = sa.table(table, sa.column(key), sa.column(column)).alias(f"sample_row_{table}")
        step = (
            sa.select(rows.c[column].label("k"))
            .select_from(rows.join(tree, rows.c[key] == tree.c.k))
            .where(rows.c[column].is_not(None))
        )
        tree = tree.union(step)
        return sa.select(tree.c.k)
