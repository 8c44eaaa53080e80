"""Load benchmark: the demo at N orders from SQLite into PostgreSQL, three ways, side by side.

    python bench/bench_load.py --orders 1000000          # ~3.5M source rows
    python bench/bench_load.py --orders 100000 --contenders toolkit
    python bench/bench_load.py --orders 100000 --engine dask --workers 2   # toolkit beside dask

Contenders, each in its own child process (so peak RSS is its own) and its own fresh database:

* ``toolkit``  — ``runbook_lib.load.loader.load``: the mapping's transforms (the Arrow route:
  vectorized kernels), dedup, lookups, quarantine, checkpoints, binary COPY through psycopg 3;
* ``rows``     — the same load by the rows route (``engine="rows"``: transforms a column at a
  time in Python), the reference the Arrow route is measured against;
* ``to_sql``   — pandas ``read_sql`` + ``to_sql`` of every source table as it is (no mapping);
* ``dask``     — the same load as ``toolkit`` with ``engine: dask``: the sources cut into key
  ranges of ``--partition-rows`` (``runbook_lib.scale``), one task per partition on a
  ``LocalCluster`` of ``--workers`` worker processes (cluster start-up not timed; the workers'
  memory is their own, not in the peak RSS); it also prints each partition's throughput;
* ``copy``     — a plain psycopg 3 COPY of every source table as it is, text columns, no keys;
* ``floor``    — the toolkit's own result, written the fastest way PostgreSQL takes it: the final
  rows of every table the load wrote (the target tables, crosswalk and rejects), dumped from the
  ``toolkit`` contender's target (``COPY ... TO STDOUT (FORMAT binary)``, not timed), are binary
  COPYed into a fresh copy of the same target schema (same keys and indexes), foreign keys
  suspended and validated at the end as the loader does, statistics refreshed. What any engine
  must pay to put these rows into this schema: the goal is the toolkit at ≤ 1.3× ``floor``.

The demo sources are built once per size under ``work/bench/<orders>/`` and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import sqlalchemy as sa
from common import (
    SYSTEMS,
    demo_spec,
    load_demo,
    peak_rss_mb,
    run_contender,
    scratch_database,
    source_rows,
    sources_for,
)


def run_toolkit(folder: Path, url: str, chunk_size: int, engine: str = "arrow") -> dict:
    report, seconds = load_demo(folder, url, chunk_size, engine)
    return {"seconds": seconds, "rows": report.source_rows, "loaded": report.to_dict()["loaded"]}


def run_toolkit_rows(folder: Path, url: str, chunk_size: int) -> dict:
    return run_toolkit(folder, url, chunk_size, engine="rows")


DASK_WORKERS = "BENCH_DASK_WORKERS"  # set by main from --workers / --partition-rows
DASK_PARTITION_ROWS = "BENCH_DASK_PARTITION_ROWS"
DASK_GAPS = "BENCH_DASK_GAPS"  # "1": dense_ids false (the plan's ids, no renumbering pass)
DASK_TARGET = "BENCH_DASK_TARGET_URL"  # the workers read the target's URL from here


def run_dask(folder: Path, url: str, chunk_size: int) -> dict:
    from distributed import Client, LocalCluster

    from runbook_demo.target_schema import create_target_schema
    from runbook_lib.config.params import ConnectionParams
    from runbook_lib.scale import dask_engine, partitioned
    from runbook_lib.scale.task import Connection

    workers = int(os.environ.get(DASK_WORKERS, "2"))
    os.environ[DASK_TARGET] = url  # before the workers start: they inherit it
    target = sa.create_engine(url)
    create_target_schema(target)
    sources = {
        system: Connection(
            system, ConnectionParams(url=f"sqlite:///{folder / system}.db"), str(folder)
        )
        for system in SYSTEMS
    }
    target_connection = Connection("target", ConnectionParams(url_env=DASK_TARGET), str(folder))
    engines = {system: c.engine() for system, c in sources.items()}
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(workers)
        started = time.perf_counter()
        report = partitioned.load(
            demo_spec(),
            engines,
            target,
            connections=sources,
            target_connection=target_connection,
            executor=dask_engine.executor(client, retries=2),
            engine_name="dask",
            workers=workers,
            run_id="bench",
            mode="full",
            chunk_size=chunk_size,
            max_reject_rate=1.0,
            target_label="bench",
            partition_rows=int(os.environ.get(DASK_PARTITION_ROWS, "100000")),
            max_partitions=64,
            dense_ids=os.environ.get(DASK_GAPS) != "1",
        )
        seconds = time.perf_counter() - started
    for engine in (target, *engines.values()):
        engine.dispose()
    cut = [t for t in report.tasks if t["partition"] >= 0 and t["seconds"]]
    rates = sorted(t["planned_rows"] / t["seconds"] for t in cut)
    return {
        "seconds": seconds,
        "rows": report.source_rows,
        "loaded": report.to_dict()["loaded"],
        "workers": workers,
        "partitions": len(report.tasks),
        "task_seconds": round(sum(t["seconds"] for t in report.tasks), 2),
        "partition_rows_per_s": {
            "min": round(rates[0]),
            "median": round(rates[len(rates) // 2]),
            "max": round(rates[-1]),
        }
        if rates
        else {},
        "largest_partition": max((t["planned_rows"] for t in cut), default=0),
        "phases": {
            phase: round(sum(t[f"{phase}_seconds"] for t in report.timings), 2)
            for phase in ("plan", "tasks", "close", "statistics")
        },
        "renumbered": sum(t.get("renumbered", 0) for t in report.timings),
        "merge_task_seconds": round(
            sum(t["seconds"] for t in report.tasks if t["partition"] < 0), 2
        ),
    }


def _source_tables(folder: Path):
    for system in SYSTEMS:
        with sqlite3.connect(folder / f"{system}.db") as connection:
            names = [
                r[0]
                for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
        for name in names:
            yield system, name


def run_to_sql(folder: Path, url: str, chunk_size: int) -> dict:
    import pandas as pd

    target = sa.create_engine(url)
    started = time.perf_counter()
    rows = 0
    for system, table in _source_tables(folder):
        source = sa.create_engine(f"sqlite:///{folder / system}.db")
        for frame in pd.read_sql(sa.text(f"SELECT * FROM {table}"), source, chunksize=chunk_size):
            frame.to_sql(f"{system}_{table}", target, if_exists="append", index=False)
            rows += len(frame)
    return {"seconds": time.perf_counter() - started, "rows": rows}


def run_copy(folder: Path, url: str, chunk_size: int) -> dict:
    import psycopg

    dsn = _dsn(url)
    started = time.perf_counter()
    rows = 0
    with psycopg.connect(dsn) as target:
        for system, table in _source_tables(folder):
            with sqlite3.connect(folder / f"{system}.db") as source:
                cursor = source.execute(f"SELECT * FROM {table}")
                columns = [d[0] for d in cursor.description]
                name = f"{system}_{table}"
                target.execute(f'CREATE TABLE "{name}" ({", ".join(f"{c} text" for c in columns)})')
                with target.cursor().copy(f'COPY "{name}" FROM STDIN') as copy:
                    while batch := cursor.fetchmany(chunk_size):
                        for row in batch:
                            copy.write_row(row)
                        rows += len(batch)
        target.commit()
    return {"seconds": time.perf_counter() - started, "rows": rows}


FLOOR_FROM = "BENCH_FLOOR_FROM"  # the toolkit target the floor copies (set by main)


def _floor_tables() -> list[str]:
    from runbook_lib.db.bookkeeping import REJECTS_TABLE

    return [*demo_spec().touched_tables(), REJECTS_TABLE]


def dump_final_rows(url: str, folder: Path) -> dict[str, int]:
    """Every table the toolkit's load wrote, as binary COPY files in ``folder``; rows per table."""
    import psycopg

    rows = {}
    with psycopg.connect(_dsn(url)) as connection:
        for table in _floor_tables():
            with (
                open(folder / f"{table}.copy", "wb") as out,
                connection.cursor().copy(f'COPY "{table}" TO STDOUT (FORMAT binary)') as copy,
            ):
                for data in copy:
                    out.write(data)
            rows[table] = connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    return rows


def run_floor(folder: Path, url: str, chunk_size: int) -> dict:
    """Binary COPY of the toolkit's final rows into a fresh copy of its target schema (timed)."""
    import psycopg

    from runbook_demo.target_schema import create_target_schema
    from runbook_lib.db.lookups import refresh_statistics
    from runbook_lib.load import checkpoints, foreign_keys
    from runbook_lib.load.quarantine import ensure_rejects_table

    target = sa.create_engine(url)
    create_target_schema(target)
    ensure_rejects_table(target)
    checkpoints.ensure_checkpoints_table(target)
    tables = _floor_tables()
    with tempfile.TemporaryDirectory(prefix="bench_floor_") as scratch:
        rows = dump_final_rows(os.environ[FLOOR_FROM], Path(scratch))
        started = time.perf_counter()
        foreign_keys.suspend(target, tables, "floor")
        with psycopg.connect(_dsn(url)) as connection:
            for table in tables:
                with (
                    open(Path(scratch) / f"{table}.copy", "rb") as data,
                    connection.cursor().copy(f'COPY "{table}" FROM STDIN (FORMAT binary)') as copy,
                ):
                    while block := data.read(1 << 20):
                        copy.write(block)
            connection.commit()
        refresh_statistics(target, tables)
        with target.begin() as connection:
            foreign_keys.reinstate(connection, "floor")
        seconds = time.perf_counter() - started
    target.dispose()
    return {"seconds": seconds, "rows": sum(rows.values()), "tables": rows}


def _dsn(url: str) -> str:
    return (
        sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


CONTENDERS = {
    "toolkit": run_toolkit,
    "rows": run_toolkit_rows,
    "dask": run_dask,
    "to_sql": run_to_sql,
    "copy": run_copy,
    "floor": run_floor,
}


def contender_main(name: str, folder: Path, url: str, chunk_size: int) -> None:
    result = CONTENDERS[name](folder, url, chunk_size)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--chunk-size", type=int, default=20_000)
    parser.add_argument(
        "--rounds", type=int, default=1, help="interleaved rounds; the fastest of each is shown"
    )
    parser.add_argument(
        "--contenders", default=None, help="default: copy,toolkit,floor,rows,to_sql"
    )
    parser.add_argument(
        "--engine",
        choices=("local", "dask"),
        default="local",
        help="dask: the toolkit's load also on a LocalCluster, beside the local one",
    )
    parser.add_argument("--workers", type=int, default=2, help="dask worker processes")
    parser.add_argument("--partition-rows", type=int, default=100_000, help="dask plan")
    parser.add_argument(
        "--gaps", action="store_true", help="dask with dense_ids false: no renumbering pass"
    )
    parser.add_argument("--contender", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.contender:
        contender_main(args.contender, Path(args.folder), args.url, args.chunk_size)
        return
    folder = sources_for("bench", args.orders)
    print(
        f"demo at {args.orders:,} orders: {source_rows(folder):,} source rows (SQLite → PostgreSQL)"
    )
    print(
        f"{'contender':<10} {'seconds':>9} {'rows':>11} {'rows/s':>11} {'peak RSS':>10}  "
        f"{'vs copy':>7} {'vs floor':>8}"
    )
    default = "toolkit,dask" if args.engine == "dask" else "copy,toolkit,floor,rows,to_sql"
    names = (args.contenders or default).split(",")
    os.environ[DASK_WORKERS] = str(args.workers)
    os.environ[DASK_PARTITION_ROWS] = str(args.partition_rows)
    os.environ[DASK_GAPS] = "1" if args.gaps else "0"
    results: dict[str, dict] = {}
    with ExitStack() as kept:
        for round_ in range(args.rounds):  # interleaved rounds: the fastest of each is kept
            for name in names:
                if name == "floor" and FLOOR_FROM not in os.environ:
                    # the floor copies a toolkit target: load one (untimed) when none is kept
                    toolkit_url = kept.enter_context(scratch_database("runbook_bench"))
                    run_contender(__file__, "toolkit", folder, toolkit_url, args.chunk_size)
                    os.environ[FLOOR_FROM] = toolkit_url
                if name == "toolkit" and "floor" in names and FLOOR_FROM not in os.environ:
                    url = kept.enter_context(scratch_database("runbook_bench"))
                    os.environ[FLOOR_FROM] = url  # kept until the floor has copied it
                    result = run_contender(__file__, name, folder, url, args.chunk_size)
                else:
                    with scratch_database("runbook_bench") as url:
                        result = run_contender(__file__, name, folder, url, args.chunk_size)
                if name not in results or result["seconds"] < results[name]["seconds"]:
                    results[name] = result
                if round_ == args.rounds - 1:
                    _print_row(name, results)
    _print_ratios(results)


def _ratio(results: dict, name: str, base: str) -> str:
    if base not in results or name == base:
        return ""
    return f"{results[name]['seconds'] / results[base]['seconds']:.2f}x"


def _print_row(name: str, results: dict) -> None:
    result = results[name]
    print(
        f"{name:<10} {result['seconds']:>9.2f} {result['rows']:>11,} "
        f"{result['rows'] / result['seconds']:>11,.0f} {result['peak_rss_mb']:>8.0f} MB  "
        f"{_ratio(results, name, 'copy'):>7} {_ratio(results, name, 'floor'):>8}".rstrip(),
        flush=True,
    )


def _print_ratios(results: dict) -> None:
    """The ratios the goals are stated in, once every contender has run."""
    if "toolkit" not in results:
        return
    for base in ("floor", "copy", "rows", "to_sql"):
        if base in results:
            print(f"toolkit / {base}: {_ratio(results, 'toolkit', base)}")
    if "dask" in results:
        dask = results["dask"]
        print(f"dask / toolkit: {_ratio(results, 'dask', 'toolkit')} ({dask['workers']} workers)")
        print(
            f"dask: {dask['partitions']} tasks, {dask['task_seconds']} s of task time "
            f"(merge target as one task: {dask['merge_task_seconds']} s), largest partition "
            f"{dask['largest_partition']:,} rows, per-partition rows/s {dask['partition_rows_per_s']}"
        )
        print(
            f"dask wall seconds by phase: {dask['phases']}; rows renumbered {dask['renumbered']:,}"
        )


if __name__ == "__main__":
    main()
