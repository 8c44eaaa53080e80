"""The project's own files: dependencies in sync, notebooks thin and clean, layout as designed."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
# conda-forge names that differ from PyPI's
CONDA_NAMES = {"psycopg[binary]": "psycopg"}


def _requirement(text: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.\-\[\]]+)\s*(.*)$", text)
    name, spec = match.group(1), match.group(2).replace(" ", "")
    name = CONDA_NAMES.get(name, name)
    return re.sub(r"[-_.]+", "-", name.lower()), spec


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    return dict(_requirement(r) for r in requirements)


def _conda_requirements() -> dict[str, str]:
    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    found = {}
    for entry in environment["dependencies"]:
        if isinstance(entry, dict):
            found.update(_requirement(r) for r in entry["pip"] if not r.startswith("-"))
        elif not entry.startswith(("python=", "pip")):
            name, spec = _requirement(entry)
            # conda writes an exact pin as name=1.2 (pip: ==1.2.*)
            found[name] = (
                spec.replace("=", "==", 1) + ".*" if re.fullmatch(r"=[\d.]+", spec) else spec
            )
    return found


def test_environment_yml_lists_exactly_the_pyproject_dependencies():
    assert _conda_requirements() == _pyproject_requirements()


def test_layout_matches_the_design_card():
    for name in (
        "notebooks",
        "runbook_lib",
        "params",
        "outputs",
        "tests",
        "environment.yml",
        "README.md",
    ):
        assert (REPO / name).exists(), name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_committed_clean_and_thin(path):
    notebook = json.loads(path.read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert sum("parameters" in c["metadata"].get("tags", []) for c in code) == 1
    for cell in code:
        source = "".join(cell["source"])
        assert not cell.get("outputs"), "commit notebooks with outputs cleared"
        assert cell.get("execution_count") is None
        assert not re.search(r"^\s*(def|class|for|while) ", source, re.M), source
        assert len([line for line in source.splitlines() if line.strip()]) <= 12


def test_notebook_parameters_are_names_never_urls():
    for path in NOTEBOOKS:
        notebook = json.loads(path.read_text())
        cell = next(c for c in notebook["cells"] if "parameters" in c["metadata"].get("tags", []))
        assert "://" not in "".join(cell["source"])


def test_every_stage_has_a_notebook():
    from runbook_lib.stage_table import STAGES

    assert sorted(stage.notebook for stage in STAGES.values()) == [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_a_notebook_opens_its_own_stage_and_glues_exactly_what_the_stage_table_declares(path):
    from runbook_lib.stage_table import stage_of_notebook

    stage = stage_of_notebook(path.name)
    source = "".join(
        "".join(c["source"])
        for c in json.loads(path.read_text())["cells"]
        if c["cell_type"] == "code"
    )
    assert re.findall(r'open_stage\("(\w+)"', source) == [stage.name]
    assert sorted(re.findall(r'ctx\.glue\("(\w+)"', source)) == sorted(stage.glues)
    assert "scrapbook" not in source and "import glue" not in source


def test_make_clean_removes_caches_and_build_junk_but_never_a_target_or_evidence(tmp_path):
    import shutil
    import subprocess

    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    kept = [
        "work/dev/target.db",
        "work/ci/legacy_a.db",
        "work/hr/target.db",
        "outputs/dev/ledger.jsonl",
        "outputs/ci/20260101T000000Z-abcdef/manifest.json",
        "outputs/prod/20260101T000000Z-abcdef/03_full_load.ipynb",
        ".venv/lib/site.py",
        ".venv/lib/__pycache__/site.cpython-311.pyc",
        "params/dev.yaml",
        "notebooks/.ipynb_checkpoints/00_assessment-checkpoint.ipynb",
    ]
    junk = [
        "runbook_lib/__pycache__/cli.cpython-311.pyc",
        "tests/__pycache__/conftest.cpython-311.pyc",
        ".pytest_cache/v/cache/lastfailed",
        ".ruff_cache/content",
        ".hypothesis/examples/x",
        "runbook_migration.egg-info/PKG-INFO",
        "build/lib/x.py",
    ]
    for name in kept + junk:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    subprocess.run(["make", "clean"], cwd=tmp_path, check=True, capture_output=True)
    assert [name for name in kept if not (tmp_path / name).is_file()] == []
    assert [name for name in junk if (tmp_path / name).exists()] == []
    assert not (tmp_path / "runbook_lib" / "__pycache__").exists()
