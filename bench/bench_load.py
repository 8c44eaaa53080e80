"""Load benchmark: the demo at N orders from SQLite into PostgreSQL, three ways, side by side.

    python bench/bench_load.py --orders 1000000          # ~3.5M source rows
    python bench/bench_load.py --orders 100000 --contenders toolkit

Contenders, each in its own child process (so peak RSS is its own) and its own fresh database:

* ``toolkit``  — ``runbook_lib.loading.load``: the mapping's transforms, dedup, lookups, quarantine,
  checkpoints, COPY through psycopg 3;
* ``to_sql``   — pandas ``read_sql`` + ``to_sql`` of every source table as it is (no mapping);
* ``copy``     — a plain psycopg 3 COPY of every source table as it is (the floor).

The demo sources are built once per size under ``work/bench/<orders>/`` and reused.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from pathlib import Path

import sqlalchemy as sa
from common import (
    SYSTEMS,
    load_demo,
    peak_rss_mb,
    run_contender,
    scratch_database,
    source_rows,
    sources_for,
)


def run_toolkit(folder: Path, url: str, chunk_size: int) -> dict:
    report, seconds = load_demo(folder, url, chunk_size)
    return {"seconds": seconds, "rows": report.source_rows, "loaded": report.to_dict()["loaded"]}


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

    dsn = sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
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


CONTENDERS = {"toolkit": run_toolkit, "to_sql": run_to_sql, "copy": run_copy}


def contender_main(name: str, folder: Path, url: str, chunk_size: int) -> None:
    result = CONTENDERS[name](folder, url, chunk_size)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--chunk-size", type=int, default=20_000)
    parser.add_argument("--contenders", default="copy,toolkit,to_sql")
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
    print(f"{'contender':<10} {'seconds':>9} {'rows/s':>11} {'peak RSS':>10}  vs copy")
    results = {}
    for name in args.contenders.split(","):
        with scratch_database("runbook_bench") as url:
            results[name] = result = run_contender(__file__, name, folder, url, args.chunk_size)
        ratio = (
            f"{result['seconds'] / results['copy']['seconds']:.1f}x" if "copy" in results else ""
        )
        print(
            f"{name:<10} {result['seconds']:>9.1f} {result['rows'] / result['seconds']:>11,.0f} "
            f"{result['peak_rss_mb']:>8.0f} MB  {ratio}",
            flush=True,
        )


if __name__ == "__main__":
    main()
