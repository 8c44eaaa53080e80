"""The registry of named transforms: what a spec may name, with which options and inputs.

Registering a transform is one decorator: :func:`register` reads the accepted and required
options from the function's keyword-only parameters, so a spec can be checked without a call.
The transforms themselves live in ``transforms_*`` modules; ``transforms`` imports them all.

A transform may also carry a vectorized *kernel* (``transforms.kernels``), registered beside it
by name with :func:`register_kernel`; the per-value function stays its definition, and the
kernel must give the same value on every row it decides (``tests/test_kernel_parity.py``).
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runbook_lib.errors import UnknownTransformError


@dataclass(frozen=True)
class Transform:
    """A registered transform and what a spec may pass to it."""

    name: str
    func: Callable[..., Any]
    inputs: int
    outputs: tuple[str, ...] | None
    options: tuple[str, ...]
    required_options: tuple[str, ...]
    doc: str
    returns: str | None = None
    can_fail: bool = True

    def __call__(self, *values: Any, **options: Any) -> Any:
        """Apply the transform to ``inputs`` positional values with keyword options."""
        return self.func(*values, **options)

    @property
    def kernel(self) -> Callable[..., Any] | None:
        """The vectorized kernel registered for this transform, if any.

        Looked up by name rather than stored: a spec compiled before ``transforms.kernels`` was
        imported still finds its kernels.
        """
        return KERNELS.get(self.name)


REGISTRY: dict[str, Transform] = {}
# name → kernel(*arrays, **options) -> KernelResult | None (see transforms.kernels.arrays)
KERNELS: dict[str, Callable[..., Any]] = {}


def register(
    name: str,
    *,
    inputs: int = 1,
    outputs: tuple[str, ...] | None = None,
    returns: str | None = None,
    can_fail: bool = True,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as transform ``name``; return the function unchanged.

    Options are the function's keyword-only parameters; those without a default are required.
    ``returns`` is the type family of the result (``text``, ``integer``, ``decimal``,
    ``datetime``, ``boolean``; ``None``: the input's family, or for ``map_values`` its values'), which the
    spec check compares with the target column. ``can_fail=False`` marks a transform that never
    raises ``TransformError``, so the assessment need not run it over the data.
    """

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        if name in REGISTRY:
            raise ValueError(f"transform {name!r} is already registered")
        params = inspect.signature(func).parameters.values()
        positional = [p for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
        if len(positional) != inputs:
            raise ValueError(f"transform {name!r} takes {len(positional)} values, not {inputs}")
        keyword = [p for p in params if p.kind is p.KEYWORD_ONLY]
        doc = (inspect.getdoc(func) or "").partition("\n")[0]
        REGISTRY[name] = Transform(
            name=name,
            func=func,
            inputs=inputs,
            outputs=outputs,
            options=tuple(p.name for p in keyword),
            required_options=tuple(p.name for p in keyword if p.default is p.empty),
            doc=doc,
            returns=returns,
            can_fail=can_fail,
        )
        return func

    return decorator


def register_kernel(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as the vectorized kernel of transform ``name``.

    The transform must be registered first, and has at most one kernel.
    """

    def decorator(kernel: Callable[..., Any]) -> Callable[..., Any]:
        if name not in REGISTRY:
            raise ValueError(f"kernel for {name!r}: no such transform is registered")
        if name in KERNELS:
            raise ValueError(f"transform {name!r} already has a kernel")
        KERNELS[name] = kernel
        return kernel

    return decorator


def get_transform(name: str) -> Transform:
    """Return the transform registered as ``name``, or raise with the closest names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownTransformError(name, difflib.get_close_matches(name, REGISTRY, n=3)) from None


def describe_transforms() -> list[dict[str, Any]]:
    """List every transform as a JSON-safe dict, sorted by name, for the coverage view."""
    return [
        {
            "name": t.name,
            "inputs": t.inputs,
            "outputs": list(t.outputs) if t.outputs is not None else None,
            "options": list(t.options),
            "required_options": list(t.required_options),
            "returns": t.returns,
            "can_fail": t.can_fail,
            "doc": t.doc,
        }
        for t in sorted(REGISTRY.values(), key=lambda t: t.name)
    ]


def is_blank(value: Any) -> bool:
    """None or a string of only whitespace: missing data for the parsing transforms."""
    return value is None or (isinstance(value, str) and not value.strip())


def value_shape(value: Any, limit: int = 40) -> str:
    """Describe a value without revealing it: digits become 9, letters A or a."""
    if not isinstance(value, str):
        return f"a {type(value).__name__}"
    text = value if len(value) <= limit else value[:limit] + "..."
    return repr(
        re.sub(r"[^\W\d_]", lambda m: "A" if m[0].isupper() else "a", re.sub(r"\d", "9", text))
    )
