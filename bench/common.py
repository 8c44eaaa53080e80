"""What the benchmarks share: demo sources built once per size, scratch databases, child processes.

The sources are cached under ``work/<bench>/<orders>/`` with the fingerprint of the generator
that built them, so a change to the demo generator rebuilds them instead of benchmarking a
schema the mapping no longer matches.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ADMIN_URL = os.environ.get(
    "RUNBOOK_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SYSTEMS = ("legacy_a", "legacy_b", "crm")
SEED = 20261121


def generator_fingerprint() -> str:
    """A hash of the demo generator's code: sources it built before a change are rebuilt."""
    from runbook_demo import generate, legacy_schema

    digest = hashlib.sha256()
    for module in (generate, legacy_schema):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:16]


def sources_for(bench: str, orders: int) -> Path:
    """Build (once per generator version) the demo sources at this size; returns their folder."""
    from runbook_demo.generate import build_demo_sources

    folder = ROOT / "work" / bench / str(orders)
    marker = folder / "built.json"
    fingerprint = generator_fingerprint()
    if marker.is_file() and json.loads(marker.read_text()).get("generator") == fingerprint:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    for system in SYSTEMS:
        (folder / f"{system}.db").unlink(missing_ok=True)
    engines = source_engines(folder)
    started = time.perf_counter()
    summary = build_demo_sources(engines, orders=orders, seed=SEED)
    for engine in engines.values():
        engine.dispose()
    marker.write_text(
        json.dumps(
            {
                "generator": fingerprint,
                "seconds": time.perf_counter() - started,
                "rows": summary.row_counts,
            }
        )
    )
    return folder


def source_rows(folder: Path) -> int:
    counts = json.loads((folder / "built.json").read_text())["rows"]
    return sum(sum(tables.values()) for tables in counts.values())


def source_engines(folder: Path) -> dict[str, sa.Engine]:
    from runbook_lib.config.connections import make_engine

    return {s: make_engine(sa.engine.make_url(f"sqlite:///{folder / s}.db")) for s in SYSTEMS}


def demo_spec():
    from runbook_lib.mapping.model import load_spec

    return load_spec(ROOT / "params" / "mapping" / "demo.yaml")


@contextmanager
def scratch_database(prefix: str, *, keep: bool = False) -> Iterator[str]:
    """A new PostgreSQL database (its URL), dropped afterwards unless ``keep``."""
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        if keep:
            print(f"kept: {url}")
        else:
            with admin.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def run_contender(script: str, name: str, folder: Path, url: str, chunk_size: int) -> dict:
    """Run one contender in a child process of ``script`` (so its peak RSS is its own)."""
    completed = subprocess.run(
        [
            sys.executable,
            script,
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
    )
    if completed.returncode != 0:
        raise SystemExit(f"{name} failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def load_demo(folder: Path, url: str, chunk_size: int, engine: str = "arrow"):
    """The toolkit's full load of the demo sources into a new target schema at ``url``.

    ``engine``: the loader's route for the chunks (``arrow``: the kernels; ``rows``: by column).

    Returns (the load report, seconds spent loading, schema creation excluded).
    """
    from runbook_demo.target_schema import create_target_schema
    from runbook_lib.load.loader import load

    target = sa.create_engine(url)
    create_target_schema(target)
    sources = source_engines(folder)
    started = time.perf_counter()
    report = load(
        demo_spec(),
        sources,
        target,
        run_id="bench",
        mode="full",
        chunk_size=chunk_size,
        max_reject_rate=1.0,
        target_label="bench",
        engine=engine,
    )
    seconds = time.perf_counter() - started
    for engine in (target, *sources.values()):
        engine.dispose()
    return report, seconds
