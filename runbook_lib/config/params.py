"""The per-environment parameter model: ``params/<env>.yaml`` validated strictly before anything runs.

Every error names the file, the field (as a dotted path) and what was expected. Connections carry
either a URL without a password or the *name* of an environment variable holding the URL, so a
params file can be committed and printed without leaking a secret.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url

from runbook_lib.errors import ParamsError, YamlInputError
from runbook_lib.privacy.scrub import redact_text
from runbook_lib.strict_yaml import read_yaml

# An environment names a params file, an evidence folder (outputs/<env>/) and, by convention, a
# work folder: lower case (one spelling on case-insensitive file systems), no dots or slashes.
ENV_NAME = r"^[a-z][a-z0-9_-]{0,31}$"
ENV_NAME_RULE = (
    "an environment name is 1 to 32 lower-case letters, digits, '-' and '_', starting with a "
    "letter (it names params/<env>.yaml and outputs/<env>/)"
)
ENV_VAR_NAME = r"^[A-Z_][A-Z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConnectionParams(_Strict):
    """Where one database is: a password-free ``url`` or the name of a variable holding it."""

    url: str | None = None
    url_env: Annotated[str, Field(pattern=ENV_VAR_NAME)] | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _exactly_one_source(self) -> ConnectionParams:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of 'url' or 'url_env'")
        return self

    @field_validator("url")
    @classmethod
    def _no_password_in_url(cls, url: str | None) -> str | None:
        if url is None:
            return url
        try:
            parsed = make_url(url)
        except Exception as exc:
            raise ValueError(f"not a SQLAlchemy URL ({exc})") from exc
        where = _secret_in_url(url, parsed)
        if where:
            raise ValueError(
                f"a URL written in a params file must not carry a password ({where}); "
                "put the whole URL in an environment variable and name it in 'url_env'"
            )
        return url


# query keys that carry a secret, whatever the driver calls it (password, passwd, PGPASSWORD, ...)
SECRET_QUERY_KEY = re.compile(r"pass|pwd|secret|token|api_?key|credential", re.IGNORECASE)
_PASSWORD_IN_TEXT = re.compile(r"[a-zA-Z][\w+.-]*://[^:/@\s]*:[^@/\s]+@")


def _secret_in_url(url: str, parsed) -> str | None:
    """Where a URL carries a secret (its user info, a query parameter, a URL inside it), or None."""
    if parsed.password:
        return "user:password@"
    for key, value in parsed.query.items():
        if SECRET_QUERY_KEY.search(key):
            return f"query parameter {key!r}"
        values = [value] if isinstance(value, str) else list(value)
        if any(_PASSWORD_IN_TEXT.search(v) for v in values):
            return f"a URL with a password in query parameter {key!r}"
    if _PASSWORD_IN_TEXT.search(url):
        return "a URL with a password inside it"
    return None


class DemoParams(_Strict):
    """Size and seed of the generated demo sources."""

    orders: Annotated[int, Field(ge=100, le=5_000_000)] = 20_000
    seed: int = 20261121


class LoadParams(_Strict):
    """How the loader streams: rows per chunk, full or incremental, foreign keys during a load."""

    chunk_size: Annotated[int, Field(ge=100, le=1_000_000)] = 5_000
    mode: Literal["full", "incremental"] = "full"
    # PostgreSQL: drop the loaded tables' foreign keys during the load, validate them at its end
    # (the loader resolves every reference itself); false keeps them checked row by row.
    suspend_foreign_keys: bool = True


class DaskParams(_Strict):
    """A Dask distributed cluster: an existing scheduler, or a local one of ``local_workers``."""

    scheduler: Annotated[str, Field(pattern=r"^(tcp|tls|inproc|ucx)://\S+$")] | None = None
    local_workers: Annotated[int, Field(ge=1, le=256)] | None = None
    # rows per partition the plan aims at; a source smaller than this is one partition
    partition_rows: Annotated[int, Field(ge=100)] = 250_000
    # at most this many partitions per source (a source is cut into at least one per worker)
    max_partitions: Annotated[int, Field(ge=1, le=10_000)] = 64
    # a partition that fails this many more times fails the stage, its key range named
    retries: Annotated[int, Field(ge=0, le=20)] = 2
    # true: quarantined rows' gaps closed after each target (ids equal a local load's, one
    # renumbering pass); false: the plan's ids, deterministic, gaps where rows were quarantined
    dense_ids: bool = True

    @model_validator(mode="after")
    def _exactly_one_cluster(self) -> DaskParams:
        if (self.scheduler is None) == (self.local_workers is None):
            raise ValueError("give exactly one of 'scheduler' (tcp://HOST:8786) or 'local_workers'")
        return self

    @field_validator("scheduler")
    @classmethod
    def _no_secret_in_address(cls, address: str | None) -> str | None:
        if address is not None and "@" in address:
            raise ValueError("a scheduler address carries no user or password")
        return address


class EngineParams(_Strict):
    """Where the full load runs: ``local`` (this process) or ``{dask: {...}}`` (a cluster)."""

    dask: DaskParams

    @property
    def kind(self) -> str:
        return "dask"


def _engine(value: object) -> object:
    """``engine: local`` is the default; anything else is ``{dask: {...}}``."""
    return None if value == "local" else value


Engine = Annotated[EngineParams | None, BeforeValidator(_engine)]


class TrialParams(_Strict):
    """The deterministic trial sample: percent of root customers, by a hash of their key."""

    sample_percent: Annotated[int, Field(ge=1, le=100)] = 10


class GateParams(_Strict):
    """Thresholds that fail a stage."""

    max_reject_rate: Annotated[float, Field(ge=0, le=1)] = 0.05
    max_unexplained_differences: Annotated[int, Field(ge=0)] = 0
    # violations of the spec's checks: the target has them, its sources did not
    max_new_check_violations: Annotated[int, Field(ge=0)] = 0


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|min|m|h)?\s*$")
_UNIT_SECONDS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}


def _seconds(value: object) -> float | None:
    """A duration as seconds: a number of seconds, or text such as ``90s``, ``30m``, ``2h``."""
    if value is None or isinstance(value, int | float) and not isinstance(value, bool):
        return None if value is None else float(value)
    match = _DURATION.match(str(value))
    if match is None:
        raise ValueError("a duration: seconds (90), or 90s, 30m, 2h")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


Duration = Annotated[float | None, BeforeValidator(_seconds)]


class NoticesParams(_Strict):
    """Where the per-person notices go (outside outputs/: they hold real contact data)."""

    path: str | None = Field(
        default=None, description="CSV path; {env} and {run_id} are filled in; never under outputs/"
    )
    templates: dict[str, str] = Field(
        default_factory=dict,
        description="notice text per reason (merged, email_normalized, ...): {old} {new} {source}",
    )


class CutoverParams(_Strict):
    """The cut-over's limits (each gates the 06_cutover stage) and its freeze check."""

    max_downtime: Duration = None
    rto: Duration = None
    rpo: Duration = None
    freeze_window: Annotated[float, BeforeValidator(_seconds)] = 10.0
    expected_changes: Annotated[int, Field(ge=0)] | None = None
    notices: NoticesParams = NoticesParams()


class RolesParams(_Strict):
    """Who may operate and who may approve in this environment (names as recorded)."""

    operators: list[str] = []
    approvers: list[str] = []


class EvidenceParams(_Strict):
    """How the evidence resists an insider: the NAME of the variable holding the signing key."""

    signing_key_env: Annotated[str, Field(pattern=ENV_VAR_NAME)] | None = Field(
        default=None,
        description="environment variable holding the Ed25519 private key (runbook keygen); "
        "the key itself never in a file of the project",
    )


class RunbookParams(_Strict):
    """Everything one environment's run needs; secrets only by environment variable name."""

    env: Annotated[str, Field(pattern=ENV_NAME)]
    description: str = ""
    operator: str | None = None
    requires_approval: bool = False
    work_dir: str = Field(description="folder for embedded SQLite files and backups")
    mapping: str = Field(description="path of the mapping spec, relative to the project")
    sources: dict[str, ConnectionParams]
    target: ConnectionParams
    trial_target: ConnectionParams
    demo: DemoParams | None = None
    load: LoadParams = LoadParams()
    # local (default): the full load runs in this process; {dask: {...}}: partitioned on Dask
    engine: Engine = None
    trial: TrialParams = TrialParams()
    gates: GateParams = GateParams()
    cutover: CutoverParams = CutoverParams()
    roles: RolesParams = RolesParams()
    evidence: EvidenceParams = EvidenceParams()

    @field_validator("sources")
    @classmethod
    def _sources_not_empty(cls, sources: dict[str, ConnectionParams]) -> dict:
        if not sources:
            raise ValueError("at least one source connection is required")
        return sources


class LoadedParams:
    """A validated params file plus where it came from (paths resolve against the project)."""

    def __init__(self, model: RunbookParams, path: Path, project_root: Path) -> None:
        self.model = model
        self.path = path
        self.project_root = project_root

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def resolve(self, relative: str) -> Path:
        """Turn a project-relative path from the params into an absolute one."""
        path = Path(relative)
        return path if path.is_absolute() else self.project_root / path

    @property
    def mapping_path(self) -> Path:
        return self.resolve(self.model.mapping)

    @property
    def work_path(self) -> Path:
        return self.resolve(self.model.work_dir)

    def redacted(self) -> dict:
        """The parameters as JSON-safe data; they hold no secret values by construction."""
        return self.model.model_dump(mode="json", exclude_none=True)


def find_project_root(start: Path | None = None) -> Path:
    """The nearest folder upwards holding both ``params/`` and ``notebooks/``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "params").is_dir() and (folder / "notebooks").is_dir():
            return folder
    raise ParamsError(
        f"no project found from {here}: expected a folder holding params/ and notebooks/",
        hint="run the command from the project folder",
    )


def check_env_name(env: str) -> str:
    """``env`` if it is a safe environment name; a ``ParamsError`` saying what one is otherwise."""
    if not re.fullmatch(ENV_NAME, env):
        raise ParamsError(f"{env!r} is not an environment name", hint=ENV_NAME_RULE)
    return env


def environments(project_root: Path) -> list[str]:
    """The environments of a project: every ``params/<env>.yaml`` with a valid name, sorted."""
    folder = project_root / "params"
    return sorted(p.stem for p in folder.glob("*.yaml") if re.fullmatch(ENV_NAME, p.stem))


def params_path_for(env: str, project_root: Path) -> Path:
    """Where the params file of ``env`` lives."""
    return project_root / "params" / f"{env}.yaml"


def load_params(
    env: str | None = None, *, path: Path | None = None, project_root: Path | None = None
) -> LoadedParams:
    """Read and validate ``params/<env>.yaml`` (or ``path``); raise ``ParamsError`` naming field and file."""
    root = project_root or find_project_root()
    if path is None:
        if env is None:
            raise ParamsError("give an environment or a params file")
        path = params_path_for(check_env_name(env), root)
        if not path.is_file():
            known = ", ".join(environments(root)) or "none"
            raise ParamsError(
                f"unknown environment {env!r}: there is no params/{env}.yaml",
                hint=f"environments here: {known}; for a new one, copy one of their files "
                f"to params/{env}.yaml and set its 'env: {env}'",
            )
    path = Path(path)
    shown = _display_path(path, root)
    try:
        raw = read_yaml(path)
    except FileNotFoundError as exc:
        raise ParamsError(f"{shown}: params file not found") from exc
    except YamlInputError as exc:
        where = "" if exc.where == "(file)" else f" {exc.where}:"
        raise ParamsError(f"{shown}:{where} {exc.detail}") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{shown}: expected a mapping of parameters at the top level")
    try:
        model = RunbookParams.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError(f"{shown}: invalid parameters:\n{format_validation_error(exc)}") from None
    if env is not None and model.env != env:
        raise ParamsError(
            f"{shown}: field 'env' is {model.env!r}, expected {env!r} (the file's name)"
        )
    return LoadedParams(model, path.resolve(), root)


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem: the dotted field, what was expected, and what was found."""
    lines = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "(top level)"
        if error["type"] == "extra_forbidden":
            parent = _model_at(RunbookParams, error["loc"][:-1])
            valid = ", ".join(parent.model_fields) if parent else "see the documentation"
            lines.append(f"  {field}: unknown field; valid fields here: {valid}")
        elif error["type"] == "missing":
            lines.append(f"  {field}: required field is missing")
        else:
            found = error.get("input")
            secret = error["loc"] and str(error["loc"][-1]) == "url"  # may carry the password
            shown = (
                ""
                if isinstance(found, dict | list) or secret
                else f" (found {redact_text(repr(found))})"
            )
            lines.append(f"  {field}: {error['msg']}{shown}")
    return "\n".join(lines)


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The model class that sits at ``loc`` (skipping dict keys), to list its valid fields."""
    current: type[BaseModel] | None = model
    parts = list(loc)
    while parts and current is not None:
        field = current.model_fields.get(parts.pop(0))
        if field is None:
            return None
        annotation = field.annotation
        if getattr(annotation, "__origin__", None) is dict:
            parts = parts[1:]  # the next part is a key of the dict, not a field
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        current = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
    return current


def _display_path(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)
