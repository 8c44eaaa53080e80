"""Orphan foreign keys and the rows that fall with their parent, as queries inside each source.

The relations come from the spec: a column with ``references: <target>`` points at the key of
the source tables of the same system that feed that target (the loader resolves it the same
way, through the target), and a trial ``sample`` with a ``parent`` names one directly. Both ends
are in one database, so every count is one anti-join or semi-join there; nothing is streamed.

A row is an **orphan** when its parent key is missing (or NULL, or filtered out), or when its
parent is itself an orphan: an order item of an order whose customer does not exist never
loads. A row whose parent will be quarantined for its own values (an order without amount)
is counted apart, by the parent's rule (``parent_quarantined``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from runbook_lib.assess.findings import EXAMPLES, Finding
from runbook_lib.mapping.compiled import CompiledSource
from runbook_lib.mapping.model import LoadedSpec


@dataclass
class Node:
    """One source table: its key, the rows it quarantines for its own values, its parents."""

    pipeline: CompiledSource
    source: sa.TableClause
    failures: list[tuple[str, sa.ColumnElement]] = field(default_factory=list)
    parents: list[tuple[str, list[Node]]] = field(default_factory=list)

    @property
    def key(self) -> str | None:
        keys = self.pipeline.key_columns
        return keys[0] if len(keys) == 1 else None

    def kept(self) -> list[sa.ColumnElement]:
        return self.pipeline.filter_clauses()

    def keys_where(self, *conditions: sa.ColumnElement) -> sa.Select:
        key = self.source.c[self.key]
        return (
            sa.select(key)
            .select_from(self.source)
            .where(key.is_not(None), *self.kept(), *conditions)
            .correlate(None)
        )


def build_nodes(
    spec: LoadedSpec, pipelines: list[CompiledSource], columns: dict[tuple[str, str], list[str]]
) -> dict[tuple[str, str], Node]:
    """A node per mapped source table, linked to its parents by references and sample parents."""
    nodes = {
        (p.system, p.table): Node(
            p, sa.table(p.table, *(sa.column(c) for c in columns[(p.system, p.table)]))
        )
        for p in pipelines
    }
    for node in nodes.values():
        pipeline = node.pipeline
        linked = set()
        for column in pipeline.reference_columns:
            if len(column.inputs) != 1 or column.steps:
                continue  # a transformed or composite reference is resolved only by the loader
            ref = pipeline.parents[column.outputs[0]]
            parents = [
                nodes[(p.system, p.table)]
                for p in pipelines
                if p.target_name == ref.target
                and p.system == ref.system
                and ref.source_table in (None, p.table)
            ]
            node.parents.append((column.inputs[0], [p for p in parents if p.key]))
            linked.add(column.inputs[0])
        sample = pipeline.source.sample
        present = columns[(pipeline.system, pipeline.table)]
        if sample is not None and sample.parent and sample.column in set(present) - linked:
            parent = nodes.get((pipeline.system, sample.parent))
            if parent is not None and parent.key and sample.parent_key in (None, parent.key):
                node.parents.append((sample.column, [parent]))
    return nodes


def orphan_chain(node: Node, depth: int = 0) -> sa.ColumnElement | None:
    """Rows of ``node`` whose parent (at any depth) is missing."""
    if depth > 8:  # a cycle of references: stop rather than recurse forever
        return None
    parts = [_orphan(node, column, parents, depth) for column, parents in node.parents]
    return sa.or_(*parts) if parts else None


def _orphan(node: Node, column: str, parents: list[Node], depth: int) -> sa.ColumnElement:
    return sa.or_(
        _missing_parent(node, column, parents), *_orphaned_parent(node, column, parents, depth)
    )


def _missing_parent(node: Node, column: str, parents: list[Node]) -> sa.ColumnElement:
    col = node.source.c[column]
    if not parents:
        return sa.true()  # no source of this system feeds the referenced target
    present = [col.in_(parent.keys_where()) for parent in parents]
    # a NULL reference is no reference: the loader keeps it NULL, it orphans nothing
    return sa.and_(col.is_not(None), sa.not_(sa.or_(*present)))


def _orphaned_parent(node: Node, column: str, parents: list[Node], depth: int) -> list:
    col = node.source.c[column]
    found = []
    for parent in parents:
        chain = orphan_chain(parent, depth + 1)
        if chain is not None:
            found.append(col.in_(parent.keys_where(chain)))
    return found


def failure_chain(node: Node, depth: int = 0) -> list[tuple[str, sa.ColumnElement]]:
    """(label, rows) for every quarantine rule of a parent that takes rows of ``node`` with it."""
    inherited = []
    if depth > 8:
        return inherited
    for column, parents in node.parents:
        col = node.source.c[column]
        for parent in parents:
            for label, condition in [*parent.failures, *failure_chain(parent, depth + 1)]:
                inherited.append((label, col.in_(parent.keys_where(condition))))
    return inherited


def reference_findings(connection: sa.Connection, node: Node) -> list[Finding]:
    """Orphans per reference column, and rows whose parent is quarantined, by the parent's rule."""
    pipeline = node.pipeline
    count = _counter(connection, node)
    findings = []
    for column, parents in node.parents:
        missing = _missing_parent(node, column, parents)
        via = _orphaned_parent(node, column, parents, 0)
        direct = count(missing)
        total = count(sa.or_(missing, *via))
        names = ", ".join(f"{p.pipeline.table}.{p.key}" for p in parents) or "no source"
        findings.append(
            Finding(
                "orphan_foreign_key",
                "error" if total else "info",
                pipeline.system,
                pipeline.table,
                column,
                total,
                f"{direct:,} rows point at no row of {names}; {total - direct:,} more at a "
                "parent that is itself an orphan",
                examples=_examples(connection, node, column, sa.or_(missing, *via))
                if total
                else (),
                breakdown={"missing_parent": direct, "orphaned_parent": total - direct},
            )
        )
    inherited = failure_chain(node)
    if inherited:
        breakdown: dict[str, int] = {}
        for label, condition in inherited:
            breakdown[label] = breakdown.get(label, 0) + count(condition)
        falling = sa.or_(*(condition for _label, condition in inherited))
        total = count(falling)
        first = node.parents[0][0]
        findings.append(
            Finding(
                "parent_quarantined",
                "error" if total else "info",
                pipeline.system,
                pipeline.table,
                ", ".join(column for column, _ in node.parents),
                total,
                f"{total:,} rows belong to a parent row that will be quarantined",
                examples=_examples(connection, node, first, falling) if total else (),
                breakdown={k: v for k, v in breakdown.items() if v},
            )
        )
    return findings


def _counter(connection: sa.Connection, node: Node):
    def count(condition: sa.ColumnElement) -> int:
        query = sa.select(sa.func.count()).select_from(node.source).where(*node.kept(), condition)
        return int(connection.execute(query).scalar_one())

    return count


def _examples(connection, node: Node, column: str, condition) -> tuple[str, ...]:
    keys = node.pipeline.key_columns
    query = (
        sa.select(*(node.source.c[k] for k in keys), node.source.c[column])
        .where(*node.kept(), condition)
        .order_by(*(node.source.c[k] for k in keys))
        .limit(EXAMPLES)
    )
    return tuple(
        f"{'|'.join(keys)}={'|'.join(str(v) for v in row[:-1])}: {column}={row[-1]}"
        for row in connection.execute(query)
    )
