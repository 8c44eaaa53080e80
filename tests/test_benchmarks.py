"""``make bench`` keeps working: both benchmarks run end to end at a tiny size on PostgreSQL.

The figures themselves are not asserted (speed is measured by running the benchmarks, not in
tests); what is: every contender finishes, the load benchmark prints a row per contender, and
the validation benchmark's toolkit finds all ten planted differences with their kinds.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
from conftest import POSTGRES_ADMIN_URL, REPO

pytestmark = pytest.mark.postgres


@pytest.fixture
def bench_project(tmp_path, postgres_url):  # postgres_url: the server must be there (CI: or fail)
    root = tmp_path / "project"
    for folder in ("bench", "params"):
        shutil.copytree(REPO / folder, root / folder)
    return root


def _run(project, script: str, *args: str) -> str:
    completed = subprocess.run(
        [sys.executable, str(project / "bench" / script), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "RUNBOOK_BENCH_POSTGRES_URL": POSTGRES_ADMIN_URL},
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


def test_the_load_benchmark_runs_every_contender(bench_project):
    out = _run(bench_project, "bench_load.py", "--orders", "400", "--chunk-size", "500")
    for contender in ("copy", "toolkit", "floor", "rows", "to_sql"):
        assert re.search(rf"^{contender}\s+\d+\.\d+\s+[\d,]+\s+[\d,]+\s+\d+ MB", out, re.M), out
    assert re.search(r"^toolkit / floor: [\d.]+x$", out, re.M), out
    assert (bench_project / "work" / "bench" / "400" / "built.json").is_file()


def test_the_validation_benchmark_finds_the_ten_planted_differences(bench_project):
    out = _run(
        bench_project, "bench_validation.py", "--orders", "1000", "--contenders", "md5,toolkit"
    )
    assert re.search(r"^md5\s.*10/10 \(10 exact\)\s+0$", out, re.M), out
    assert re.search(r"^toolkit\s.*10/10 \(10 exact\)\s+0\s+[\d.]+x$", out, re.M), out


def test_the_transform_benchmark_compares_the_three_paths_and_the_io(bench_project):
    out = _run(
        bench_project, "bench_transforms.py", "--orders", "400", "--chunk-size", "300", "--io"
    )
    assert re.search(r"^all sources\s+[\d,]+(\s+[\d,]+){4}\s+[\d.]+x\s+[\d.]+x", out, re.M), out
    assert re.search(r"^order_items\s+[\d,]+(\s+[\d,]+){5}\s+[\d.]+x\s+[\d.]+x$", out, re.M), out


@pytest.mark.cluster
def test_the_load_benchmark_runs_the_dask_engine_beside_the_local_load(bench_project):
    out = _run(
        bench_project,
        *("bench_load.py", "--orders", "400", "--chunk-size", "500"),
        *("--engine", "dask", "--workers", "2", "--partition-rows", "500"),
    )
    for contender in ("toolkit", "dask"):
        assert re.search(rf"^{contender}\s+\d+\.\d+\s+[\d,]+\s+[\d,]+\s+\d+ MB", out, re.M), out
    assert re.search(r"^dask / toolkit: [\d.]+x \(2 workers\)$", out, re.M), out
    assert re.search(r"^dask: \d+ tasks, .* per-partition rows/s \{'min'", out, re.M), out
