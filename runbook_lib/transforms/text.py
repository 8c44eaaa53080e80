"""Text transforms, lookups and derived keys."""

from __future__ import annotations

from typing import Any

from runbook_lib.errors import TransformError
from runbook_lib.transforms.registry import is_blank, register


@register("identity", can_fail=False)
def identity(value: Any) -> Any:
    """Return the value unchanged."""
    return value


@register("strip", can_fail=False)
def strip(value: Any) -> Any:
    """Trim, collapse inner whitespace runs to one space; blank becomes None."""
    if not isinstance(value, str):
        return value
    return " ".join(value.split()) or None


@register("lower", can_fail=False)
def lower(value: Any) -> Any:
    """Lowercase a string; other values pass through."""
    return value.lower() if isinstance(value, str) else value


@register("upper", can_fail=False)
def upper(value: Any) -> Any:
    """Uppercase a string; other values pass through."""
    return value.upper() if isinstance(value, str) else value


@register("required")
def required(value: Any) -> Any:
    """Reject None or a blank string (rule missing_required); otherwise pass the value through."""
    if is_blank(value):
        raise TransformError("missing_required", "a value is required but the source is empty")
    return value


_NO_DEFAULT: Any = object()
_STRING_KEYS: dict[int, tuple[dict[Any, Any], dict[str, Any]]] = {}


def _string_keyed(values: dict[Any, Any]) -> dict[str, Any]:
    """``values`` re-keyed by str(key), built once per mapping object (do not mutate it)."""
    cached = _STRING_KEYS.get(id(values))
    if cached is not None and cached[0] is values:
        return cached[1]
    keyed: dict[str, Any] = {}
    for key, target in values.items():
        if str(key) in keyed:
            raise ValueError(f"map_values: keys {key!r} collide once compared as strings")
        keyed[str(key)] = target
    if len(_STRING_KEYS) >= 256:
        _STRING_KEYS.clear()
    _STRING_KEYS[id(values)] = (values, keyed)  # holding `values` keeps its id from reuse
    return keyed


@register("map_values")
def map_values(value: Any, *, values: dict[Any, Any], default: Any = _NO_DEFAULT) -> Any:
    """Look a code up in ``values``, keys compared as strings (unmapped_value).

    An unmapped code gives ``default`` when the spec sets one.
    """
    if value is None:
        return None
    keyed = _string_keyed(values)
    key = str(value)
    if key in keyed:
        return keyed[key]
    if default is not _NO_DEFAULT:
        return default
    known = ", ".join(list(keyed)[:10]) + (", ..." if len(keyed) > 10 else "")
    raise TransformError("unmapped_value", f"{key[:40]!r} is not in the mapping ({known})")


@register("prefix", returns="text", can_fail=False)
def prefix(value: Any, *, prefix: str, width: int = 0) -> str | None:
    """Derived key: ``prefix`` followed by the value zero-padded to ``width``."""
    if value is None:
        return None
    return f"{prefix}{str(value).zfill(width)}"
