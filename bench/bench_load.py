"""Load benchmark: the demo at N orders from SQLite into PostgreSQL, three ways, side by side.

    python bench/bench_load.py --orders 1000000          # ~3.5M source rows
    python bench/bench_load.py --orders 100000 --contenders toolkit

Contenders, each in its own child process (so peak RSS is its own) and its own fresh database:

* ``toolkit``  — ``runbook_lib.load.loader.load``: the mapping's transforms (the Arrow route:
  vectorized kernels), dedup, lookups, quarantine, checkpoints, binary COPY through psycopg 3;
* ``rows``     — the same load by the rows route (``engine="rows"``: transforms a column at a
  time in Python), the reference the Arrow route is measured against;
* ``to_sql``   — pandas ``read_sql`` + ``to_sql`` of every source table as it is (no mapping);
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
    parser.add_argument("--contenders", default="copy,toolkit,floor,rows,to_sql")
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
    names = args.contenders.split(",")
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


if __name__ == "__main__":
    main()
