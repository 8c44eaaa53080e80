"""Tests for the params model: the shipped files validate, and every bad file is named precisely.

Each bad-file test writes one variant of the shipped ``params/dev.yaml`` into the ``project``
copy and checks that ``ParamsError`` names the file, the dotted field, and what was expected.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from runbook_lib.config.params import (
    ConnectionParams,
    RunbookParams,
    format_validation_error,
    load_params,
)
from runbook_lib.errors import ParamsError, RunbookError

REPO = Path(__file__).resolve().parent.parent
SHIPPED = ("dev", "ci", "staging", "prod")
SECRET = "s3cr3tPW-do-not-print"


def write_dev(project, mutate) -> None:
    """Write ``params/dev.yaml`` as the shipped file changed by ``mutate(data)``."""
    path = project / "params" / "dev.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    mutate(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def error_of(env: str = "dev") -> ParamsError:
    with pytest.raises(ParamsError) as info:
        load_params(env)
    return info.value


# --------------------------------------------------------------------------------------------
# The shipped files


@pytest.mark.parametrize("env", SHIPPED)
def test_each_shipped_params_file_validates_and_names_its_environment(project, env):
    loaded = load_params(env)

    assert isinstance(loaded.model, RunbookParams)
    assert loaded.env == env
    assert loaded.path == (project / "params" / f"{env}.yaml").resolve()
    assert loaded.mapping_path == project / "params" / "mapping" / "demo.yaml"
    assert loaded.mapping_path.is_file()


def test_only_prod_requires_an_approval_and_takes_every_url_from_the_environment(project):
    loaded = {env: load_params(env) for env in SHIPPED}

    assert [env for env, params in loaded.items() if params.requires_approval] == ["prod"]
    prod = loaded["prod"]
    connections = [*prod.sources.values(), prod.target, prod.trial_target]
    assert all(c.url is None and c.url_env for c in connections)


def test_load_params_finds_the_project_upwards_from_a_subfolder(project, monkeypatch):
    monkeypatch.chdir(project / "notebooks")

    loaded = load_params("ci")

    assert loaded.project_root == project.resolve()
    assert loaded.work_path == project.resolve() / "work" / "ci"


# --------------------------------------------------------------------------------------------
# Unknown keys


def test_unknown_top_level_key_names_file_field_and_valid_keys(project):
    write_dev(project, lambda d: d.update(chunk_size=10))

    message = str(error_of())

    assert message.startswith("params/dev.yaml: invalid parameters")
    assert "  chunk_size: unknown field" in message
    valid = message.split("valid fields here: ", 1)[1].splitlines()[0]
    assert valid.split(", ") == list(RunbookParams.model_fields)


def test_unknown_key_inside_a_source_names_the_dotted_field_and_connection_keys(project):
    write_dev(project, lambda d: d["sources"]["legacy_b"].update(password="x"))

    message = str(error_of())

    assert "params/dev.yaml" in message
    assert "sources.legacy_b.password: unknown field" in message
    assert "valid fields here: url, url_env, description" in message


def test_misspelt_gate_names_gates_field_and_lists_both_gate_names(project):
    write_dev(project, lambda d: d["gates"].update(max_reject_rat=0.1))

    message = str(error_of())

    assert "params/dev.yaml" in message
    assert "gates.max_reject_rat: unknown field" in message
    assert "valid fields here: max_reject_rate, max_unexplained_differences" in message


def test_unknown_key_inside_the_optional_demo_section_lists_demo_fields(project):
    write_dev(project, lambda d: d["demo"].update(rows=10))

    message = str(error_of())

    assert "demo.rows: unknown field; valid fields here: orders, seed" in message


# --------------------------------------------------------------------------------------------
# Wrong values


def test_wrong_type_names_the_field_what_was_expected_and_what_was_found(project):
    write_dev(project, lambda d: d["load"].update(chunk_size="lots"))

    message = str(error_of())

    assert "params/dev.yaml" in message
    line = next(line for line in message.splitlines() if "load.chunk_size" in line)
    assert "valid integer" in line
    assert "(found 'lots')" in line


def test_out_of_range_gate_names_field_and_bound(project):
    write_dev(project, lambda d: d["gates"].update(max_reject_rate=1.5))

    message = str(error_of())

    line = next(line for line in message.splitlines() if "gates.max_reject_rate" in line)
    assert "less than or equal to 1" in line
    assert "(found 1.5)" in line


def test_missing_required_target_is_named(project):
    write_dev(project, lambda d: d.pop("target"))

    message = str(error_of())

    assert "params/dev.yaml" in message
    assert "  target: required field is missing" in message
    assert "trial_target" not in message


def test_every_problem_of_a_file_is_reported_at_once(project):
    def two_problems(data):
        data.pop("work_dir")
        data["trial"]["sample_percent"] = 0

    write_dev(project, two_problems)

    lines = str(error_of()).splitlines()[1:]

    assert [line.split(":")[0].strip() for line in lines] == ["work_dir", "trial.sample_percent"]


def test_empty_sources_are_refused(project):
    write_dev(project, lambda d: d.update(sources={}))

    message = str(error_of())

    assert "sources: Value error, at least one source connection is required" in message


# --------------------------------------------------------------------------------------------
# Connections in the params


def test_url_with_a_password_is_refused_and_points_to_url_env(project):
    write_dev(
        project, lambda d: d["target"].update(url=f"postgresql://bob:{SECRET}@db.example.com/x")
    )

    message = str(error_of())

    assert "params/dev.yaml" in message
    assert "target.url: Value error, a URL written in a params file must not carry" in message
    assert "url_env" in message


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(
            lambda d: d["target"].update(url=f"postgresql://bob:{SECRET}@db.example.com/x"),
            id="password-in-url",
        ),
        pytest.param(
            lambda d: d["target"].update(url=None, url_env=f"postgresql://bob:{SECRET}@db/x"),
            id="whole-url-in-url_env",
        ),
        pytest.param(
            lambda d: d.update(target=f"postgresql://bob:{SECRET}@db/x"), id="url-as-a-string"
        ),
    ],
)
def test_refused_url_does_not_print_its_password(project, mutate):
    write_dev(project, mutate)

    error = error_of()

    assert "target" in str(error)
    assert SECRET not in str(error)


@pytest.mark.parametrize(
    "connection",
    [
        pytest.param({"url": "sqlite:///x.db", "url_env": "X_URL"}, id="both"),
        pytest.param({"description": "nowhere"}, id="neither"),
    ],
)
def test_url_and_url_env_are_exclusive_and_one_is_required(project, connection):
    write_dev(project, lambda d: d.update(trial_target=connection))

    message = str(error_of())

    assert "params/dev.yaml" in message
    assert "  trial_target: Value error, give exactly one of 'url' or 'url_env'" in message


def test_url_env_must_name_a_variable(project):
    write_dev(project, lambda d: d.update(target={"url_env": "prod-target"}))

    message = str(error_of())

    line = next(line for line in message.splitlines() if "target.url_env" in line)
    assert "pattern" in line


def test_connection_model_accepts_a_password_free_url():
    connection = ConnectionParams(url="postgresql+psycopg://bob@db.example.com:5432/shop")

    assert connection.url_env is None
    assert connection.url.endswith("/shop")


# --------------------------------------------------------------------------------------------
# The file itself


def test_env_in_the_file_must_match_the_file_name(project):
    write_dev(project, lambda d: d.update(env="prod"))

    message = str(error_of())

    assert message == "params/dev.yaml: field 'env' is 'prod', expected 'dev' (the file's name)"


def test_a_file_that_is_not_yaml_is_named(project):
    (project / "params" / "dev.yaml").write_text("env: dev\nsources: [unclosed\n")

    message = str(error_of())

    assert message.startswith("params/dev.yaml: not valid YAML")


def test_a_yaml_list_instead_of_a_mapping_is_refused(project):
    (project / "params" / "dev.yaml").write_text("- env\n- dev\n")

    message = str(error_of())

    assert message == "params/dev.yaml: expected a mapping of parameters at the top level"


def test_missing_params_file_is_named(project):
    path = project / "params" / "dev.yaml"
    path.unlink()

    with pytest.raises(ParamsError) as info:
        load_params(path=path)

    assert str(info.value) == "params/dev.yaml: params file not found"
    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_unknown_environment_lists_the_known_ones(project):
    error = error_of("qa")

    assert error.message == "unknown environment 'qa': there is no params/qa.yaml"
    assert error.hint == (
        "environments here: ci, dev, prod, staging; for a new one, copy one of their files "
        "to params/qa.yaml and set its 'env: qa'"
    )


def write_env(project, name: str, mutate=lambda data: None) -> Path:
    """``params/<name>.yaml``: the shipped ci file for environment ``name``, changed by ``mutate``."""
    data = yaml.safe_load((project / "params" / "ci.yaml").read_text(encoding="utf-8"))
    data["env"] = name
    mutate(data)
    path = project / "params" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["hr", "uat-2", "client_acme", "q4"])
def test_any_safely_named_environment_is_the_params_file_of_that_name(project, name):
    path = write_env(project, name)

    loaded = load_params(name)

    assert loaded.env == name
    assert loaded.path == path.resolve()


@pytest.mark.parametrize("name", ["../ci", "ci/../dev", "Prod", "uat 2", "-x", "", "a" * 33, "ci."])
def test_an_environment_name_that_is_not_safe_as_a_folder_is_refused(project, name):
    error = error_of(name)

    assert error.exit_code == 2
    assert error.message == f"{name!r} is not an environment name"
    assert "lower-case letters, digits, '-' and '_'" in error.hint


def test_the_env_field_of_a_new_environment_must_be_its_file_name(project):
    path = write_env(project, "uat")
    path.write_text(path.read_text().replace("env: uat", "env: ci"))

    message = str(error_of("uat"))

    assert message == "params/uat.yaml: field 'env' is 'ci', expected 'uat' (the file's name)"


def test_an_unsafe_env_field_is_named_with_the_pattern(project):
    write_env(project, "uat", lambda data: data.update(env="UAT/1"))

    message = str(error_of("uat"))

    assert "params/uat.yaml: invalid parameters:\n  env: String should match pattern" in message


def test_params_errors_are_user_errors_with_exit_code_two(project):
    error = error_of("qa")

    assert isinstance(error, RunbookError)
    assert error.exit_code == 2


def test_no_project_folder_is_a_params_error_with_a_hint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    error = error_of("dev")

    assert "no project found" in error.message
    assert error.hint == "run the command from the project folder"


# --------------------------------------------------------------------------------------------
# format_validation_error on its own


def test_format_validation_error_gives_one_line_per_problem():
    data = yaml.safe_load((REPO / "params" / "ci.yaml").read_text(encoding="utf-8"))
    data["gates"] = {"max_reject_rate": "high", "max_unexplained": 1}
    with pytest.raises(ValidationError) as info:
        RunbookParams.model_validate(data)

    lines = format_validation_error(info.value).splitlines()

    assert len(lines) == 2
    assert lines[0].startswith("  gates.max_reject_rate: ")
    assert "(found 'high')" in lines[0]
    assert lines[1] == (
        "  gates.max_unexplained: unknown field; "
        "valid fields here: max_reject_rate, max_unexplained_differences, "
        "max_new_check_violations"
    )


def test_engine_defaults_to_local_and_local_may_be_written_out(project):
    assert load_params("dev").engine is None
    write_dev(project, lambda d: d.update(engine="local"))
    assert load_params("dev").engine is None


@pytest.mark.parametrize(
    ("dask", "expected"),
    [
        ({"scheduler": "tcp://10.0.0.5:8786"}, ("tcp://10.0.0.5:8786", None)),
        ({"local_workers": 2}, (None, 2)),
    ],
)
def test_engine_dask_takes_a_scheduler_or_a_number_of_local_workers(project, dask, expected):
    write_dev(project, lambda d: d.update(engine={"dask": dask}))
    engine = load_params("dev").engine
    assert (engine.dask.scheduler, engine.dask.local_workers) == expected


# Made up per session, so no password-like literal stands in the repository.
FAKE_SECRET = f"fake-{uuid.uuid4().hex[:12]}"


@pytest.mark.parametrize(
    ("engine", "field"),
    [
        ({"dask": {}}, "engine.dask"),
        ({"dask": {"scheduler": "tcp://h:8786", "local_workers": 2}}, "engine.dask"),
        ({"dask": {"scheduler": f"tcp://user:{FAKE_SECRET}@h:8786"}}, "engine.dask.scheduler"),
        ({"spark": {}}, "engine.spark"),
        ("distributed", "engine"),
    ],
)
def test_a_bad_engine_is_named_by_its_field(project, engine, field):
    write_dev(project, lambda d: d.update(engine=engine))
    assert f"  {field}" in str(error_of())
    assert FAKE_SECRET not in str(error_of())
