"""Named, pure value transforms that a mapping spec applies to legacy columns.

A spec names a transform and its keyword options; the loader looks it up with
:func:`get_transform` and calls it once per value (or per tuple of values for ``inputs > 1``).
The registry is ``transform_registry``; the transforms live by family in ``transforms_text``
(text, lookups, derived keys), ``transforms_money``, ``transforms_names``, ``transforms_dates``,
``transforms_flags`` and ``transforms_contacts``. Importing this module registers them all, and everything a caller
needs is importable from here.

Conventions every transform follows:

- ``None`` in gives ``None`` out (a tuple of ``None`` for multi-output transforms); only
  ``required`` is about presence. A blank string is missing data too for the parsing transforms
  (numbers, money, dates, flags, names, email, phone): it gives ``None``, never a quarantine.
- A value that cannot be transformed raises :class:`~runbook_lib.errors.TransformError` whose
  ``rule`` is the quarantine rule. Messages describe the value's shape, or mask it, and never echo
  an email address or phone number in full.
- A bad *option* (an unknown time zone, an invalid ``unit``) is a spec error and raises a plain
  ``ValueError`` or ``TypeError``, never ``TransformError``: it is not the row's fault. The spec
  check calls every step once on nulls to find such options before any data moves.
- Money and decimals are exact ``Decimal`` (floats enter through ``repr``), rounded half-even
  under a private context, so a caller's ``decimal.getcontext()`` cannot change a result.
"""

from __future__ import annotations

from runbook_lib.transforms.contacts import (
    _CN_MOBILE,
    _email_fast,
    _phone_fast,
    _phone_slow,
    normalize_email,
    phone_e164,
)
from runbook_lib.transforms.dates import _compile_format, _to_utc, epoch_to_utc, parse_datetime
from runbook_lib.transforms.flags import to_bool
from runbook_lib.transforms.money import (
    convert_amount,
    convert_currency,
    money,
    non_negative,
    to_decimal,
    to_int,
)
from runbook_lib.transforms.names import (
    _COMPOUND_SURNAMES,
    CJK,
    NAME_KINDS,
    join_name,
    name_kind,
    split_name,
)
from runbook_lib.transforms.registry import (
    REGISTRY,
    Transform,
    describe_transforms,
    get_transform,
    is_blank,
    register,
    value_shape,
)
from runbook_lib.transforms.text import identity, lower, map_values, prefix, required, strip, upper

__all__ = [
    "NAME_KINDS",
    "REGISTRY",
    "Transform",
    "convert_amount",
    "convert_currency",
    "describe_transforms",
    "epoch_to_utc",
    "get_transform",
    "identity",
    "is_blank",
    "join_name",
    "lower",
    "map_values",
    "money",
    "name_kind",
    "non_negative",
    "normalize_email",
    "parse_datetime",
    "phone_e164",
    "prefix",
    "register",
    "required",
    "split_name",
    "strip",
    "to_bool",
    "to_decimal",
    "to_int",
    "upper",
    "value_shape",
    # internals the tests exercise directly
    "CJK",
    "_CN_MOBILE",
    "_COMPOUND_SURNAMES",
    "_compile_format",
    "_email_fast",
    "_phone_fast",
    "_phone_slow",
    "_to_utc",
]
