"""Bad input is refused before anything is written, by file, field (YAML path) and what was expected.

Each test writes one bad variant of a shipped file (``params/ci.yaml``, ``params/mapping/demo.yaml``)
into the ``project`` copy, or points a connection at something that is not there, and checks the
error: a ``RunbookError`` with exit code 2 naming the file and the field, never a traceback, and
(through the CLI) nothing written to ``outputs/``.
"""

from __future__ import annotations

import pytest

from runbook_lib.config.params import load_params
from runbook_lib.errors import MappingSpecError, ParamsError
from runbook_lib.mapping.model import load_spec


def ci_params_text(project) -> str:
    return (project / "params" / "ci.yaml").read_text(encoding="utf-8")


def write_ci_params(project, text: str) -> None:
    (project / "params" / "ci.yaml").write_text(text, encoding="utf-8")


def spec_path(project):
    return project / "params" / "mapping" / "demo.yaml"


# --------------------------------------------------------------------------------------------
# 2. Duplicate keys


def test_a_duplicate_key_in_params_is_an_error_naming_both_lines(project):
    text = ci_params_text(project)
    assert "  chunk_size: 500\n" in text
    write_ci_params(
        project, text.replace("  chunk_size: 500\n", "  chunk_size: 500\n  chunk_size: 900\n")
    )
    lines = text.splitlines()
    first = lines.index("  chunk_size: 500") + 1

    with pytest.raises(ParamsError) as info:
        load_params("ci", project_root=project)

    message = str(info.value)
    assert "params/ci.yaml" in message
    assert "load.chunk_size" in message
    assert f"line {first}" in message and f"line {first + 1}" in message
    assert info.value.exit_code == 2


def test_a_duplicate_currency_in_the_spec_is_an_error_naming_both_lines(project):
    path = spec_path(project)
    text = path.read_text(encoding="utf-8")
    original = "currency: {value: CNY}"
    assert text.count(original) >= 1
    number = text[: text.index(original)].count("\n") + 1
    indent = text.splitlines()[number - 1][: -len(text.splitlines()[number - 1].lstrip())]
    text = text.replace(original, f"{original}\n{indent}currency: {{value: USD}}", 1)
    path.write_text(text, encoding="utf-8")

    with pytest.raises(MappingSpecError) as info:
        load_spec(path)

    (problem_path, message), *_ = info.value.problems
    assert problem_path.endswith(".columns.currency")
    assert f"line {number}" in message and f"line {number + 1}" in message
    assert "duplicate key" in message
    assert info.value.exit_code == 2


def test_a_key_overriding_a_yaml_merge_is_not_a_duplicate(project):
    # the shipped spec does {<<: *reporting_cny, currency: CNY}: an explicit key beside a merge
    assert load_spec(spec_path(project)).spec.name == "demo-ecommerce-merge"


# --------------------------------------------------------------------------------------------
# 3. Alias bombs and size


BOMB = "\n".join(
    ["version: 1", "name: bomb", "x-a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"x-{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
    + ["systems: *i", "targets: {}"]
)


def test_a_yaml_alias_bomb_in_the_spec_is_refused_at_once(project):
    import time

    path = spec_path(project)
    path.write_text(BOMB + "\n", encoding="utf-8")
    started = time.perf_counter()
    with pytest.raises(MappingSpecError) as info:
        load_spec(path)
    assert time.perf_counter() - started < 2
    assert "alias" in str(info.value)


def test_a_yaml_alias_bomb_in_params_is_refused_at_once(project):
    import time

    write_ci_params(
        project, ci_params_text(project) + BOMB.replace("version: 1\nname: bomb\n", "") + "\n"
    )
    started = time.perf_counter()
    with pytest.raises(ParamsError) as info:
        load_params("ci", project_root=project)
    assert time.perf_counter() - started < 2
    assert "params/ci.yaml" in str(info.value) and "alias" in str(info.value)


def test_a_spec_larger_than_the_limit_is_refused_by_its_size(project):
    path = spec_path(project)
    path.write_text(path.read_text(encoding="utf-8") + "#" * (9 * 1024 * 1024) + "\n")
    with pytest.raises(MappingSpecError) as info:
        load_spec(path)
    assert "MiB" in str(info.value)


# --------------------------------------------------------------------------------------------
# 6. A password anywhere in a URL


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://app@db.example:5432/legacy?password=S3cretPW-1",
        "mysql+pymysql://app@db.example/legacy?charset=utf8mb4&passwd=S3cretPW-1",
        "postgresql+psycopg://app@db.example/legacy?sslmode=require&PGPASSWORD=S3cretPW-1",
        "sqlite:///work/ci/legacy_a.db?token=S3cretPW-1",
        "postgresql+psycopg://db.example/legacy?options=-c%20x&dsn=postgresql://u:S3cretPW-1@h/d",
    ],
)
def test_a_password_in_the_query_string_of_a_url_is_refused(project, url):
    text = ci_params_text(project)
    old = 'legacy_a: {url: "sqlite:///work/ci/legacy_a.db"}'
    assert old in text
    write_ci_params(project, text.replace(old, f'legacy_a: {{url: "{url}"}}'))

    with pytest.raises(ParamsError) as info:
        load_params("ci", project_root=project)

    message = str(info.value)
    assert "params/ci.yaml" in message and "sources.legacy_a.url" in message
    assert "url_env" in message
    assert "S3cretPW-1" not in message


def test_a_query_string_without_a_secret_is_accepted(project):
    text = ci_params_text(project)
    old = 'legacy_a: {url: "sqlite:///work/ci/legacy_a.db"}'
    write_ci_params(
        project, text.replace(old, 'legacy_a: {url: "sqlite:///work/ci/legacy_a.db?mode=ro"}')
    )
    assert load_params("ci", project_root=project).sources["legacy_a"].url.endswith("?mode=ro")
