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
import os
import resource
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get(
    "RUNBOOK_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SYSTEMS = ("legacy_a", "legacy_b", "crm")


def sources_for(orders: int) -> Path:
    """Build (once) the demo sources at this size; returns their folder."""
    from runbook_lib.connections import make_engine
    from runbook_lib.demo_data import build_demo_sources

    folder = ROOT / "work" / "bench" / str(orders)
    marker = folder / "built.json"
    if marker.is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    engines = {s: make_engine(sa.engine.make_url(f"sqlite:///{folder / s}.db")) for s in SYSTEMS}
    started = time.perf_counter()
    summary = build_demo_sources(engines, orders=orders, seed=20261121)
    marker.write_text(
        json.dumps({"seconds": time.perf_counter() - started, "rows": summary.row_counts})
    )
    return folder


def source_rows(folder: Path) -> int:
    counts = json.loads((folder / "built.json").read_text())["rows"]
    return sum(sum(tables.values()) for tables in counts.values())


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_toolkit(folder: Path, url: str, chunk_size: int) -> dict:
    from runbook_lib.connections import make_engine
    from runbook_lib.loading import load
    from runbook_lib.mapping import load_spec
    from runbook_lib.target_schema import create_target_schema

    target = sa.create_engine(url)
    create_target_schema(target)
    spec = load_spec(ROOT / "params" / "mapping" / "demo.yaml")
    sources = {s: make_engine(sa.engine.make_url(f"sqlite:///{folder / s}.db")) for s in SYSTEMS}
    started = time.perf_counter()
    report = load(
        spec,
        sources,
        target,
        run_id="bench",
        mode="full",
        chunk_size=chunk_size,
        max_reject_rate=1.0,
        target_label="bench",
    )
    seconds = time.perf_counter() - started
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
    result["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(result))


def fresh_database() -> tuple[str, sa.Engine, str]:
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"runbook_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    return name, admin, url


def measure(name: str, folder: Path, chunk_size: int) -> dict:
    database, admin, url = fresh_database()
    try:
        completed = subprocess.run(
            [
                sys.executable,
                __file__,
                "--contender",
                name,
                "--folder",
                str(folder),
                "--url",
                url,
                "--chunk-size",
                str(chunk_size),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(completed.stdout.strip().splitlines()[-1])
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


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
    folder = sources_for(args.orders)
    print(
        f"demo at {args.orders:,} orders: {source_rows(folder):,} source rows (SQLite → PostgreSQL)"
    )
    print(f"{'contender':<10} {'seconds':>9} {'rows/s':>11} {'peak RSS':>10}  vs copy")
    results = {}
    for name in args.contenders.split(","):
        results[name] = result = measure(name, folder, args.chunk_size)
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
