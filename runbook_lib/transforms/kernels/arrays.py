"""Arrow arrays that hold Python values exactly, and what every kernel returns.

A kernel is only as exact as the arrays around it, so values cross between Python and Arrow in
one place: :func:`to_arrow` picks for a list of values an Arrow type whose ``to_python`` gives
back *the same values* — equal and of the same type (``1`` stays an int beside ``1.5``,
``Decimal("1.50")`` keeps its two places, ``-0.00`` keeps its sign); :func:`to_python` reads it
back. A column of one kind of value becomes its plain Arrow type; a column mixing kinds (SQLite
holds INTEGER and REAL in one NUMERIC column) becomes a dense union with one child per kind,
named by the kind. Values no plain type holds exactly travel as text in a child named for it:
``bigint`` (past 64 bits), ``decimal-text`` (negative zero, NaN, a positive exponent, more than
38 digits), ``datetime-text`` (a fixed UTC offset other than UTC), ``datetime-fold`` (PEP 495's
``fold=1``). Anything else (a datetime in a named zone, an unknown type) is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timezone
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")
LOCAL_TIMESTAMP = pa.timestamp("us")

# Every character ``str.isspace`` accepts: what Python's ``strip()`` and ``split()`` remove.
# RE2's ``\s`` and Arrow's ``utf8_trim_whitespace`` do not agree with it (U+00A0, U+001C..1F).
PY_WHITESPACE = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())
WHITESPACE_CLASS = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in PY_WHITESPACE) + "]"


@dataclass(frozen=True)
class KernelResult:
    """What a kernel decided over its input arrays.

    ``outputs`` holds one array per output of the transform, as long as the input. ``undecided``
    (a boolean array without nulls, or ``None`` for "every row decided") marks the rows the
    kernel leaves to the per-value function: values it cannot compute exactly and every value
    that fails, so a failing row gets the per-value function's own rule and message. A kernel
    never leaves a silent NULL: where its computation gives NULL for a value the per-value
    function would not turn into ``None``, that row must be undecided.
    """

    outputs: tuple[pa.Array, ...]
    undecided: pa.Array | None = None


def decided(*outputs: pa.Array, undecided: pa.Array | np.ndarray | None = None) -> KernelResult:
    """A kernel's result; a NULL in ``undecided`` counts as undecided.

    When a kernel's own logic meets a NULL it did not plan for, the per-value function decides.
    """
    if undecided is not None:
        if isinstance(undecided, np.ndarray):
            undecided = pa.array(undecided, pa.bool_())
        undecided = pc.fill_null(undecided, True)
        if not pc.any(undecided).as_py():
            undecided = None
    return KernelResult(tuple(outputs), undecided)


def flags(mask: pa.Array | pa.Scalar | np.ndarray) -> pa.Array | pa.Scalar:
    """A boolean mask with NULL read as false (Arrow's ``and_``/``or_`` propagate NULL)."""
    if isinstance(mask, np.ndarray):
        return pa.array(mask, pa.bool_())
    return mask if isinstance(mask, pa.Scalar) else pc.fill_null(mask, False)


def all_of(*masks: pa.Array | pa.Scalar | np.ndarray) -> pa.Array:
    """Rows where every mask is true (NULL is false)."""
    result = flags(masks[0])
    for mask in masks[1:]:
        result = pc.and_(result, flags(mask))
    return result


def any_of(*masks: pa.Array | pa.Scalar | np.ndarray) -> pa.Array:
    """Rows where some mask is true (NULL is false)."""
    result = flags(masks[0])
    for mask in masks[1:]:
        result = pc.or_(result, flags(mask))
    return result


def none_of(*masks: pa.Array | pa.Scalar | np.ndarray) -> pa.Array:
    """Rows where no mask is true (NULL is false)."""
    return pc.invert(any_of(*masks))


# --- Python → Arrow ---------------------------------------------------------------------------


def _decimal_kind(value: Decimal) -> tuple[str, pa.DataType]:
    sign, digits, exponent = value.as_tuple()
    if (
        isinstance(exponent, int)
        and -38 <= exponent <= 0
        and len(digits) <= 38
        and not (sign and not any(digits))  # decimal128 has no negative zero
    ):
        return "decimal", pa.decimal128(38, -exponent)
    return "decimal-text", pa.string()


def _datetime_kind(value: datetime) -> tuple[str, pa.DataType]:
    if value.fold:  # PEP 495's second occurrence: a timestamp cannot say so
        if value.tzinfo is None or type(value.tzinfo) is timezone:
            return "datetime-fold", pa.string()
        raise ValueError(f"a datetime in {value.tzinfo!r} has no exact Arrow type")
    if value.tzinfo is None:
        return "datetime", LOCAL_TIMESTAMP
    if value.tzinfo is UTC:
        return "datetime-utc", UTC_TIMESTAMP
    if type(value.tzinfo) is timezone:
        return "datetime-text", pa.string()
    raise ValueError(f"a datetime in {value.tzinfo!r} has no exact Arrow type; convert it to UTC")


def _kind(value: Any) -> tuple[str, pa.DataType]:
    """The name and Arrow type of the union child that holds ``value`` exactly."""
    kind = type(value)
    if kind is str:
        return "str", pa.string()
    if kind is int:
        return ("int", pa.int64()) if INT64_MIN <= value <= INT64_MAX else ("bigint", pa.string())
    if kind is float:
        return "float", pa.float64()
    if kind is bool:
        return "bool", pa.bool_()
    if kind is Decimal:
        return _decimal_kind(value)
    if kind is datetime:
        return _datetime_kind(value)
    if kind is date:
        return "date", pa.date32()
    if kind is bytes:
        return "bytes", pa.binary()
    raise ValueError(f"a {kind.__name__} has no exact Arrow type")


builtins_type = type
NoneType = type(None)
# Python types whose every value one Arrow type holds exactly, and their union child names
_PLAIN = {
    str: pa.string(),
    float: pa.float64(),
    bool: pa.bool_(),
    bytes: pa.binary(),
    int: pa.int64(),
}
_PLAIN_NAMES = {str: "str", float: "float", bool: "bool", bytes: "bytes", int: "int"}


def _encode(kind: str, values: list) -> list:
    if kind in ("bigint", "decimal-text"):
        return [str(v) for v in values]
    if kind in ("datetime-text", "datetime-fold"):
        return [v.isoformat() for v in values]
    return values


def to_arrow(values: Sequence, type: pa.DataType | None = None) -> pa.Array:
    """An Arrow array holding ``values`` exactly (see the module docstring).

    With ``type``, the array has that type when every value fits it exactly; otherwise (and
    without ``type``) the type follows the values.
    """
    values = list(values)
    kinds = set(map(builtins_type, values))
    kinds.discard(NoneType)
    if len(kinds) == 1 and (plain := _PLAIN.get(next(iter(kinds)))) is not None:
        try:  # one plain kind: Arrow converts it exactly (an int past int64 raises)
            return pa.array(values, plain)
        except (OverflowError, pa.ArrowInvalid):
            pass
    if kinds and kinds <= _PLAIN.keys():  # plain kinds only (SQLite's int, float and text): by type
        groups = {
            (_PLAIN_NAMES[kind], _PLAIN[kind]): [
                i for i, value in enumerate(values) if value.__class__ is kind
            ]
            for kind in kinds
        }
        try:
            return _union(values, groups)
        except (OverflowError, pa.ArrowInvalid):  # an int past int64: each int looked at
            pass
    groups: dict[tuple[str, pa.DataType], list[int]] = {}
    for index, value in enumerate(values):
        if value is not None:
            groups.setdefault(_kind(value), []).append(index)
    if not groups:
        return pa.nulls(len(values), type or pa.null())
    if len(groups) == 1:
        ((kind, arrow_type),) = groups
        if kind in _DECODE:
            return _union(values, groups)
        if type is not None and arrow_type != type and _fits(values, kind, type):
            arrow_type = type
        return pa.array(values, arrow_type)
    return _union(values, groups)


def _fits(values: list, kind: str, type: pa.DataType) -> bool:
    """Whether values of one kind read back unchanged from an array of ``type``."""
    if kind == "decimal" and pa.types.is_decimal(type):
        # a Decimal reads back with the array's scale: only those already at it are unchanged
        return all(v is None or v.as_tuple().exponent == -type.scale for v in values)
    return False


def _union(values: list, groups: dict[tuple[str, pa.DataType], list[int]]) -> pa.Array:
    codes = np.zeros(len(values), dtype=np.int8)
    offsets = np.zeros(len(values), dtype=np.int32)
    children, names = [], []
    null_child = None
    for code, ((kind, arrow_type), indices) in enumerate(groups.items()):
        rows = np.asarray(indices, dtype=np.int64)
        codes[rows] = code
        offsets[rows] = np.arange(len(rows), dtype=np.int32)
        children.append(pa.array(_encode(kind, [values[i] for i in indices]), arrow_type))
        names.append(kind)
    nulls = [i for i, v in enumerate(values) if v is None]
    if nulls:  # a union has no validity of its own: NULLs live in a child of their own
        null_child = len(children)
        rows = np.asarray(nulls, dtype=np.int64)
        codes[rows] = null_child
        offsets[rows] = 0
        children.append(pa.nulls(1))
        names.append("null")
    return pa.UnionArray.from_dense(pa.array(codes), pa.array(offsets), children, names)


def record_batch_from_rows(rows: Sequence[Sequence], names: Sequence[str]) -> pa.RecordBatch:
    """Rows of Python values (tuples in ``names`` order) as a record batch that holds them exactly."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return pa.RecordBatch.from_arrays([to_arrow(c) for c in columns], names=list(names))


# --- Arrow → Python ---------------------------------------------------------------------------


def _folded(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(fold=1)


_DECODE = {
    "bigint": int,
    "decimal-text": Decimal,
    "datetime-text": datetime.fromisoformat,
    "datetime-fold": _folded,
}


def to_python(array: pa.Array | pa.ChunkedArray) -> list:
    """The Python values of ``array``, exactly as :func:`to_arrow` took them.

    UTC timestamps come back with ``datetime.UTC`` (pyarrow's own ``to_pylist`` gives
    ``ZoneInfo('UTC')``, which compares equal but is another value to a caller).
    """
    if isinstance(array, pa.ChunkedArray):
        return [v for chunk in array.chunks for v in to_python(chunk)]
    kind = array.type
    if pa.types.is_union(kind):
        return _union_to_python(array)
    if pa.types.is_timestamp(kind) and kind.tz == "UTC":
        naive = array.cast(pa.timestamp(kind.unit)).to_pylist()
        return [None if v is None else v.replace(tzinfo=UTC) for v in naive]
    return array.to_pylist()


def is_encoded(field: pa.Field) -> bool:
    """Whether a union child holds its values as text (``bigint``, ``decimal-text``, ...)."""
    return field.name in _DECODE


def child_values(array: pa.UnionArray, index: int) -> list:
    """The Python values of one child of a union built by :func:`to_arrow`."""
    values = to_python(array.field(index))
    decode = _DECODE.get(array.type.field(index).name)
    return [decode(v) if decode and v is not None else v for v in values]


def _union_to_python(array: pa.UnionArray) -> list:
    if array.type.mode != "dense":
        raise ValueError("only dense unions are read")
    children = [child_values(array, index) for index in range(array.type.num_fields)]
    codes = array.type.type_codes
    position = {code: i for i, code in enumerate(codes)}
    return [
        children[position[code]][offset]
        for code, offset in zip(
            array.type_codes.to_pylist(), array.offsets.to_pylist(), strict=True
        )
    ]


# --- helpers the kernels share ----------------------------------------------------------------


def trimmed(strings: pa.Array) -> pa.Array:
    """``str.strip()`` over a string array: Python's whitespace, not RE2's or Arrow's."""
    return pc.utf8_trim(strings, PY_WHITESPACE)


def is_text(array: pa.Array) -> bool:
    """Whether the array holds text."""
    return pa.types.is_string(array.type) or pa.types.is_large_string(array.type)


def is_integer(array: pa.Array) -> bool:
    """Whether the array holds integers."""
    return pa.types.is_integer(array.type)


def rows_where(mask: pa.Array) -> np.ndarray:
    """Row numbers where a boolean array is true (NULL counts as false)."""
    return np.flatnonzero(pc.fill_null(mask, False).to_numpy(zero_copy_only=False))


def int64_values(array: pa.Array) -> np.ndarray:
    """An integer array as int64 numpy values, NULLs as 0 (mask them separately)."""
    return pc.fill_null(array.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)


def decimal_array(coefficients: np.ndarray, scale: int, valid: np.ndarray) -> pa.Array:
    """decimal128(38, scale) from int64 coefficients (value = coefficient × 10^-scale).

    Built from the buffers: a decimal128 is a 128-bit two's complement integer, so the low word
    is the coefficient and the high word its sign.
    """
    words = np.empty((len(coefficients), 2), dtype=np.int64)
    words[:, 0] = coefficients
    words[:, 1] = coefficients >> 63
    validity = pa.array(valid, pa.bool_()).buffers()[1] if not valid.all() else None
    return pa.Array.from_buffers(
        pa.decimal128(38, scale), len(coefficients), [validity, pa.py_buffer(words.tobytes())]
    )


def _decimal_words(array: pa.Array) -> np.ndarray:
    filled = pc.fill_null(array, Decimal(0).scaleb(-array.type.scale))
    words = np.frombuffer(filled.buffers()[1], dtype=np.int64)
    return words[2 * filled.offset : 2 * (filled.offset + len(filled))].reshape(-1, 2)


def decimal_signs(array: pa.Array) -> np.ndarray:
    """Where a decimal128 array holds a value below zero (the sign of its high word)."""
    return _decimal_words(array)[:, 1] < 0


def decimal_coefficients(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(int64 coefficients, fits) of a decimal128 array; ``fits`` is false past 64 bits or NULL."""
    words = _decimal_words(array)
    low, high = words[:, 0], words[:, 1]
    fits = (high == (low >> 63)) & ~pc.is_null(array).to_numpy(zero_copy_only=False)
    return low.copy(), fits
