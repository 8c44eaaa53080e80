"""Every exception the toolkit raises, each carrying what failed, where, and what to do next.

``RunbookError`` is the root of every expected failure; its ``exit_code`` is what ``runbook``
exits with:

=====  ==============================================================================
0      passed
1      a gate or a stage failed (``StageFailedError``, ``GateFailedError``, approvals), a
       rollback out of order (``RollbackOrderError``), the target locked (``RunLockedError``)
2      bad usage, params or mapping spec: nothing was written
3      evidence damaged or unverifiable (``EvidenceError``)
70     an unexpected error: a bug (printed scrubbed; ``runbook --debug`` shows the traceback)
130    interrupted (Ctrl-C)
=====  ==============================================================================

A failure that crosses papermill (a stage notebook raising) travels as data, not text:
``failure_data`` is what the kernel glues and ``failure_from_data`` what the runner rebuilds.
"""

from __future__ import annotations

from typing import Any

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_EVIDENCE = 3
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


class RunbookError(Exception):
    """An expected, user-facing failure: a message, and the next step as ``hint``."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n  -> {hint}")


class ParamsError(RunbookError):
    """A params file is missing, unreadable, or does not match the model."""


class ConnectionConfigError(RunbookError):
    """A connection cannot be built: an unset environment variable, a password in a URL, ..."""


class YamlInputError(RunbookError):
    """A YAML file refused by the strict reader: ``where`` is the YAML path (or ``(file)``)."""

    def __init__(self, where: str, detail: str, *, line: int | None = None) -> None:
        self.where = where
        self.detail = detail
        self.line = line
        super().__init__(f"{where}: {detail}")


class MappingSpecError(RunbookError):
    """The mapping spec is invalid; ``problems`` lists each (yaml_path, message)."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  {path}: {message}" for path, message in self.problems)
        super().__init__(
            f"{source}: the mapping spec has {len(self.problems)} problem(s):\n{lines}",
            hint="fix the spec; nothing was written",
        )


class UnknownTransformError(RunbookError):
    """A mapping names a transform that is not registered."""

    def __init__(self, name: str, suggestions: list[str]) -> None:
        self.name = name
        self.suggestions = suggestions
        hint = f"did you mean {', '.join(suggestions)}?" if suggestions else None
        super().__init__(f"unknown transform {name!r}", hint=hint)


class StageFailedError(RunbookError):
    """A runbook stage did not pass; the run stops there."""

    exit_code = EXIT_FAILED


class GateFailedError(RunbookError):
    """A check inside a stage did not pass its gate (results are glued before this is raised)."""

    exit_code = EXIT_FAILED


class ApprovalRequiredError(RunbookError):
    """A gated stage has no valid approval; nothing was touched."""

    exit_code = EXIT_FAILED


class RoleRefusedError(RunbookError):
    """The person is not in the role params give for what they asked (roles:); nothing written."""

    exit_code = EXIT_FAILED


class RollbackOrderError(RunbookError):
    """A rollback would delete what later runs loaded into the target; nothing was changed."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, later_runs: tuple[str, ...], hint: str | None = None):
        self.later_runs = later_runs
        super().__init__(message, hint=hint)


class PartitionFailedError(RunbookError):
    """Partitions of a distributed load failed past their retries; ``failed``: label → error.

    What the other partitions committed stays, with their checkpoints: re-running the stage
    (``runbook run --resume``) continues every partition from where it stopped.
    """

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, failed: dict[str, str], hint: str | None = None):
        self.failed = failed
        super().__init__(message, hint=hint)


class RunLockedError(RunbookError):
    """Another run holds the env's or the target's lock; nothing was written. ``holder``: who."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, holder: dict, hint: str | None = None) -> None:
        self.holder = holder
        super().__init__(message, hint=hint)


class EvidenceError(RunbookError):
    """Evidence does not verify, or new evidence cannot be recorded safely."""

    exit_code = EXIT_EVIDENCE


class EvidenceWriteError(EvidenceError):
    """Evidence cannot be written (disk full, read-only folder): ``folder`` and ``free_bytes``.

    Raised at the one place evidence bytes are written, after undoing the partial write: the
    manifest and the ledger stay as last recorded, so the run can be resumed once space is back.
    """

    def __init__(
        self, message: str, *, folder: str, free_bytes: int | None, hint: str | None = None
    ) -> None:
        self.folder = folder
        self.free_bytes = free_bytes
        super().__init__(message, hint=hint)


class SigningKeyError(RunbookError):
    """The signing key the params name is unset, unreadable, or not the key the evidence is signed with.

    Nothing was written (exit 2): set the variable to the private key from the secret store.
    """


class TransformError(ValueError):
    """A value cannot be transformed; ``rule`` names the quarantine rule it falls under."""

    def __init__(self, rule: str, message: str) -> None:
        self.rule = rule
        self.message = message
        super().__init__(f"{rule}: {message}")


class RowRejected(Exception):
    """A source row that cannot become a target row; it goes to quarantine with ``rule``."""

    def __init__(self, rule: str, message: str, column: str | None = None) -> None:
        self.rule = rule
        self.message = message
        self.column = column
        super().__init__(f"{rule}: {message}")


class ExpressionError(ValueError):
    """A spec's expression that is not what it may be (the mapping check names it by YAML path).

    A check's expression that is not arithmetic over column names; a filter that is not a
    predicate on its own table's columns.
    """


class UnsupportedType(Exception):
    """A column type a dialect's SQL cannot render canonically (hashing falls back to Python)."""


# The errors a failure record may name; anything else comes back as a StageFailedError.
_BY_NAME: dict[str, type[RunbookError]] = {
    cls.__name__: cls
    for cls in (
        RunbookError,
        ParamsError,
        ConnectionConfigError,
        StageFailedError,
        GateFailedError,
        ApprovalRequiredError,
        EvidenceError,
        SigningKeyError,
    )
}


def failure_data(error: BaseException) -> dict[str, Any]:
    """An exception as JSON-safe data: its type, message, next step and exit code."""
    if isinstance(error, RunbookError):
        return {
            "type": type(error).__name__,
            "message": error.message,
            "hint": error.hint,
            "exit_code": error.exit_code,
            "expected": True,
        }
    return {
        "type": type(error).__name__,
        "message": str(error),
        "hint": None,
        "exit_code": EXIT_INTERNAL,
        "expected": False,
    }


def failure_text(data: dict[str, Any]) -> str:
    """One line for a failure record: ``Type: message`` (the hint is kept apart)."""
    message = str(data.get("message") or "").strip()
    return f"{data.get('type', 'Error')}: {message}" if message else str(data.get("type", "Error"))
