"""Transform benchmark: the demo spec's transforms three ways over the same chunks, side by side.

    python bench/bench_transforms.py                                  # 100,000 and 1,000,000 orders
    python bench/bench_transforms.py --orders 100000 --chunk-size 5000

Per demo source, over the same chunks streamed from its SQLite file (reading is not timed):

* ``per value`` — ``CompiledSource.transform_chunk``: a row at a time (validation's reference);
* ``column``    — ``transform_batch``: today's loader path, a column at a time with a cache for
  repeating values;
* ``kernels``   — ``transform_arrow`` over the chunk as an Arrow record batch: the
  ``pyarrow.compute`` kernels, the per-value function only for rows a kernel leaves undecided;
* ``to Arrow``  — ``record_batch_from_rows``, turning the chunk's Python rows into that batch:
  the price of feeding kernels from today's row reader, which an Arrow-native read avoids.

With ``--io`` (needs the local PostgreSQL), the two ends of the Arrow path for the largest
sources: reading (today's SQLAlchemy rows, those rows turned into batches, ``db.arrow_io``'s
exact ADBC batches) and writing the transformed chunks into a PostgreSQL table of the same
columns (today's text COPY of Python rows through ``db.writes``, ``arrow_io.postgresql_append``'s
binary COPY of the Arrow batches).

Before a chunk's times count, the three outcomes are checked to agree (kept rows, rejects; the
first chunk of each source value for value): a race between different results means nothing.
Contenders run in turn on each chunk, the order rotating, after one untimed warm-up chunk (zone
tables, regex caches); each chunk is timed ``--repeat`` times (default 3 up to 100,000 orders,
1 above) and its fastest time kept. The machine is shared: read the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

from common import demo_spec, scratch_database, source_engines, source_rows, sources_for

from runbook_lib.mapping.arrow_columns import RowCounts
from runbook_lib.mapping.compiled import ordered_sources
from runbook_lib.transforms.kernels import record_batch_from_rows

CONTENDERS = ("per value", "column", "kernels")


def _per_value(pipeline, rows, batch, counts):
    good, rejects = pipeline.transform_chunk(rows)
    return len(good), [(r.source_key, r.rule, r.message) for r in rejects]


def _column(pipeline, rows, batch, counts):
    kept, rejects = pipeline.transform_batch(rows)
    return len(kept), [(r.source_key, r.rule, r.message) for r in rejects]


def _kernels(pipeline, rows, batch, counts):
    kept, rejects = pipeline.transform_arrow(batch, counts)
    return len(kept), [(r.source_key, r.rule, r.message) for r in rejects]


RUN = {"per value": _per_value, "column": _column, "kernels": _kernels}


def _same_values(pipeline, rows, batch) -> None:
    expected, _rejects = pipeline.transform_batch(rows)
    found = pipeline.transform_arrow(batch)[0].to_column_batch()
    if repr(found.pairs()) != repr(expected.pairs()):
        raise SystemExit(f"{pipeline.label}: the kernels' values differ from the column path's")


def bench_source(pipeline, engine, chunk_size: int, repeat: int) -> dict:
    seconds = defaultdict(float)
    counts = RowCounts()
    rows_done = 0
    with engine.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=chunk_size).execute(
            pipeline.select()
        )
        for number, partition in enumerate(result.partitions(chunk_size)):
            rows = [tuple(row) for row in partition]
            conversion = float("inf")
            for _ in range(repeat):
                started = time.perf_counter()
                batch = record_batch_from_rows(rows, pipeline.select_columns)
                conversion = min(conversion, time.perf_counter() - started)
            if number == 0:  # untimed: warm caches, and the values compared one by one
                for name in CONTENDERS:
                    RUN[name](pipeline, rows, batch, None)
                _same_values(pipeline, rows, batch)
            outcomes = {}
            order = CONTENDERS[number % 3 :] + CONTENDERS[: number % 3]
            fastest = dict.fromkeys(CONTENDERS, float("inf"))
            for attempt in range(repeat):
                for name in order:
                    started = time.perf_counter()
                    outcomes[name] = RUN[name](
                        pipeline, rows, batch, counts if attempt == 0 else None
                    )
                    fastest[name] = min(fastest[name], time.perf_counter() - started)
            for name in CONTENDERS:
                seconds[name] += fastest[name]
            if len({repr(o) for o in outcomes.values()}) != 1:
                raise SystemExit(f"{pipeline.label}: the three paths disagree on a chunk")
            seconds["to Arrow"] += conversion
            rows_done += len(rows)
    decided = sum(counts.by_kernel.values())
    total = decided + sum(counts.per_value.values())
    return {
        "rows": rows_done,
        "seconds": dict(seconds),
        "by_kernel": decided / total if total else 1,
    }


def bench_size(orders: int, chunk_size: int, repeat: int | None) -> None:
    folder = sources_for("bench", orders)
    engines = source_engines(folder)
    repeat = repeat or (3 if orders <= 100_000 else 1)
    print(
        f"\ndemo at {orders:,} orders: {source_rows(folder):,} source rows, "
        f"chunks of {chunk_size:,}, fastest of {repeat}"
    )
    header = f"{'source':<38} {'rows':>9} " + " ".join(
        f"{n:>10}" for n in (*CONTENDERS, "to Arrow")
    )
    print(f"{header}   rows/s; kernels vs column, vs per value; rows decided by a kernel")
    totals = defaultdict(float)
    all_rows = 0
    for pipeline in ordered_sources(demo_spec()):
        result = bench_source(pipeline, engines[pipeline.system], chunk_size, repeat)
        rows, took = result["rows"], result["seconds"]
        all_rows += rows
        for name, value in took.items():
            totals[name] += value
        _print_row(f"{pipeline.system}.{pipeline.table}", rows, took, f"{result['by_kernel']:.2%}")
    _print_row("all sources", all_rows, totals, "")
    for engine in engines.values():
        engine.dispose()


def _print_row(label: str, rows: int, took: dict, decided: str) -> None:
    rates = " ".join(f"{rows / took[n]:>10,.0f}" for n in (*CONTENDERS, "to Arrow"))
    print(
        f"{label:<38} {rows:>9,} {rates}   "
        f"{took['column'] / took['kernels']:>5.1f}x {took['per value'] / took['kernels']:>5.1f}x"
        f"  {decided}",
        flush=True,
    )


IO_SOURCES = ("order_items", "orders", "logistics")
_PG_TYPES = {"int64": "bigint", "string": "text", "bool": "boolean", "double": "double precision"}


def _pg_type(arrow_type) -> str:
    text = str(arrow_type)
    if text.startswith("decimal128"):
        return f"numeric(38, {arrow_type.scale})"
    if text.startswith("timestamp"):
        return "timestamptz"
    return _PG_TYPES.get(text, "text")


def bench_io(orders: int, chunk_size: int) -> None:
    import adbc_driver_postgresql.dbapi as adbc_postgresql
    import sqlalchemy as sa

    from runbook_lib.db import arrow_io
    from runbook_lib.db.writes import write_rows

    folder = sources_for("bench", orders)
    engines = source_engines(folder)
    print(f"\nreading and writing at {orders:,} orders, chunks of {chunk_size:,}")
    print(
        f"{'source':<24} {'rows':>9} {'read rows':>10} {'+ to Arrow':>10} {'ADBC':>10}   "
        f"{'text COPY':>10} {'binary COPY':>11}   rows/s; ADBC vs rows + to Arrow, binary vs text"
    )
    for pipeline in ordered_sources(demo_spec()):
        if pipeline.table not in IO_SOURCES:
            continue
        engine = engines[pipeline.system]
        query = pipeline.select()
        started = time.perf_counter()
        with engine.connect() as connection:
            result = connection.execution_options(
                stream_results=True, yield_per=chunk_size
            ).execute(query)
            chunks = [[tuple(r) for r in part] for part in result.partitions(chunk_size)]
        read = time.perf_counter() - started
        started = time.perf_counter()
        for rows in chunks:
            record_batch_from_rows(rows, pipeline.select_columns)
        converted = time.perf_counter() - started
        started = time.perf_counter()
        batches = list(
            arrow_io.sqlite_batches(engine.url.database, pipeline.table, query, chunk_size)
        )
        adbc = time.perf_counter() - started
        outputs = [pipeline.transform_arrow(batch)[0].columns for batch in batches]
        rows_out = sum(o.num_rows for o in outputs)
        with scratch_database("runbook_bench_io") as url:
            target = sa.create_engine(url)
            columns = ", ".join(f'"{f.name}" {_pg_type(f.type)}' for f in outputs[0].schema)
            with target.begin() as connection:
                connection.execute(sa.text(f"CREATE TABLE text_copy ({columns})"))
                connection.execute(sa.text(f"CREATE TABLE binary_copy ({columns})"))
            table = sa.Table("text_copy", sa.MetaData(), autoload_with=target)
            python_rows = [o.to_pylist() for o in outputs]  # not timed: today's rows are Python
            names = outputs[0].schema.names
            started = time.perf_counter()
            with target.begin() as connection:
                for rows in python_rows:
                    write_rows(connection, table, names, [tuple(r[n] for n in names) for r in rows])
            text_copy = time.perf_counter() - started
            dsn = (
                sa.engine.make_url(url)
                .set(drivername="postgresql")
                .render_as_string(hide_password=False)
            )
            started = time.perf_counter()
            with adbc_postgresql.connect(dsn) as connection:
                for batch in outputs:
                    arrow_io.postgresql_append(connection, "binary_copy", batch)
                connection.commit()
            binary_copy = time.perf_counter() - started
            target.dispose()
        rows = sum(len(c) for c in chunks)
        print(
            f"{pipeline.table:<24} {rows:>9,} {rows / read:>10,.0f} {rows / (read + converted):>10,.0f} "
            f"{rows / adbc:>10,.0f}   {rows_out / text_copy:>10,.0f} {rows_out / binary_copy:>11,.0f}   "
            f"{(read + converted) / adbc:>5.1f}x {text_copy / binary_copy:>5.1f}x",
            flush=True,
        )
    for engine in engines.values():
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", default="100000,1000000", help="sizes, comma-separated")
    parser.add_argument("--chunk-size", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, help="times each chunk is timed (fastest kept)")
    parser.add_argument("--io", action="store_true", help="also reading and writing (PostgreSQL)")
    args = parser.parse_args()
    for orders in (int(n) for n in args.orders.split(",")):
        bench_size(orders, args.chunk_size, args.repeat)
        if args.io:
            bench_io(orders, args.chunk_size)


if __name__ == "__main__":
    main()
