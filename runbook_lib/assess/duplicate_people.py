"""Duplicate people within and across systems, found before the load by the merge's match keys.

For each merge target (customers) the match columns (``match_on: [email, phone]``) are computed
for every source record with the spec's own transforms (``normalize_email``, ``phone_e164`` with
its region), so "the same person" means here exactly what it will mean to the loader. The
records stream in chunks into a scratch SQLite file (keys from several databases cannot be
joined in any one of them); people are the connected components of records sharing any match
key, found by label propagation in SQL. Memory stays flat: the scratch file holds the keys.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from runbook_lib.assess.findings import EXAMPLES, Finding
from runbook_lib.errors import TransformError
from runbook_lib.mapping.compiled import CompiledColumn, CompiledSource
from runbook_lib.mapping.model import LoadedSpec

_SCHEMA = (
    "CREATE TABLE rec (rid INTEGER PRIMARY KEY, system TEXT, tbl TEXT, skey TEXT, comp INTEGER)",
    "CREATE TABLE k (kind TEXT, value TEXT, rid INTEGER)",
)
_LINKS = (
    # only key values held by two or more records link anybody
    "CREATE TABLE link AS SELECT k.kind, k.value, k.rid FROM k JOIN ("
    " SELECT kind, value FROM k GROUP BY kind, value HAVING COUNT(*) > 1"
    ") AS shared ON shared.kind = k.kind AND shared.value = k.value",
    "CREATE INDEX link_value ON link (kind, value)",
    "CREATE INDEX link_rid ON link (rid)",
)
# Each round lowers every record's component to the smallest one sharing a key with it.
_ROUND = """
UPDATE rec SET comp = low.c FROM (
  SELECT link.rid AS rid, MIN(m.c) AS c FROM link JOIN (
    SELECT link.kind AS kind, link.value AS value, MIN(rec.comp) AS c
    FROM link JOIN rec ON rec.rid = link.rid GROUP BY link.kind, link.value
  ) AS m ON m.kind = link.kind AND m.value = link.value GROUP BY link.rid
) AS low WHERE low.rid = rec.rid AND low.c < rec.comp
"""


def match_columns(
    pipeline: CompiledSource, match_on: list[str]
) -> list[tuple[str, CompiledColumn, int]]:
    """(match column, the compiled mapping producing it, its position in the outputs)."""
    found = []
    for name in match_on:
        for column in pipeline.columns:
            if name in column.outputs and column.inputs:
                found.append((name, column, column.outputs.index(name)))
    return found


def duplicate_findings(
    spec: LoadedSpec,
    sources: dict[str, sa.Engine],
    pipelines: list[CompiledSource],
    chunk_size: int = 20_000,
) -> list[Finding]:
    """Duplicate records within each system and people found in several systems, per merge target."""
    findings = []
    for target_name, target in spec.spec.targets.items():
        if target.merge is None:
            continue
        own = [p for p in pipelines if p.target_name == target_name]
        with tempfile.TemporaryDirectory(prefix="runbook-dedup-") as folder:
            scratch = sa.create_engine(f"sqlite:///{Path(folder) / 'keys.db'}")
            try:
                with scratch.begin() as db:
                    for statement in _SCHEMA:
                        db.exec_driver_sql(statement)
                for pipeline in own:
                    _collect(
                        pipeline,
                        sources[pipeline.system],
                        scratch,
                        target.merge.match_on,
                        chunk_size,
                    )
                with scratch.begin() as db:
                    for statement in _LINKS:
                        db.exec_driver_sql(statement)
                    while db.exec_driver_sql(_ROUND).rowcount:
                        pass
                    order = list(dict.fromkeys([*target.merge.survivorship, *spec.spec.systems]))
                    findings += _findings(db, target_name, own, target.merge.match_on, order)
            finally:
                scratch.dispose()
    return findings


def _collect(
    pipeline: CompiledSource, engine: sa.Engine, scratch: sa.Engine, match_on, chunk_size
) -> None:
    """Stream one source's keys and normalized match values into the scratch file."""
    matches = match_columns(pipeline, match_on)
    names = list(
        dict.fromkeys([*pipeline.key_columns, *(n for _, c, _ in matches for n in c.inputs)])
    )
    source = sa.table(pipeline.table, *(sa.column(n) for n in names))
    query = sa.select(*(source.c[n] for n in names)).where(*pipeline.filter_clauses())
    with engine.connect() as connection, scratch.connect() as db:
        result = connection.execution_options(stream_results=True, yield_per=chunk_size).execute(
            query
        )
        for partition in result.mappings().partitions(chunk_size):
            next_rid = db.exec_driver_sql("SELECT COALESCE(MAX(rid), 0) FROM rec").scalar_one() + 1
            records, keys = [], []
            for offset, row in enumerate(partition):
                rid = next_rid + offset
                key = "|".join(str(row[k]) for k in pipeline.key_columns)
                records.append((rid, pipeline.system, pipeline.table, key, rid))
                for name, column, position in matches:
                    try:
                        value = column.apply(*(row[n] for n in column.inputs))[position]
                    except TransformError:
                        continue  # an invalid email or phone matches nobody
                    if value is not None:
                        keys.append((name, str(value), rid))
            db.exec_driver_sql("INSERT INTO rec VALUES (?, ?, ?, ?, ?)", records)
            if keys:
                db.exec_driver_sql("INSERT INTO k VALUES (?, ?, ?)", keys)
            db.commit()


def _findings(
    db, target_name: str, pipelines: list[CompiledSource], match_on: list[str], order: list[str]
) -> list[Finding]:
    keys = ", ".join(match_on)
    findings = []
    for pipeline in pipelines:
        extra = db.exec_driver_sql(
            "SELECT COUNT(*) - COUNT(DISTINCT comp) FROM rec WHERE system = ? AND tbl = ?",
            (pipeline.system, pipeline.table),
        ).scalar_one()
        within = (
            "SELECT comp FROM rec WHERE system = ? AND tbl = ? GROUP BY comp HAVING COUNT(*) > 1"
        )
        examples = _examples(db, within, (pipeline.system, pipeline.table)) if extra else ()
        findings.append(
            Finding(
                "duplicate_person_within_system",
                "warning" if extra else "info",
                pipeline.system,
                pipeline.table,
                keys,
                extra,
                f"{extra:,} records are a second record of a person already in {pipeline.system} "
                f"(same normalized {' or '.join(match_on)}); they merge into one {target_name} row",
                examples=examples,
            )
        )
    records, people = db.exec_driver_sql("SELECT COUNT(*), COUNT(DISTINCT comp) FROM rec").one()
    spread: Counter = Counter()
    pairs: Counter = Counter()
    rows = db.exec_driver_sql(
        "SELECT GROUP_CONCAT(DISTINCT system) FROM rec GROUP BY comp HAVING COUNT(DISTINCT system) > 1"
    )
    for (systems,) in rows:
        present = sorted(
            systems.split(","), key=lambda s: order.index(s) if s in order else len(order)
        )
        spread[len(present)] += 1
        if len(present) == 2:
            pairs["+".join(present)] += 1
    several = sum(spread.values())
    breakdown = {f"persons_in_{_words(n)}_systems": spread[n] for n in sorted(spread)}
    breakdown |= dict(
        sorted(pairs.items(), key=lambda item: [order.index(s) for s in item[0].split("+")])
    )
    breakdown |= {
        "duplicate_records": records - people,
        "distinct_persons": people,
        "source_records": records,
    }
    findings.append(
        Finding(
            "duplicate_person_across_systems",
            "warning" if several else "info",
            "+".join(s for s in order if any(p.system == s for p in pipelines)),
            target_name,
            keys,
            several,
            f"{several:,} people have records in more than one system; {records:,} source records "
            f"are {people:,} distinct people ({records - people:,} duplicate records merge)",
            examples=_examples(
                db, "SELECT comp FROM rec GROUP BY comp HAVING COUNT(DISTINCT system) > 1", ()
            ),
            breakdown=breakdown,
        )
    )
    return findings


def _words(n: int) -> str:
    return {2: "two", 3: "three", 4: "four"}.get(n, str(n))


def _examples(db, groups: str, parameters: tuple) -> tuple[str, ...]:
    """A few merged groups as ``system:key = system:key`` (keys are ids, not personal data)."""
    query = f"""
        SELECT GROUP_CONCAT(system || ':' || skey, ' = ') FROM (
          SELECT * FROM rec WHERE comp IN ({groups} ORDER BY comp LIMIT {EXAMPLES}) ORDER BY rid
        ) GROUP BY comp ORDER BY comp
    """
    return tuple(members for (members,) in db.exec_driver_sql(query, parameters))
