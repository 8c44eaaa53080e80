"""Validation benchmark: N orders, SQLite sources → PostgreSQL target, 10 planted differences.

    python bench/bench_validation.py --orders 1000000
    python bench/bench_validation.py --orders 20000                 # a quick run
    python bench/bench_validation.py --orders 100000 --contenders toolkit --keep

Set-up, not timed in the comparison: the demo sources are built once per size under
``work/bench_validation/<orders>/``; a fresh PostgreSQL database is created, the toolkit's
loader (``runbook_lib.loading.load``) fills it, and ten differences are planted in ``orders``
and ``customers`` (changed amounts in yuan and in dollars, a deleted order, an extra order, a
changed email, an order time shifted by 8 hours, a changed last name, a changed status, a paid
time set to NULL, an order re-pointed to another customer). The database is dropped at the end
(``--keep`` keeps it; ``--target URL`` reuses a kept one).

Contenders, each in its own child process (so peak RSS is its own), over ``customers`` and
``orders``:

* ``toolkit``   — ``reconcile.validate(tables=[customers, orders])``: row hashes summed per key
  range inside PostgreSQL, compared with the rows rebuilt through the mapping, bisected to the keys;
  accounting, survivorship, aggregates and integrity come with it;
* ``datacompy`` — the expected rows rebuilt through the same mapping into a DataFrame, the target
  read in full, ``datacompy.PandasCompare`` on (source_system, source_key);
* ``pandas``    — the same two frames, an outer merge with ``indicator=True`` and a column compare;
* ``md5``       — the in-database floor of comparing every row: the expected rows already in the
  target database in the target's own shape (copies of ``customers`` and ``orders`` taken after
  the load, before planting: ``bench_expected_<table>``), md5 of each row's text on both sides,
  a full outer join by (source_system, source_key), the differing keys with their kind. No
  rebuild through the mapping, no accounting: what the goal measures the toolkit against
  (≤ 1.5× ``md5``).

The baselines compare records by key, so the customers that the mapping merges (one row for a
person in three systems) and the fields survivorship fills show up as differences too: the
table counts them apart from the planted ones.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import sqlalchemy as sa
from common import (
    demo_spec,
    load_demo,
    peak_rss_mb,
    run_contender,
    scratch_database,
    source_engines,
    sources_for,
)

from runbook_lib.mapping.compiled import ordered_sources

TABLES = ("customers", "orders")
KEYS = ["source_system", "source_key"]
PLANTED_TABLE = "bench_planted"
EXPECTED_PREFIX = "bench_expected_"  # the md5 contender's same-shape expected rows


# --- set-up ----------------------------------------------------------------------------------


def load_target(folder: Path, url: str, chunk_size: int) -> float:
    report, seconds = load_demo(folder, url, chunk_size)
    if not report.passed:
        raise SystemExit(f"the load did not pass:\n{report.render()}")
    return seconds


def _pick(connection, query: str, index: int, **params) -> tuple:
    return connection.execute(sa.text(f"{query} OFFSET :i LIMIT 1"), {"i": index, **params}).one()


def plant(url: str) -> list[dict]:
    """Plant ten differences at spread-out keys; returns them (also kept in the target)."""
    target = sa.create_engine(url)
    planted: list[dict] = []

    def add(table, system, key, kind, what):
        planted.append(
            {"table": table, "source_system": system, "source_key": key, "kind": kind, "what": what}
        )

    orders_of = (
        "SELECT order_id, source_key, customer_id FROM orders "
        "WHERE source_system = :s {extra} ORDER BY order_id"
    )
    with target.begin() as c:
        for table in TABLES:  # the loaded rows, validated clean: the md5 contender's expected side
            c.execute(sa.text(f"CREATE TABLE {EXPECTED_PREFIX}{table} AS SELECT * FROM {table}"))
        count = c.execute(sa.text("SELECT count(*) FROM orders")).scalar_one()
        step = max(count // 23, 1)

        def order(system, slot, extra=""):
            return _pick(c, orders_of.format(extra=extra), step * slot // 2, s=system)

        oid, key, _ = order("legacy_a", 1)
        c.execute(sa.text("UPDATE orders SET amount = amount + 1 WHERE order_id = :i"), {"i": oid})
        add("orders", "legacy_a", key, "changed", "amount + 1.00 CNY")
        oid, key, _ = order("legacy_b", 2)
        c.execute(
            sa.text("UPDATE orders SET amount = amount + 0.01 WHERE order_id = :i"), {"i": oid}
        )
        add("orders", "legacy_b", key, "changed", "amount + 0.01 USD")
        oid, key, _ = order("legacy_a", 3)
        for child in ("shipments", "order_items"):
            c.execute(sa.text(f"DELETE FROM {child} WHERE order_id = :i"), {"i": oid})
        c.execute(sa.text("DELETE FROM orders WHERE order_id = :i"), {"i": oid})
        add("orders", "legacy_a", key, "missing", "order deleted (with its items and shipments)")
        oid, key, _ = order("legacy_b", 4)
        names = [col.name for col in sa.Table("orders", sa.MetaData(), autoload_with=c).columns]
        copied = {"order_id": "(SELECT max(order_id) + 1 FROM orders)"}
        copied |= {"order_no": "'SO-9999999'", "source_key": "'SO-9999999'"}
        c.execute(
            sa.text(
                f"INSERT INTO orders ({', '.join(names)}) "
                f"SELECT {', '.join(copied.get(n, n) for n in names)} FROM orders WHERE order_id = :i"
            ),
            {"i": oid},
        )
        add(
            "orders",
            "legacy_b",
            "SO-9999999",
            "extra",
            "order inserted (a copy under a new number)",
        )
        oid, key, _ = order("legacy_a", 5)
        c.execute(
            sa.text(
                "UPDATE orders SET ordered_at = ordered_at + interval '8 hours' WHERE order_id = :i"
            ),
            {"i": oid},
        )
        add("orders", "legacy_a", key, "changed", "ordered_at + 8 h (local time taken as UTC)")
        oid, key, _ = order("legacy_b", 6, "AND status <> 'cancelled'")
        c.execute(sa.text("UPDATE orders SET status = 'cancelled' WHERE order_id = :i"), {"i": oid})
        add("orders", "legacy_b", key, "changed", "status → cancelled")
        oid, key, _ = order("legacy_a", 7, "AND paid_at IS NOT NULL")
        c.execute(sa.text("UPDATE orders SET paid_at = NULL WHERE order_id = :i"), {"i": oid})
        add("orders", "legacy_a", key, "changed", "paid_at → NULL")
        oid, key, customer = order("legacy_a", 8)
        c.execute(
            sa.text(
                "UPDATE orders SET customer_id = (SELECT min(customer_id) FROM customers "
                "WHERE customer_id <> :c) WHERE order_id = :i"
            ),
            {"i": oid, "c": customer},
        )
        add("orders", "legacy_a", key, "changed", "customer_id re-pointed to another customer")
        owners = (
            "SELECT c.customer_id, c.source_key FROM customers c WHERE c.source_system = :s "
            "AND c.email IS NOT NULL ORDER BY c.customer_id"
        )
        people = c.execute(sa.text("SELECT count(*) FROM customers")).scalar_one()
        cid, key = _pick(c, owners, people // 5, s="legacy_a")
        c.execute(
            sa.text("UPDATE customers SET email = :e WHERE customer_id = :i"),
            {"e": f"planted.{cid}@example.com", "i": cid},
        )
        add("customers", "legacy_a", key, "changed", "email changed")
        cid, key = _pick(c, owners, people // 20, s="legacy_b")
        c.execute(
            sa.text("UPDATE customers SET last_name = 'Planted' WHERE customer_id = :i"), {"i": cid}
        )
        add("customers", "legacy_b", key, "changed", "last_name changed")
        c.execute(sa.text(f"CREATE TABLE {PLANTED_TABLE} (planted text)"))
        c.execute(sa.text(f"INSERT INTO {PLANTED_TABLE} VALUES (:p)"), {"p": json.dumps(planted)})
    target.dispose()
    assert len({(p["source_system"], p["source_key"]) for p in planted}) == 10
    return planted


def read_planted(url: str) -> list[dict]:
    target = sa.create_engine(url)
    with target.connect() as connection:
        text = connection.execute(sa.text(f"SELECT planted FROM {PLANTED_TABLE}")).scalar_one()
    target.dispose()
    return json.loads(text)


# --- contenders (each runs in its own process) ------------------------------------------------


def run_toolkit(folder: Path, url: str, chunk_size: int) -> dict:
    from runbook_lib.validate.validation import validate

    target = sa.create_engine(url)
    started = time.perf_counter()
    report = validate(
        demo_spec(),
        source_engines(folder),
        target,
        run_id="bench",
        target_label="bench",
        chunk_size=chunk_size,
        max_unexplained_differences=0,
        tables=TABLES,
        workers=int(os.environ["BENCH_WORKERS"]) if os.environ.get("BENCH_WORKERS") else None,
    )
    seconds = time.perf_counter() - started
    found = [
        {
            "table": d.table,
            "source_system": d.source_system,
            "source_key": d.source_key,
            "kind": d.kind,
        }
        for t in report.tables
        for d in t.differences
    ]
    return {
        "seconds": seconds,
        "reported": report.differences,
        "found": found,
        "rows": sum(t.compared_rows for t in report.tables),
        "passed": report.passed,
        "balanced": all(t.balanced for t in report.tables),
        "workers": report.workers,
    }


def _expected_frames(folder: Path, url: str, chunk_size: int):
    """The rows the mapping says the target holds, per target table, as DataFrames."""
    import pandas as pd

    from runbook_lib.validate.expected import compared_columns, expected_chunks

    spec = demo_spec()
    sources = source_engines(folder)
    target = sa.create_engine(url)
    metadata = sa.MetaData()
    metadata.reflect(target, only=["customers", "customer_xref", "orders"])
    frames = {}
    for table in TABLES:
        pipelines = [p for p in ordered_sources(spec) if p.target_name == table]
        columns = ["source_key"]
        for pipeline in pipelines:
            columns += [c for c in compared_columns(pipeline) if c not in columns]
        rows = []
        for pipeline in pipelines:
            for chunk in expected_chunks(
                pipeline,
                sources[pipeline.system],
                target,
                metadata,
                chunk_size=chunk_size,
                sample_percent=None,
            ):
                rows.extend(tuple(out.get(c) for c in columns) for _key, out in chunk.rows)
        frames[table] = pd.DataFrame.from_records(rows, columns=columns)
    return frames, target


def _target_frame(target: sa.Engine, table: str, columns: list[str]):
    import pandas as pd

    quoted = ", ".join(columns)
    # decimals as Decimal, as the mapping makes them (floats would differ everywhere)
    return pd.read_sql(sa.text(f"SELECT {quoted} FROM {table}"), target, coerce_float=False)


def _aligned(expected, actual):
    """Both frames with the same dtypes where pandas read them differently (decimals as text)."""
    for column in expected.columns:
        if expected[column].dtype == object and actual[column].dtype != object:
            actual[column] = actual[column].astype(object)
    return expected, actual


def _compare_frames(folder: Path, url: str, chunk_size: int, differing) -> dict:
    """A baseline: the expected frames against the target's, table by table.

    ``differing(expected, actual)`` gives (kind, frame holding the KEYS columns) pairs.
    """
    started = time.perf_counter()
    frames, target = _expected_frames(folder, url, chunk_size)
    rebuilt = time.perf_counter() - started
    found, rows = [], 0
    for table, expected in frames.items():
        actual = _target_frame(target, table, list(expected.columns))
        expected, actual = _aligned(expected, actual)
        rows += len(expected)
        for kind, frame in differing(expected, actual):
            found += [
                {"table": table, "source_system": s, "source_key": k, "kind": kind}
                for s, k in zip(frame["source_system"], frame["source_key"], strict=True)
            ]
    return {
        "seconds": time.perf_counter() - started,
        "rebuild_seconds": rebuilt,
        "reported": len(found),
        "found": found,
        "rows": rows,
    }


def _datacompy_differences(expected, actual):
    import datacompy

    compare = datacompy.PandasCompare(expected, actual, join_columns=KEYS)
    return [
        ("missing", compare.df1_unq_rows),
        ("extra", compare.df2_unq_rows),
        ("changed", compare.all_mismatch()),
    ]


def _pandas_differences(expected, actual):
    merged = expected.merge(actual, on=KEYS, how="outer", indicator=True, suffixes=("_e", "_t"))
    both = merged["_merge"] == "both"
    changed = both & False
    for column in (c for c in expected.columns if c not in KEYS):
        e, t = merged[f"{column}_e"], merged[f"{column}_t"]
        changed |= both & (e != t) & ~(e.isna() & t.isna())
    return [
        (kind, merged.loc[mask, KEYS])
        for kind, mask in (
            ("missing", merged["_merge"] == "left_only"),
            ("extra", merged["_merge"] == "right_only"),
            ("changed", changed),
        )
    ]


def run_datacompy(folder: Path, url: str, chunk_size: int) -> dict:
    return _compare_frames(folder, url, chunk_size, _datacompy_differences)


def run_pandas(folder: Path, url: str, chunk_size: int) -> dict:
    return _compare_frames(folder, url, chunk_size, _pandas_differences)


def run_md5(folder: Path, url: str, chunk_size: int) -> dict:
    """md5 per row of the expected and target tables, inside PostgreSQL, joined by key."""
    spec = demo_spec()
    target = sa.create_engine(url)
    started = time.perf_counter()
    found, rows = [], 0
    with target.connect() as connection:
        for table in TABLES:
            id_column = spec.spec.targets[table].id_column
            names = [
                c["name"]
                for c in sa.inspect(connection).get_columns(table)
                if c["name"] not in (id_column, *KEYS)
            ]
            hashed = f"md5(ROW({', '.join(names)})::text)"
            query = f"""
                SELECT coalesce(e.source_system, t.source_system),
                       coalesce(e.source_key, t.source_key),
                       CASE WHEN t.h IS NULL THEN 'missing' WHEN e.h IS NULL THEN 'extra'
                            ELSE 'changed' END
                FROM (SELECT source_system, source_key, {hashed} AS h
                      FROM {EXPECTED_PREFIX}{table}) e
                FULL JOIN (SELECT source_system, source_key, {hashed} AS h FROM {table}) t
                  ON e.source_system = t.source_system AND e.source_key = t.source_key
                WHERE e.h IS DISTINCT FROM t.h
            """
            result = connection.execute(sa.text(query)).all()
            found += [
                {"table": table, "source_system": s, "source_key": k, "kind": kind}
                for s, k, kind in result
            ]
            rows += connection.execute(
                sa.text(f"SELECT count(*) FROM {EXPECTED_PREFIX}{table}")
            ).scalar_one()
    target.dispose()
    return {
        "seconds": time.perf_counter() - started,
        "reported": len(found),
        "found": found,
        "rows": rows,
    }


def run_setup_load(folder: Path, url: str, chunk_size: int) -> dict:
    """The set-up's load, in a child process of its own.

    A contender forked from a parent that had loaded in-process would report the parent's peak
    RSS as its own (Linux keeps the high-water mark across exec).
    """
    return {"seconds": load_target(folder, url, chunk_size)}


CONTENDERS = {
    "setup": run_setup_load,
    "toolkit": run_toolkit,
    "datacompy": run_datacompy,
    "pandas": run_pandas,
    "md5": run_md5,
}


def contender_main(name: str, folder: Path, url: str, chunk_size: int) -> None:
    result = CONTENDERS[name](folder, url, chunk_size)
    result["peak_rss_mb"] = peak_rss_mb()
    # worker processes (the toolkit's, one per core): the largest of them, once they are done
    result["worker_rss_mb"] = peak_rss_mb(resource.RUSAGE_CHILDREN)
    print(json.dumps(result, default=str))


def score(result: dict, planted: list[dict]) -> tuple[int, int, int]:
    """(planted keys found, of them with the right kind, other keys reported)."""
    want = {(p["table"], p["source_system"], p["source_key"]): p["kind"] for p in planted}
    seen: dict[tuple, set] = {}
    for f in result["found"]:
        seen.setdefault((f["table"], f["source_system"], f["source_key"]), set()).add(f["kind"])
    found = [k for k in want if k in seen]
    exact = [k for k in found if want[k] in seen[k]]
    return len(found), len(exact), len(set(seen) - set(want))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--chunk-size", type=int, default=20_000)
    parser.add_argument("--contenders", default="md5,toolkit,datacompy,pandas")
    parser.add_argument("--keep", action="store_true", help="keep the target database")
    parser.add_argument("--workers", type=int, help="toolkit worker processes (default: per core)")
    parser.add_argument("--target", help="reuse a kept target database (URL)")
    parser.add_argument("--contender", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.contender:
        contender_main(args.contender, Path(args.folder), args.url, args.chunk_size)
        return
    if args.workers:
        os.environ["BENCH_WORKERS"] = str(args.workers)  # inherited by the contender processes
    folder = sources_for("bench_validation", args.orders)
    if args.target:
        print(f"reusing {sa.engine.make_url(args.target).database} with its planted differences")
        compare(args, folder, args.target, read_planted(args.target))
        return
    with scratch_database("runbook_bench_validation", keep=args.keep) as url:
        seconds = run_contender(__file__, "setup", folder, url, args.chunk_size)["seconds"]
        database = sa.engine.make_url(url).database
        print(f"set-up: loaded {args.orders:,} orders' demo into {database} in {seconds:.1f} s")
        compare(args, folder, url, plant(url))


def compare(args, folder: Path, url: str, planted: list[dict]) -> None:
    print(f"planted {len(planted)} differences:")
    for p in planted:
        print(
            f"  {p['table']:<10} {p['source_system']}:{p['source_key']:<12} {p['kind']:<8} {p['what']}"
        )
    print(
        f"\n{'contender':<10} {'seconds':>8} {'peak RSS':>18} {'rows':>10} "
        f"{'reported':>9} {'planted found':>14} {'other keys':>11} {'vs md5':>7}"
    )
    results: dict[str, dict] = {}
    for name in args.contenders.split(","):
        results[name] = result = run_contender(__file__, name, folder, url, args.chunk_size)
        ratio = (
            f"{result['seconds'] / results['md5']['seconds']:.1f}x"
            if "md5" in results and name != "md5"
            else ""
        )
        found, exact, other = score(result, planted)
        memory = f"{result['peak_rss_mb']:.0f} MB"
        if result.get("workers", 1) > 1:
            memory += f" + {result['workers']}×{result['worker_rss_mb']:.0f}"
        print(
            f"{name:<10} {result['seconds']:>8.1f} {memory:>18} "
            f"{result['rows']:>10,} {result['reported']:>9,} "
            f"{f'{found}/10 ({exact} exact)':>14} {other:>11,} {ratio:>7}".rstrip(),
            flush=True,
        )
        if "rebuild_seconds" in result:
            print(
                f"{'':<10} (of which {result['rebuild_seconds']:.1f} s rebuilding the expected rows)"
            )


if __name__ == "__main__":
    main()
