"""One root error for every expected failure, each carrying what failed, where, and what to do.

The CLI maps ``RunbookError`` to its ``exit_code`` and prints only the message; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations


class RunbookError(Exception):
    """An expected, user-facing failure."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n  -> {hint}")


class ParamsError(RunbookError):
    """A params file is missing, unreadable, or does not match the model."""


class ConnectionConfigError(RunbookError):
    """A connection cannot be built: an unset environment variable, a password in a URL, ..."""


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


class TransformError(ValueError):
    """A value cannot be transformed; ``rule`` names the quarantine rule it falls under."""

    def __init__(self, rule: str, message: str) -> None:
        self.rule = rule
        self.message = message
        super().__init__(f"{rule}: {message}")


class UnknownTransformError(RunbookError):
    """A mapping names a transform that is not registered."""

    def __init__(self, name: str, suggestions: list[str]) -> None:
        self.name = name
        self.suggestions = suggestions
        hint = f"did you mean {', '.join(suggestions)}?" if suggestions else None
        super().__init__(f"unknown transform {name!r}", hint=hint)


class StageFailedError(RunbookError):
    """A runbook stage did not pass; the run stops there."""

    exit_code = 1


class GateFailedError(RunbookError):
    """A check inside a stage did not pass its gate (results are glued before this is raised)."""

    exit_code = 1
