"""Vectorized kernels of the transforms, over pyarrow arrays; importing this registers them all.

A kernel takes the transform's input arrays and options and returns a ``KernelResult``: its
output arrays, and the rows it leaves *undecided* for the per-value function (values it cannot
compute exactly, and every value that fails, so quarantine keeps the per-value rule and
message). It returns ``None`` when it cannot take these arrays or options at all (the step then
runs per value over the column). The per-value function stays the definition: on every row a
kernel decides, it must give the value the per-value function gives (``kernels.arrays`` holds
the exact Python ↔ Arrow conversion, ``tests/test_kernel_parity.py`` the proof).

By family, beside ``transforms.*``: ``text``, ``money`` (on ``fixed``, exact fixed-point
numbers), ``dates``, ``names``, ``contacts``, ``flags``.
"""

from __future__ import annotations

from runbook_lib.transforms.kernels import contacts, dates, flags, money, names, text
from runbook_lib.transforms.kernels.arrays import (
    KernelResult,
    record_batch_from_rows,
    to_arrow,
    to_python,
)

__all__ = [
    "KernelResult",
    "contacts",
    "dates",
    "flags",
    "money",
    "names",
    "record_batch_from_rows",
    "text",
    "to_arrow",
    "to_python",
]
